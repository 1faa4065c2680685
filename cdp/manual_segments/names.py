"""Segment names: the rule a manual segment's name follows, and the names dbt segments hold.

Segment names are keys in syncs, so they are unique across all segments. The dbt side is
read as syncs read their definitions: from dbt's manifest, where every segment model is a
model tagged ``segment`` (dbt_project.yml tags ``models/segments/audiences/``; the segment
registry finds its models by the same tag). A model that holds several segments (clusters)
only names them when it runs, so the built ``segments`` table is read as well.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb

from cdp.dbt import DbtError, fresh_manifest
from cdp.manual_segments.errors import InvalidSegmentNameError, ManualSegmentError
from cdp.manual_segments.tables import relation_exists

#: Lower snake case: a letter, then letters, digits and single underscores.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
NAME_MAX_LENGTH = 63
#: The dbt tag every segment model carries (dbt_project.yml, models/segments/audiences/).
SEGMENT_TAG = "segment"


def validate_segment_name(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Raise InvalidSegmentNameError unless ``name`` is lower snake case and no dbt segment's name."""
    if len(name) > NAME_MAX_LENGTH or not NAME_PATTERN.fullmatch(name):
        raise InvalidSegmentNameError(
            f"Invalid segment name {name!r}: use lower snake case — a lower-case letter, then lower-case "
            f"letters, digits and single underscores, at most {NAME_MAX_LENGTH} characters (e.g. vip_customers). "
            "Segment names become keys in syncs."
        )
    taken_by = dbt_segment_names(con).get(name)
    if taken_by:
        raise InvalidSegmentNameError(
            f"{name!r} is already the name of a dbt segment ({taken_by}); segment names are unique across "
            "all segments. Choose another name."
        )


def dbt_segment_names(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Names used by dbt segments → where: segment models in the manifest, then built `segments` rows."""
    names = dict(segment_models())
    if relation_exists(con, "main", "segments"):
        try:
            rows = con.execute(
                "select segment_name, segment_type from main.segments where segment_type <> 'manual'"
            ).fetchall()
        except duckdb.Error:  # a view over tables not built yet: nothing to collide with
            rows = []
        for segment_name, segment_type in rows:
            names.setdefault(segment_name, f"{segment_type} segment in the segments table")
    return names


def segment_models(manifest: Path | None = None) -> dict[str, str]:
    """Every segment model in the dbt project (name → 'dbt model <its file>'), from the manifest."""
    try:
        path = manifest if manifest is not None else fresh_manifest()
    except DbtError as error:
        raise ManualSegmentError(f"Could not read the dbt project to check segment names: {error}") from None
    nodes = json.loads(Path(path).read_text()).get("nodes", {}).values()
    models = (node for node in nodes if node.get("resource_type") == "model" and SEGMENT_TAG in node.get("tags", []))
    return {node["name"]: f"dbt model {node['original_file_path']}" for node in sorted(models, key=lambda n: n["name"])}
