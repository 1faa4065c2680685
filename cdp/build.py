"""`dbt build` on any target, with the predictive step where dbt cannot run the Python models.

On DuckDB the churn/value and cluster models are dbt Python models and one `dbt build` does
everything. Postgres and Spark (outside Databricks) have no Python models: there the models
`int_predictive__predictions` and `int_predictive__cluster_assignments` are stand-ins
(materialization `fitted_outside_dbt`, dbt_project/macros/predictive/fitted_outside_dbt.sql) over
tables the predictive step (cdp/predictive/step.py) writes. dbt_project.yml decides which engine
gets which; the manifest says. A build then runs in three parts:

1. `dbt build` of everything except the stand-ins and what depends on them (features included);
2. the predictive step: the same fitting code as the dbt Python models, reading the features
   through the target's connection and writing the two tables back;
3. `dbt build` of the stand-ins (their tests check the step's tables), everything downstream, and
   the views over the segment registry (which every segment model writes) with their tests.

A selection (`--select`, `--exclude`, `--selector`) is honoured: part 3 builds only the selected
nodes downstream of the stand-ins, and the step runs only when a stand-in is selected.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

from cdp.dbt import DbtError, fresh_manifest, run_dbt
from cdp.predictive.step import MATERIALIZATION
from cdp.targets import Target

#: dbt node selection: every model the predictive step stands in for (its materialization names it).
STEP_MODELS = f"config.materialized:{MATERIALIZATION}"
#: The views over the segment registry (segments, segment_membership, …): every segment model writes
#: the registry, so they and their tests come last, after the segments that read the predictions.
REGISTRY_VIEWS = "tag:segment_registry"

#: dbt options that select nodes, and whether each takes values (all do).
_SELECTION_OPTIONS = ("-s", "--select", "-m", "--models", "--model", "--exclude", "--selector", "--resource-type")


def split_selection(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """(selection arguments, every other argument) of a dbt command line, each in its order."""
    selection: list[str] = []
    other: list[str] = []
    taking = False
    for arg in args:
        name = arg.split("=", 1)[0]
        if name in _SELECTION_OPTIONS:
            selection.append(arg)
            taking = "=" not in arg
        elif taking and not arg.startswith("-"):
            selection.append(arg)
        else:
            taking = False
            other.append(arg)
    return selection, other


def _listed(selection: Sequence[str], target: Target) -> list[str]:
    """Names of the models `dbt ls` selects with ``selection`` (parses; no query runs)."""
    output = run_dbt(
        ["ls", "--resource-type", "model", "--output", "json", "--output-keys", "name", "--quiet", *selection],
        echo=False,
        target=target.name,
    )
    names = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("{"):
            names.append(json.loads(line)["name"])
    return names


def needs_predictive_step(target: Target) -> bool:
    """Whether the target's manifest has stand-ins for the Python models (dbt cannot run them there)."""
    manifest = json.loads(fresh_manifest(target=target.name).read_text())
    return any(
        node["resource_type"] == "model" and node["config"].get("materialized") == MATERIALIZATION
        for node in manifest["nodes"].values()
    )


def build_project(args: Sequence[str], target: Target, *, echo: bool = True) -> str:
    """`dbt build <args>` on ``target``, with the predictive step in the middle where it is needed; dbt's output."""
    if not needs_predictive_step(target):
        return run_dbt(["build", *args], echo=echo, target=target.name)

    selection, other = split_selection(args)
    if selection:
        later = sorted(set(_listed(selection, target)) & set(_listed(["--select", f"{STEP_MODELS}+"], target)))
        stand_ins = set(_listed(["--select", STEP_MODELS], target))
        if not stand_ins & set(later):
            return run_dbt(["build", *args], echo=echo, target=target.name)
        second = ["--select", *later]
    else:
        second = ["--select", f"{STEP_MODELS}+", REGISTRY_VIEWS]

    first = ["build", *args, "--exclude", f"{STEP_MODELS}+"] + ([] if selection else [REGISTRY_VIEWS])
    outputs = [run_dbt(first, echo=echo, target=target.name)]
    outputs.append(run_predictive_step(target, echo=echo))
    outputs.append(run_dbt(["build", *second, *other], echo=echo, target=target.name))
    return "".join(outputs)


def run_predictive_step(target: Target, *, echo: bool = True) -> str:
    """Run cdp/predictive/step.py in a child process (Spark's metastore admits one JVM at a time)."""
    command = [sys.executable, "-m", "cdp.predictive.step", "--target", target.name]
    result = subprocess.run(command, capture_output=True, text=True)
    output = result.stdout + result.stderr
    if echo:
        sys.stdout.write(result.stdout)
        sys.stdout.flush()
    if result.returncode != 0:
        tail = "\n".join(output.splitlines()[-40:])
        raise DbtError(f"The predictive step (target {target.name}) failed with exit code {result.returncode}:\n{tail}")
    return output
