"""Which schema each model lands in, and who may read what.

Public models (the target's schema, `main`) are what users, syncs and the product's Python
read; int_ models are building blocks in schema `intermediate`
(dbt_project/macros/generate_schema_name.sql). Tests and benchmarks may look inside.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from cdp.settings import REPO_ROOT

PRODUCT_PACKAGES = ("cdp", "cli", "destinations", "orchestration")
#: SQL that reads an int_ model or the intermediate schema: `from int_x__y`, `join intermediate.t`, …
_READS_INTERNAL = re.compile(r"\b(?:from|join)\s+(?:\"?\w+\"?\.)?\"?(?:int_\w+|intermediate\.\w+)", re.IGNORECASE)


def test_int_models_and_only_they_are_built_in_schema_intermediate(dbt_manifest: Path):
    models = [
        node for node in json.loads(dbt_manifest.read_text())["nodes"].values() if node["resource_type"] == "model"
    ]
    schemas = {node["name"]: node["schema"] for node in models}
    internal = {name for name in schemas if name.startswith("int_")}
    assert {"int_identity__record_profiles", "int_attributes__consent", "int_predictive__predictions",
            "int_segments__manual_members"} <= internal  # fmt: skip
    assert {name: schemas[name] for name in internal} == dict.fromkeys(internal, "intermediate")
    assert {schemas[name] for name in schemas if name not in internal} == {"main", "staging"}


def test_product_python_reads_public_models_only():
    offenders = []
    for package in PRODUCT_PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            text = path.read_text()
            for match in _READS_INTERNAL.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{line}: {' '.join(match.group(0).split())}")
    assert not offenders, "product code reads internal models:\n" + "\n".join(offenders)


def test_the_check_for_internal_reads_catches_them():
    for sql in (
        "select * from main.int_identity__record_profiles",
        "left join\n    int_x__y as y",
        "from intermediate.t",
    ):
        assert _READS_INTERNAL.search(sql), sql
    for sql in (
        "from main.profile_source_records",
        "select int_value from main.profiles",
        "from staging.stg_web__events",
    ):
        assert not _READS_INTERNAL.search(sql), sql
