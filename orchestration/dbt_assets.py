"""Every dbt model, seed and snapshot as a Dagster asset; dbt tests become asset checks.

The asset definition is built on first use (`cdp_dbt_assets()`), not at import: it needs
the dbt manifest, which may have to be parsed first.

(No `from __future__ import annotations` here: Dagster reads the asset function's
annotations to find its resources.)
"""

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from cdp.settings import WAREHOUSE_ENV_VAR, warehouse_path
from orchestration.project import cdp_dbt_project

#: Everything that writes the DuckDB file runs in this pool (limit 1: DuckDB has one writer).
WAREHOUSE_POOL = "duckdb_warehouse"

#: dbt tag of every segment model (set on models/segments/audiences/ in dbt_project.yml).
SEGMENT_TAG = "segment"
#: dbt tag of the views over the segment registry (`segments`, `segment_membership`,
#: `segment_membership_history`; set in models/segments/_segments__models.yml).
SEGMENT_REGISTRY_TAG = "segment_registry"
#: what a team name in meta.segment.owner looks like (lower-case words joined by - or _)
_TEAM = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")


def _group_for(dbt_resource_props: Mapping[str, Any]) -> str:
    """The node's dbt group (one per folder, `+group` in dbt_project.yml); failing that, its folder
    under models/, so a folder not yet given a group still shows apart."""
    group = dbt_resource_props.get("config", {}).get("group")
    if group:
        return group
    fqn = dbt_resource_props.get("fqn", [])
    return fqn[1] if len(fqn) > 2 else "models"


def _segment_team(dbt_resource_props: Mapping[str, Any]) -> str | None:
    """A segment model's team (meta.segment.owner, e.g. retention-team) as a Dagster owner
    (`team:retention-team`); None when it names no single team (manual_segments: "set per list")."""
    meta = dbt_resource_props.get("config", {}).get("meta") or dbt_resource_props.get("meta") or {}
    owner = (meta.get("segment") or {}).get("owner")
    return f"team:{owner}" if isinstance(owner, str) and _TEAM.fullmatch(owner) else None


def _has_tag(dbt_resource_props: Mapping[str, Any], tag: str) -> bool:
    return tag in dbt_resource_props.get("tags", [])


def _segment_model_ids(manifest: Mapping[str, Any]) -> list[str]:
    """Unique ids of every segment model in the manifest, found by its tag (never by name)."""
    return sorted(
        unique_id
        for unique_id, node in manifest.get("nodes", {}).items()
        if node["resource_type"] == "model" and _has_tag(node, SEGMENT_TAG) and not _has_tag(node, SEGMENT_REGISTRY_TAG)
    )


class CdpDbtTranslator(DagsterDbtTranslator):
    """Groups and owners from dbt's groups (models/_groups.yml), segment teams beside them, and
    the lineage dbt cannot see for the registry views.

    Segment models write the registry from a post-hook and the registry views read it
    without `ref` (macros/segments/segment_registry.sql), so dbt's graph has no edge from
    a segment to `segments`; here every segment model becomes an upstream of each view.
    """

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return _group_for(dbt_resource_props)

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> Sequence[str] | None:
        """The dbt group owner's email (dagster-dbt reads it), then a segment model's team."""
        owners = list(super().get_owners(dbt_resource_props) or [])
        team = _segment_team(dbt_resource_props)
        return [*owners, team] if team else owners or None

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        if not _has_tag(self.get_resource_props(manifest, unique_id), SEGMENT_REGISTRY_TAG):
            return spec
        present = {dep.asset_key for dep in spec.deps}
        segments = [
            self.get_asset_spec(manifest, segment_id, project).key for segment_id in _segment_model_ids(manifest)
        ]
        return spec.merge_attributes(deps=[key for key in segments if key not in present])


def _registry_views_last(
    events: Iterable[Any], registry_views: set[dg.AssetKey], key_by_output: Mapping[str, dg.AssetKey]
) -> Iterator[Any]:
    """dbt's events, with those of the registry views held back until the build has finished.

    dbt does not know the registry views come after the segment models (it may build a view
    first: a view reads the registry at query time, so its content is current either way), but
    Dagster wants a multi-asset's outputs in the order of the asset graph, where the translator
    put every segment model upstream of the views. Held events are released in dbt's order,
    also when dbt fails.
    """

    def asset_key(event: Any) -> dg.AssetKey | None:
        if isinstance(event, dg.Output):
            return key_by_output.get(event.output_name)
        return getattr(event, "asset_key", None)

    held: list[Any] = []
    try:
        for event in events:
            if asset_key(event) in registry_views:
                held.append(event)
            else:
                yield event
    except Exception:
        yield from held
        raise
    yield from held


@contextmanager
def _absolute_warehouse_env() -> Iterator[None]:
    """While dbt runs: CDP_WAREHOUSE as an absolute path, its folder created.

    dbt runs in dbt_project/ and would resolve a relative path from there; this is done
    when an asset runs, never at import.
    """
    previous = os.environ.get(WAREHOUSE_ENV_VAR)
    path = warehouse_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.environ[WAREHOUSE_ENV_VAR] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(WAREHOUSE_ENV_VAR, None)
        else:
            os.environ[WAREHOUSE_ENV_VAR] = previous


@cache
def cdp_dbt_assets() -> dg.AssetsDefinition:
    """The dbt project as one multi-asset (built once per process, from a fresh manifest)."""
    project = cdp_dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=CdpDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)),
        pool=WAREHOUSE_POOL,
    )
    def cdp_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        registry_views = {spec.key for spec in context.assets_def.specs if SEGMENT_REGISTRY_TAG in spec.tags}
        keys_by_output = context.assets_def.keys_by_output_name
        with _absolute_warehouse_env():
            stand_ins = _stand_in_names(project)
            if stand_ins:
                yield from _build_around_the_predictive_step(context, dbt, project, stand_ins, registry_views)
                return
            events = dbt.cli(["build"], context=context).stream()
            yield from _registry_views_last(events, registry_views, keys_by_output)

    return cdp_dbt_models


def _stand_in_names(project: DbtProject) -> set[str]:
    """The stand-ins for the Python models in this target's manifest (Postgres, Spark: dbt cannot run
    Python there, so the predictive step fits them between two dbt invocations); none on DuckDB."""
    from cdp.predictive.step import MATERIALIZATION

    return {
        node["name"]
        for node in _manifest(project)["nodes"].values()
        if node.get("config", {}).get("materialized") == MATERIALIZATION
    }


def _manifest(project: DbtProject) -> dict[str, Any]:
    import json

    return json.loads(project.manifest_path.read_text())


def _build_around_the_predictive_step(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    project: DbtProject,
    stand_ins: set[str],
    registry_views: set[dg.AssetKey],
) -> Iterator[Any]:
    """`cdp build`'s three parts (cdp/build.py) as one Dagster step: dbt builds the selection up to
    the stand-ins, the predictive step fits and writes their tables (when a stand-in is selected),
    dbt builds the rest. Each dbt invocation keeps Dagster's own selection; the second leaves out
    every node the first ran, so no model or test runs twice."""
    from cdp.build import REGISTRY_VIEWS, STEP_MODELS, run_predictive_step
    from cdp.targets import load_target

    keys_by_output = context.assets_def.keys_by_output_name
    # (dagster-dbt reads an option's value as one argument: several selectors go space-separated)
    first = dbt.cli(["build", "--exclude", f"{STEP_MODELS}+ {REGISTRY_VIEWS}"], context=context)
    yield from _registry_views_last(first.stream(), registry_views, keys_by_output)
    nodes = _manifest(project)["nodes"]
    ran = sorted(
        {
            nodes[result["unique_id"]]["name"]
            for result in first.get_artifact("run_results.json")["results"]
            if result["unique_id"] in nodes
        }
    )
    if stand_ins & {key.path[-1] for key in context.selected_asset_keys}:
        context.log.info(f"predictive step: fitting {', '.join(sorted(stand_ins))} (dbt cannot run them here)")
        output = run_predictive_step(load_target(), echo=False)
        context.log.info(output.strip().splitlines()[-1] if output.strip() else "predictive step done")
    second = dbt.cli(["build", *(["--exclude", " ".join(ran)] if ran else [])], context=context)
    yield from _registry_views_last(second.stream(), registry_views, keys_by_output)
