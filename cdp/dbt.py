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


def manifest_path(project_dir: Path | None = None) -> Path:
    """dbt's manifest for the project, honouring DBT_TARGET_PATH like dbt does."""
    project = Path(project_dir) if project_dir is not None else DBT_PROJECT_DIR
    target = os.environ.get("DBT_TARGET_PATH")
    return (project / target if target else project / "target") / "manifest.json"


def fresh_manifest(project_dir: Path | None = None) -> Path:
    """The manifest, re-parsed first if any project file changed since it was written.

    Sync definitions are read from the manifest; this makes an edited exposure count at
    once without a full `dbt build` (a parse costs a few seconds, so only when needed).
    """
    project = Path(project_dir) if project_dir is not None else DBT_PROJECT_DIR
    manifest = manifest_path(project)
    if manifest.exists():
        written = manifest.stat().st_mtime
        sources = [project / "dbt_project.yml", *project.glob("models/**/*"), *project.glob("macros/**/*")]
        if all(path.stat().st_mtime <= written for path in sources if path.is_file()):
            return manifest
    run_dbt(["parse", "--quiet"], echo=False, project_dir=project)
    return manifest
