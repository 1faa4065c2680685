"""The style is enforced, not remembered: ruff (lint, import order, format) on the Python and
sqlfluff (dbt templater) on the dbt models and data tests, as `make lint` runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cdp.settings import REPO_ROOT

BIN = Path(sys.executable).parent


def _run(args: list[str], env: dict[str, str] | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def test_ruff_finds_nothing():
    result = _run([str(BIN / "ruff"), "check", "."])
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_changes_nothing():
    result = _run([str(BIN / "ruff"), "format", "--check", "."])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_sqlfluff_finds_nothing_in_the_dbt_project(tmp_path: Path):
    """The dbt templater compiles the project: against an empty warehouse in a temp dir, with
    its own target dir, so it touches neither the user's warehouse nor the shared manifest."""
    env = {**os.environ, "CDP_WAREHOUSE": str(tmp_path / "lint.duckdb"), "DBT_TARGET_PATH": str(tmp_path / "target")}
    result = _run(
        [str(BIN / "sqlfluff"), "lint", "dbt_project/models", "dbt_project/tests", "--processes", "2", "--nofail"],
        env=env,
        timeout=900,
    )
    # --nofail keeps sqlfluff's own exit code out of it; the verdict is the report's
    failing = [line for line in result.stdout.splitlines() if line.startswith("== [") and line.endswith("FAIL")]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not failing, result.stdout[-5000:]
