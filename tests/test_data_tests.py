"""The project's own generic data tests (dbt_project/macros/tests/), run by dbt on rows made to break them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cdp.dbt import DBT_PROJECT_DIR, DbtError, run_dbt

#: A key (kind, code), a required column (label): one repeated key, one null key, one null label.
FAULTY_ROWS = """
select * from (values
    ('a', 1, 'first'),
    ('a', 1, 'again'),
    (null, 2, 'no kind'),
    ('b', 3, null),
    ('c', 4, 'fine')
) as listed (kind, code, label)
"""


def test_primary_key_reports_a_repeated_key_a_null_key_and_a_null_required_column(tmp_path: Path):
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    (project / "models" / "faulty_keys.sql").write_text(FAULTY_ROWS)
    (project / "models" / "_faulty_keys.yml").write_text(
        "version: 2\nmodels:\n  - name: faulty_keys\n    description: Rows that break their key.\n"
        "    data_tests:\n      - primary_key:\n          arguments:\n"
        "            columns: [kind, code]\n            required: [label]\n"
    )
    with pytest.raises(DbtError) as failed:
        run_dbt(
            ["build", "--select", "faulty_keys"], warehouse=tmp_path / "empty.duckdb", echo=False, project_dir=project
        )
    # what the user sees: the test named, with one result per fault
    plain = re.sub(r"\x1b\[[0-9;]*m", "", str(failed.value))
    assert re.search(r"Failure in test primary_key_faulty_keys_\w+", plain), plain[-2000:]
    assert "Got 3 results" in plain, plain[-2000:]
