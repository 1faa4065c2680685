"""The predictive step: the Python models' code, run outside dbt where the adapter has no Python models.

On Postgres and Spark (outside Databricks) the models int_predictive__predictions and
int_predictive__cluster_assignments are stand-ins (models/predictive/fitted_outside_dbt/,
materialization `fitted_outside_dbt`). Each names, in ``meta.fitted_by``, the function the dbt
Python model calls (``module:function``) and refs its inputs in argument order. This step reads
those inputs through the target's connection (profiles.yml), calls the same function, and writes
its frame as the stand-in's table, so the stand-ins and everything downstream build as on DuckDB.

Run between two dbt invocations (cdp/build.py does), in a process of its own:
``python -m cdp.predictive.step --target postgres``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cdp.engine_tables import opened, read_frame, write_frame
from cdp.targets import Target, load_target

#: dbt materialization of the stand-ins (dbt_project/macros/predictive/fitted_outside_dbt.sql).
MATERIALIZATION = "fitted_outside_dbt"


class PredictiveStepError(RuntimeError):
    """A stand-in is declared wrongly, or the step could not fit or write it."""


@dataclass(frozen=True)
class Relation:
    schema: str
    identifier: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.identifier}"


@dataclass(frozen=True)
class FittedModel:
    """One stand-in: the table the step writes, the function that computes it, its inputs in argument order."""

    name: str
    relation: Relation
    fitted_by: str
    inputs: tuple[tuple[str, Relation], ...]

    def function(self) -> Callable[..., pd.DataFrame]:
        module_name, _, function_name = self.fitted_by.partition(":")
        try:
            return getattr(importlib.import_module(module_name), function_name)
        except (ImportError, AttributeError) as error:
            raise PredictiveStepError(f"{self.name}: meta.fitted_by {self.fitted_by!r} names no function.") from error


def fitted_models(manifest: dict[str, Any]) -> list[FittedModel]:
    """The enabled stand-ins of a dbt manifest, each after the stand-ins it reads."""
    nodes = manifest["nodes"]
    by_name = {node["name"]: node for node in nodes.values() if node["resource_type"] == "model"}
    stand_ins = {
        node["name"]: node for node in by_name.values() if node["config"].get("materialized") == MATERIALIZATION
    }
    models: dict[str, FittedModel] = {}
    for name, node in stand_ins.items():
        fitted_by = node["config"].get("meta", {}).get("fitted_by")
        if not fitted_by or ":" not in fitted_by:
            raise PredictiveStepError(f"{name} ({node['original_file_path']}) has no meta.fitted_by 'module:function'.")
        inputs = []
        for ref in node["refs"]:
            parent = by_name.get(ref["name"])
            if parent is None:
                raise PredictiveStepError(f"{name} refs {ref['name']}, which is not an enabled model.")
            inputs.append((ref["name"], Relation(parent["schema"], parent["alias"])))
        models[name] = FittedModel(name, Relation(node["schema"], node["alias"]), fitted_by, tuple(inputs))

    ordered: list[FittedModel] = []
    pending = dict(models)
    while pending:
        ready = [m for m in pending.values() if not any(name in pending for name, _ in m.inputs)]
        if not ready:
            raise PredictiveStepError(f"The stand-ins {sorted(pending)} read each other in a cycle.")
        for model in sorted(ready, key=lambda m: m.name):
            ordered.append(model)
            del pending[model.name]
    return ordered


def run_step(target: Target, manifest_path: Path, echo: Callable[[str], None] = print) -> dict[str, int]:
    """Fit every stand-in of the manifest on ``target``; rows written per stand-in."""
    manifest = json.loads(manifest_path.read_text())
    models = fitted_models(manifest)
    written: dict[str, int] = {}
    if not models:
        echo(f"predictive step: target {target.name} runs the Python models in dbt; nothing to fit.")
        return written
    with opened(target) as handle:
        for model in models:
            started = time.monotonic()
            frames = [read_frame(target, handle, relation.schema, relation.identifier) for _, relation in model.inputs]
            result = model.function()(*frames)
            write_frame(target, handle, model.relation.schema, model.relation.identifier, result)
            written[model.name] = len(result)
            echo(
                f"predictive step: {model.name} = {model.fitted_by}({', '.join(name for name, _ in model.inputs)}) "
                f"-> {model.relation} on {target.name}: {len(result):,} rows in {time.monotonic() - started:.1f}s"
            )
    return written


def main(argv: Sequence[str] | None = None) -> int:
    from cdp.dbt import fresh_manifest
    from cdp.settings import export_target_env, export_warehouse_env

    parser = argparse.ArgumentParser(prog="python -m cdp.predictive.step", description=__doc__.splitlines()[0])
    parser.add_argument("--target", help="dbt target (default: $CDP_TARGET or duckdb)")
    args = parser.parse_args(argv)
    name = export_target_env(args.target)
    export_warehouse_env()
    target = load_target(name)
    try:
        run_step(target, fresh_manifest(target=name))
    except PredictiveStepError as error:
        print(f"predictive step failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
