"""Shared fixtures. dbt invocations cost seconds: warehouses are built once per session
(or per module for scenario worlds) and shared; only tests that need their own data build
their own."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cdp.settings import WAREHOUSE_ENV_VAR
from destinations.alerts.config import ALERTS_ENV_VAR

#: the engines sync tests run on (DuckDB, Postgres), as fixtures (tests/sync_engines.py)
pytest_plugins = ["sync_engines"]

# --- running in parallel (pytest-xdist: `-n 2` in pyproject's addopts; `-n 0` runs in one process) ----

#: The xdist worker this process is ("gw0", "gw1", ...), or None when pytest runs in one process.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if XDIST_WORKER:
    # each worker keeps its own dbt target folder (manifest, partial parse, run results) and logs:
    # two dbt processes writing one folder at once would read each other's half-written files
    os.environ.setdefault("DBT_TARGET_PATH", f"target/xdist-{XDIST_WORKER}")
    os.environ.setdefault("DBT_LOG_PATH", f"logs/xdist-{XDIST_WORKER}")

#: The modules that build the sample on Spark (the spark_build fixture: minutes, one JVM per dbt run):
#: they run on one worker, so Spark is built once per session and one such JVM runs at a time. They run
#: first, being the longest unit of work. (Postgres builds are cheap enough to build once per worker.)
SPARK_BUILD_MODULES = ("test_engines.py", "test_experiments.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Whole modules go to a worker (their module fixtures are built once), and the Spark-building
    modules together to one (SPARK_BUILD_MODULES). Not xdist's `--dist loadgroup`: its groups are
    read from node ids it rewrites, which pytest 9 no longer lets it do."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "spark builds" if Path(module).name in SPARK_BUILD_MODULES else module

    return ModuleScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The Spark-building modules first (a stable sort: each module's tests stay together, in order)."""
    items.sort(key=lambda item: item.path.name not in SPARK_BUILD_MODULES)


#: Small enough to build in seconds, large enough for every segment and noise kind to show.
SESSION_PEOPLE = 2_000
SESSION_SEED = 20261101


@pytest.fixture(scope="session", autouse=True)
def _isolated_warehouse_env(tmp_path_factory: pytest.TempPathFactory):
    """No test may touch the developer's own warehouse: point CDP_WAREHOUSE at a temp file.
    Nor send alerts through the shipped alerts.yml: tests of alerts name their own file."""
    isolated = {
        WAREHOUSE_ENV_VAR: str(tmp_path_factory.mktemp("default") / "unused.duckdb"),
        ALERTS_ENV_VAR: "off",
    }
    previous = {name: os.environ.get(name) for name in isolated}
    os.environ.update(isolated)
    yield
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    """The dbt manifest, as every caller gets it (parsed once if the project changed since)."""
    from cdp.dbt import fresh_manifest

    manifest = fresh_manifest()
    assert manifest.exists()
    return manifest


@pytest.fixture(scope="session")
def generated_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sample data for SESSION_PEOPLE people, raw tables only (no dbt)."""
    from cdp.sample_data.generator import GeneratorConfig, generate

    path = tmp_path_factory.mktemp("generated") / "warehouse.duckdb"
    generate(GeneratorConfig(people=SESSION_PEOPLE, seed=SESSION_SEED), warehouse=path, progress=False)
    return path


@pytest.fixture(scope="session")
def built_warehouse(tmp_path_factory: pytest.TempPathFactory, generated_warehouse: Path) -> Path:
    """The generated sample after a full `dbt build` (models and tests). Read-only for tests."""
    import shutil

    from cdp.dbt import run_dbt

    path = tmp_path_factory.mktemp("built") / "warehouse.duckdb"
    shutil.copy(generated_warehouse, path)
    run_dbt(["build"], warehouse=path, echo=False)
    return path


# --- other engines: Postgres and Spark (tests/engines.py) ----------------------------------

#: Where the engine fixtures leave their timings for the terminal summary.
_ENGINE_TIMINGS = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def postgres_target(postgres_server):
    """The postgres target, pointed at a database of its own (created here, dropped afterwards) on the
    session's Postgres server (tests/sync_engines.py: the configured one, or one the session starts)."""
    from sync_engines import drop_database

    from cdp.engine_tables import postgres_connection
    from cdp.targets import load_target

    server = load_target("postgres")
    database = f"cdp_test_{os.getpid()}"
    admin = postgres_connection(load_target_with(server, dbname="postgres"))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'drop database if exists "{database}"')
        cursor.execute(f'create database "{database}"')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CDP_POSTGRES_DATABASE", database)
        yield load_target("postgres")
    drop_database(admin, database)
    admin.close()


def load_target_with(target, **settings):
    """The same target with some settings replaced."""
    from dataclasses import replace

    return replace(target, settings={**target.settings, **settings})


@pytest.fixture(scope="session")
def spark_target(tmp_path_factory: pytest.TempPathFactory):
    """The local Spark target (session method), its tables and metastore in a temp folder of its own."""
    from engines import engine_missing, spark_missing_reason

    from cdp.settings import SPARK_DIR_ENV_VAR
    from cdp.targets import load_target

    reason = spark_missing_reason()
    if reason:
        engine_missing(reason)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SPARK_DIR_ENV_VAR, str(tmp_path_factory.mktemp("spark")))
        yield load_target("spark")


@pytest.fixture(scope="session")
def postgres_build(request, postgres_target, generated_warehouse: Path, tmp_path_factory):
    """The session's sample built on Postgres (loaded, built, identity rebuilt), its tables read back."""
    from engines import build_sample_on

    build = build_sample_on(postgres_target, generated_warehouse, tmp_path_factory.mktemp("postgres_tables"))
    request.config.stash.setdefault(_ENGINE_TIMINGS, {})["postgres"] = build.seconds
    return build


@pytest.fixture(scope="session")
def spark_build(request, spark_target, generated_warehouse: Path, tmp_path_factory):
    """The session's sample built on Spark, once: every Spark test shares it (each JVM start costs 10-25 s)."""
    from engines import build_sample_on

    build = build_sample_on(spark_target, generated_warehouse, tmp_path_factory.mktemp("spark_tables"))
    request.config.stash.setdefault(_ENGINE_TIMINGS, {})["spark"] = build.seconds
    return build


@pytest.fixture(scope="session")
def duckdb_build(built_warehouse: Path, tmp_path_factory):
    """The DuckDB side of the comparisons: a copy of the built warehouse, identity rebuilt, tables read back."""
    import shutil
    import time

    from engines import COMPARED_TABLES, INCREMENTAL_TABLES, REBUILD_IDENTITY, EngineBuild, dump_tables

    from cdp.dbt import run_dbt
    from cdp.targets import load_target

    path = tmp_path_factory.mktemp("duckdb_engine") / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)
    started = time.monotonic()
    rebuild = run_dbt(["build", *REBUILD_IDENTITY], warehouse=path, echo=False, target="duckdb")
    seconds = {"rebuild identity": time.monotonic() - started}
    target = load_target("duckdb")
    folder = tmp_path_factory.mktemp("duckdb_tables")
    dump_tables(target, target.schema, [*COMPARED_TABLES, *INCREMENTAL_TABLES], folder, warehouse=path)
    return EngineBuild(target, "", rebuild, folder, seconds)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker, hand the engine timings to the controller (pytest_testnodedown)."""
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["engine_timings"] = session.config.stash.get(_ENGINE_TIMINGS, {})


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """On the xdist controller: gather each worker's engine timings for the summary."""
    timings = getattr(node, "workeroutput", {}).get("engine_timings") or {}
    node.config.stash.setdefault(_ENGINE_TIMINGS, {}).update(timings)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print how long each engine took, so CI logs carry the figures."""
    timings = config.stash.get(_ENGINE_TIMINGS, {})
    if not timings:
        return
    terminalreporter.section(f"engine builds ({SESSION_PEOPLE:,} people)")
    for engine, seconds in timings.items():
        steps = ", ".join(f"{step} {value:.1f}s" for step, value in seconds.items())
        terminalreporter.write_line(f"{engine}: {steps}")
