"""Running dbt against the configured warehouse, outside Dagster (the CLI, tests, benchmarks).

dbt runs in a child process: it holds the DuckDB file lock only while it runs, and a
failing build cannot leave state behind in the caller.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from cdp.settings import DBT_PROJECT_DIR, WAREHOUSE_ENV_VAR


class DbtError(RuntimeError):
    """dbt exited non-zero; the message carries the command and the tail of its output."""


def dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def run_dbt(
    args: Sequence[str],
    *,
    warehouse: Path | None = None,
    vars: dict | None = None,
    echo: bool = True,
    project_dir: Path | None = None,
) -> str:
    """Run ``dbt <args>`` in the project, return its output; raise DbtError on failure.

    ``project_dir`` runs a copy of the project instead (tests that add a model use one).
    """
    import json

    env = dict(os.environ)
    if warehouse is not None:
        env[WAREHOUSE_ENV_VAR] = str(Path(warehouse).resolve())
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    project = Path(project_dir) if project_dir is not None else DBT_PROJECT_DIR
    command = [
        dbt_executable(),
        *args,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(project),
    ]
    if vars:
        command += ["--vars", json.dumps(vars)]
    process = subprocess.Popen(
        command,
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if echo:
            sys.stdout.write(line)
            sys.stdout.flush()
    code = process.wait()
    output = "".join(lines)
    if code != 0:
        tail = "".join(lines[-40:])
        raise DbtError(f"`dbt {' '.join(args)}` failed with exit code {code}. Last lines:\n{tail}")
    return output


#: What dbt reads when it parses the project: a change to any of these (or a file added to or
#: removed from them, which changes the folder's mtime) makes the manifest stale.
_PARSED_PATHS = ("dbt_project.yml", "selectors.yml", "models", "macros", "seeds", "tests", "snapshots", "analyses")


def _manifest_location(project: Path) -> Path:
    """Where dbt writes the manifest: target/, or DBT_TARGET_PATH (relative to the project) as dbt does."""
    target = os.environ.get("DBT_TARGET_PATH")
    return (project / target if target else project / "target") / "manifest.json"


def _is_stale(manifest: Path, project: Path) -> bool:
    if not manifest.exists():
        return True
    written = manifest.stat().st_mtime
    for name in _PARSED_PATHS:
        root = project / name
        if not root.exists():
            continue
        paths = [root, *root.rglob("*")] if root.is_dir() else [root]
        if any(path.stat().st_mtime > written for path in paths):
            return True
    return False


def fresh_manifest(project_dir: Path | None = None, *, force: bool = False) -> Path:
    """The one way to get dbt's manifest: a manifest.json that reflects the project's files on disk.

    Parses the project (`dbt parse`, with the dbt beside this Python) when there is no
    manifest yet, when a project file was added, changed or removed since it was written,
    or when ``force`` is set; otherwise returns the existing one at once (a parse costs a
    few seconds). Honours DBT_TARGET_PATH like dbt does. Used by Dagster's definitions,
    `cdp prepare`, `cdp dev`, sync definitions in the CLI and the tests.
    """
    project = Path(project_dir) if project_dir is not None else DBT_PROJECT_DIR
    manifest = _manifest_location(project)
    if force or _is_stale(manifest, project):
        run_dbt(["parse", "--quiet"], echo=False, project_dir=project)
    if not manifest.exists():
        raise DbtError(f"`dbt parse` succeeded but wrote no manifest at {manifest} (check DBT_TARGET_PATH).")
    return manifest
