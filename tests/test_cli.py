"""The `cdp` command line: every command has help, and the commands do what they say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main


def test_every_command_has_help_text():
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0
    for name, command in main.commands.items():
        assert command.help, f"`cdp {name}` has no help text"
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Usage: " in result.output


def test_cdp_entry_point_is_installed():
    cdp = Path(sys.executable).with_name("cdp")
    result = subprocess.run([str(cdp), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "generate" in result.stdout and "demo" in result.stdout


def test_tables_on_a_missing_warehouse_says_what_to_do(tmp_path: Path):
    result = CliRunner().invoke(main, ["tables", "--warehouse", str(tmp_path / "none.duckdb")])
    assert result.exit_code != 0
    assert "No warehouse at" in result.output and "cdp generate" in result.output


def test_generate_then_tables_lists_raw_tables(tmp_path: Path):
    warehouse = tmp_path / "cli.duckdb"
    runner = CliRunner()
    result = runner.invoke(
        main, ["generate", "--people", "300", "--seed", "3", "--quiet", "--warehouse", str(warehouse)]
    )
    assert result.exit_code == 0, result.output
    assert "raw.crm_contacts" in result.output
    listed = runner.invoke(main, ["tables", "--schema", "raw", "--warehouse", str(warehouse)])
    assert listed.exit_code == 0, listed.output
    for table in ("crm_contacts", "shop_orders", "web_events", "deletion_requests"):
        assert table in listed.output


@pytest.mark.parametrize("people", ["0", "-5", "many"])
def test_generate_rejects_a_bad_people_count(people: str, tmp_path: Path):
    result = CliRunner().invoke(main, ["generate", "--people", people, "--warehouse", str(tmp_path / "x.duckdb")])
    assert result.exit_code == 2
    assert "--people" in result.output


def test_build_failure_is_reported_with_dbt_output(tmp_path: Path):
    """A build on a warehouse without raw tables fails with dbt's own error, not a traceback."""
    result = CliRunner().invoke(
        main, ["build", "--select", "stg_crm__contacts", "--warehouse", str(tmp_path / "empty.duckdb")]
    )
    assert result.exit_code == 1
    assert "dbt build" in result.output and "failed" in result.output
