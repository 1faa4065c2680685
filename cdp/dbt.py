"""Running dbt against the configured warehouse, outside Dagster (the CLI, tests, benchmarks).

dbt runs in a child process: it holds the DuckDB file lock (or Spark's metastore) only while it
runs, and a failing build cannot leave state behind in the caller. The target is CDP_TARGET
(cdp/settings.py) unless a call names another; each non-default target keeps its own folder under
dbt's target path, so switching engines never makes another engine's manifest stale.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from cdp.settings import DBT_PROJECT_DIR, DEFAULT_TARGET, TARGET_ENV_VAR, WAREHOUSE_ENV_VAR, target_name


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
    target: str | None = None,
) -> str:
    """Run ``dbt <args>`` in the project, return its output; raise DbtError on failure.

    ``project_dir`` runs a copy of the project instead (tests that add a model use one);
    ``target`` another output of profiles.yml than CDP_TARGET's.
    """
    import json

    env = dict(os.environ)
    if warehouse is not None:
        env[WAREHOUSE_ENV_VAR] = str(Path(warehouse).resolve())
    chosen = target or target_name()
    env[TARGET_ENV_VAR] = chosen
    env["DBT_TARGET_PATH"] = str(dbt_target_path(chosen))
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
        raise DbtError(f"`dbt {' '.join(args)}` (target {chosen}) failed with exit code {code}. Last lines:\n{tail}")
    return output


def dbt_target_path(target: str | None = None) -> Path:
    """dbt's target path for ``target``, as dbt reads DBT_TARGET_PATH (relative paths from the project).

    The default target uses DBT_TARGET_PATH (or ``target``) itself; any other target a folder named
    after it inside, so each engine keeps its own manifest and partial-parse state.
    """
    base = Path(os.environ.get("DBT_TARGET_PATH") or "target")
    chosen = target or target_name()
    return base if chosen == DEFAULT_TARGET else base / chosen


#: What dbt reads when it parses the project: a change to any of these (or a file added to or
#: removed from them, which changes the folder's mtime) makes the manifest stale.
_PARSED_PATHS = ("dbt_project.yml", "selectors.yml", "models", "macros", "seeds", "tests", "snapshots", "analyses")


def _manifest_location(project: Path, target: str | None = None) -> Path:
    """Where dbt writes the manifest: target/ (or DBT_TARGET_PATH, relative to the project, as dbt reads it)."""
    return project / dbt_target_path(target) / "manifest.json"


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


def fresh_manifest(project_dir: Path | None = None, *, force: bool = False, target: str | None = None) -> Path:
    """The one way to get dbt's manifest: a manifest.json that reflects the project's files on disk.

    Parses the project (`dbt parse`, with the dbt beside this Python) when there is no
    manifest yet, when a project file was added, changed or removed since it was written,
    or when ``force`` is set; otherwise returns the existing one at once (a parse costs a
    few seconds). Honours DBT_TARGET_PATH like dbt does. Used by Dagster's definitions,
    `cdp prepare`, `cdp dev`, sync definitions in the CLI and the tests. ``target`` defaults to
    CDP_TARGET's: the manifest differs by engine (the predictive models are Python on DuckDB only).
    """
    project = Path(project_dir) if project_dir is not None else DBT_PROJECT_DIR
    manifest = _manifest_location(project, target)
    if force or _is_stale(manifest, project):
        run_dbt(["parse", "--quiet"], echo=False, project_dir=project, target=target)
    if not manifest.exists():
        raise DbtError(f"`dbt parse` succeeded but wrote no manifest at {manifest} (check DBT_TARGET_PATH).")
    return manifest
