"""The raw-data contract is written three times, for three readers, and they must agree:

- ``cdp/contract.py`` (the generator, the tests' hand-made worlds: DDL with types),
- the dbt sources, ``dbt_project/models/staging/*/_<source>__sources.yml`` (what dbt reads,
  tests and documents),
- README's "The data contract" table (what a user fills).

Every contract table and column is a source table and column of schema ``raw`` with the
same data type, in the same order, and vice versa; README names the same tables and columns.
"""

from __future__ import annotations

import re

import yaml

from cdp.contract import RAW_TABLES
from cdp.settings import DBT_PROJECT_DIR, REPO_ROOT

SOURCES_FILES = sorted((DBT_PROJECT_DIR / "models" / "staging").glob("*/_*__sources.yml"))


def _normalised(data_type: str) -> str:
    return re.sub(r"\s+", "", data_type).lower()


def _raw_sources() -> dict[str, list[tuple[str, str | None]]]:
    """Every table the dbt sources declare in schema raw: name → [(column, data_type)]."""
    tables: dict[str, list[tuple[str, str | None]]] = {}
    for path in SOURCES_FILES:
        for source in yaml.safe_load(path.read_text()).get("sources", []):
            if source.get("schema", source["name"]) != "raw":
                continue
            for table in source["tables"]:
                assert table["name"] not in tables, f"{table['name']} is declared twice ({path.name})"
                tables[table["name"]] = [
                    (column["name"], column.get("data_type")) for column in table.get("columns", [])
                ]
    return tables


def test_every_source_folder_has_a_sources_file():
    folders = sorted(path.name for path in (DBT_PROJECT_DIR / "models" / "staging").iterdir() if path.is_dir())
    assert [path.parent.name for path in SOURCES_FILES] == folders
    assert all(path.name == f"_{path.parent.name}__sources.yml" for path in SOURCES_FILES)


def test_the_dbt_sources_declare_exactly_the_contract_tables_and_columns():
    sources = _raw_sources()
    assert sorted(sources) == sorted(RAW_TABLES), "tables in the dbt sources vs cdp/contract.py"
    for table, columns in RAW_TABLES.items():
        declared = sources[table]
        assert [name for name, _ in declared] == [name for name, _ in columns], (
            f"{table}: the columns of the dbt source (left) differ from cdp/contract.py (right)"
        )
        for (name, declared_type), (_, contract_type) in zip(declared, columns, strict=False):
            assert declared_type is not None, f"{table}.{name}: the dbt source gives no data_type"
            assert _normalised(declared_type) == _normalised(contract_type), f"{table}.{name}"


def _readme_contract() -> dict[str, list[str]]:
    """README's "The data contract" table (header `| table | columns |`): table → column names."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## The data contract", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for line in section.splitlines()]
    start = lines.index("| table | columns |") + 2  # past the header and its --- row
    tables: dict[str, list[str]] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table, columns = (cell.strip() for cell in line.strip("|").split("|"))
        without_notes = re.sub(r"\([^)]*\)", "", columns)  # `status (`completed`, …)` → `status`
        tables[table] = [column.strip() for column in without_notes.split(",")]
    return tables


def test_readme_names_the_contract_tables_and_columns():
    assert _readme_contract() == {table: [name for name, _ in columns] for table, columns in RAW_TABLES.items()}
