"""The Postgres server every test on that engine uses, and the engines a sync test runs on: DuckDB
(a file per test) and Postgres (a database per test).

A pytest plugin (tests/conftest.py lists it); tests/engines.py holds the rest of the engine helpers. The Postgres server is the one the environment
names (CDP_POSTGRES_HOST / _PORT / _USER / _PASSWORD, as the postgres dbt target reads them;
CI's `.ci/run` starts one), or else one this session starts itself with the PostgreSQL
binaries it finds (initdb in a temp folder, a free port, stopped at the end). Where neither
works the Postgres tests skip with the reason — and fail under CDP_REQUIRE_ENGINES=1.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engines import engine_missing

from destinations.warehouse.locations import DuckDBFile, Location, PostgresDatabase

#: the engines a sync world runs on
SYNC_ENGINES = ("duckdb", "postgres")
_SERVER_ENV = ("CDP_POSTGRES_HOST", "CDP_POSTGRES_PORT", "CDP_POSTGRES_USER", "CDP_POSTGRES_PASSWORD")
_databases = itertools.count()


def _configured_server() -> dict[str, Any] | None:
    if not os.environ.get("CDP_POSTGRES_HOST"):
        return None
    return {
        "host": os.environ["CDP_POSTGRES_HOST"],
        "port": int(os.environ.get("CDP_POSTGRES_PORT", "5432")),
        "user": os.environ.get("CDP_POSTGRES_USER", "cdp"),
        "password": os.environ.get("CDP_POSTGRES_PASSWORD", ""),
    }


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _own_server() -> Iterator[dict[str, Any]]:
    """A throw-away PostgreSQL cluster (C locale, no fsync) on a free loopback port."""
    binaries = _postgres_bin()
    if binaries is None:
        raise RuntimeError("no PostgreSQL binaries (initdb) on this machine: apt-get install postgresql")
    folder = Path(tempfile.mkdtemp(prefix="cdp-sync-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(folder, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    try:
        subprocess.run(
            [
                *as_user,
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-locale",
                "-E",
                "UTF8",
            ],
            **run,
        )
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
        subprocess.run(
            [
                *as_user,
                str(binaries / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(folder / "log"),
                "-w",
                "start",
            ],
            **run,
        )
    except subprocess.CalledProcessError as error:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL: {(error.stderr or error.stdout).strip()[-500:]}") from None
    try:
        # the tests connect as an ordinary role that may create databases, as on CI's server and a
        # production one: a superuser here would hide what such a role may not do
        superuser = _admin({"host": "127.0.0.1", "port": port, "user": "postgres", "password": ""})
        with superuser.cursor() as cursor:
            cursor.execute("create role cdp login createdb password 'cdp'")
        superuser.close()
        yield {"host": "127.0.0.1", "port": port, "user": "cdp", "password": "cdp"}
    finally:
        subprocess.run(
            [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(folder, ignore_errors=True)


def _admin(server: dict[str, Any]):
    from destinations.warehouse.postgres_engine import connect_postgres

    con = connect_postgres({**server, "dbname": "postgres"})
    con.autocommit = True
    return con


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[dict[str, Any]]:
    """Connection settings (no dbname) of a Postgres server whose user may create databases."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        engine_missing('psycopg2 is not installed: pip install -e ".[postgres]"')
    configured = _configured_server()
    if configured is not None:
        try:
            _admin(configured).close()
        except Exception as error:  # any failure to connect is the reason to report
            engine_missing(
                f"no Postgres at {configured['host']}:{configured['port']} for user {configured['user']} "
                f"({str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__})"
            )
        yield configured
        return
    try:
        server_context = _own_server()
        server = server_context.__enter__()
    except RuntimeError as error:
        engine_missing(f"no Postgres server: CDP_POSTGRES_HOST is not set and {error}")
    previous = {name: os.environ.get(name) for name in _SERVER_ENV}
    # the dbt postgres target and anything else in this session find the same server
    os.environ.update(
        {name: str(server[key]) for name, key in zip(_SERVER_ENV, ("host", "port", "user", "password"), strict=True)}
    )
    try:
        yield server
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server_context.__exit__(None, None, None)


@contextlib.contextmanager
def postgres_database(server: dict[str, Any], copy_of: str | None = None) -> Iterator[PostgresDatabase]:
    """A fresh database (C collation: the same text order as DuckDB), dropped afterwards; or, with
    ``copy_of``, a copy of that database (made from it as template: seconds, not a rebuild), for a
    test that changes a build the session shares."""
    name = f"{copy_of}_copy_{next(_databases)}" if copy_of else f"cdp_sync_{os.getpid()}_{next(_databases)}"
    create = (
        f'create database "{name}" template "{copy_of}"'
        if copy_of
        else f"create database {name} template template0 encoding 'UTF8' lc_collate 'C' lc_ctype 'C'"
    )
    admin = _admin(server)
    try:
        with admin.cursor() as cursor:
            cursor.execute(create)
        yield PostgresDatabase({**server, "dbname": name})
        drop_database(admin, name)
    finally:
        admin.close()


def drop_database(admin, name: str) -> None:
    """Drop a test database, ending this role's own sessions in it first.

    Not `drop database ... with (force)`: that also needs the right to end other roles' processes,
    and an autovacuum worker in the database is one, which an ordinary role (CI's) lacks. A plain
    drop signals autovacuum itself and waits up to five seconds for sessions to end; tried again
    while one of ours is still on its way out."""
    import psycopg2.errors

    for attempt in itertools.count(1):
        with admin.cursor() as cursor:
            cursor.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where datname = %s and usename = current_user and pid <> pg_backend_pid()",
                (name,),
            )
            try:
                cursor.execute(f'drop database if exists "{name}"')
                return
            except psycopg2.errors.ObjectInUse:
                if attempt == 5:
                    raise


@pytest.fixture(params=SYNC_ENGINES)
def sync_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Location]:
    """Where a test's sync world lives: a DuckDB file, or a Postgres database of its own."""
    if request.param == "duckdb":
        yield DuckDBFile((tmp_path / "warehouse.duckdb").resolve())
        return
    with postgres_database(request.getfixturevalue("postgres_server")) as database:
        yield database


@pytest.fixture(scope="module", params=SYNC_ENGINES)
def module_sync_engine(request: pytest.FixtureRequest) -> Iterator[Location | None]:
    """For tests that make many worlds (the property test's examples): None on DuckDB (each world
    makes its own file), or one Postgres database for the module, which each world empties first."""
    if request.param == "duckdb":
        yield None
        return
    with postgres_database(request.getfixturevalue("postgres_server")) as database:
        yield database
