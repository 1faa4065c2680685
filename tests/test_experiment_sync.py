"""A sync with an experiment, over real HTTP to the sandbox webhook, on every transactional engine:
control is never sent, another sync's arm is not sent, the arm rides along as a field when mapped,
and the global holdout is excluded from every sync. Arms come from main.experiment_assignments, as
dbt builds it (here a hand-made table of the same shape, filled by the reference rule)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from experiment_reference import assign
from sync_world import DESTINATIONS, SEGMENT, World, people
from sync_world import _table as table

from cdp.experiments import Experiment
from destinations.definitions import parse_sync_definition
from destinations.sandbox.webhook import WebhookSandbox
from destinations.warehouse.locations import Location

ARMS = [("control", 20), ("a", 40), ("b", 40)]
EXPERIMENT = Experiment("trial", SEGMENT, tuple(ARMS), 30)
ASSIGNMENT_COLUMNS = {"experiment": pa.string(), "profile_id": pa.string(), "arm": pa.string()}


def sync(name: str = "test_sync", declared: Experiment = EXPERIMENT, **spec):
    base = {
        "segment": SEGMENT,
        "destination": "hook",
        "mode": "mirror",
        "key": "email",
        "identifiers": {"email": "email"},
        "fields": {"first_name": "first_name", "lifetime_value": "lifetime_value"},
    }
    return parse_sync_definition(
        {"name": name, "depends_on": {}}, base | spec, DESTINATIONS, experiments={"trial": declared}
    )


def assignments(world: World, rows: list[tuple[str, str, str]]) -> None:
    with world.location.open() as wh:
        wh.load_rows("main.experiment_assignments", table(ASSIGNMENT_COLUMNS, rows), temporary=False)


def test_control_is_never_sent_and_each_sync_sends_only_its_arms(sync_engine: Location, tmp_path: Path):
    with WebhookSandbox() as sandbox:
        world = World(tmp_path / "w.duckdb", sandbox, location=sync_engine)
        crowd = people(120)
        world.set_people(crowd)
        arm_of = {pid: assign("trial", ARMS, pid) for pid in crowd}
        assignments(world, [("trial", pid, arm) for pid, arm in arm_of.items()])
        control = {crowd[pid].email for pid, arm in arm_of.items() if arm == "control"}
        assert 5 < len(control) < 50

        result = world.run(sync(experiment="trial", arms=["a"]), batch_size=200)
        assert result.status == "succeeded", result.message
        sent_a = set(world.received())
        assert sent_a == {crowd[pid].email for pid, arm in arm_of.items() if arm == "a"}
        assert not sent_a & control
        assert result.plan.excluded_holdout == 120 - len(sent_a)
        planned = {row[0] for row in world.query("select profile_id from cdp_sync.plan__test_sync")}
        assert planned and not planned & {pid for pid, arm in arm_of.items() if arm == "control"}

        # a second sync sends every non-control arm, carrying each member's arm
        with WebhookSandbox() as other:
            world.sandbox = other
            result = world.run(
                sync("every_arm", experiment="trial", fields={"variant": "experiment_arm"}), batch_size=200
            )
            assert result.status == "succeeded", result.message
            received = world.received()
        assert set(received) == {crowd[pid].email for pid, arm in arm_of.items() if arm != "control"}
        assert all(received[crowd[pid].email]["variant"] == arm for pid, arm in arm_of.items() if arm != "control")


def test_raising_control_removes_the_people_it_moves(sync_engine: Location, tmp_path: Path):
    """Mirror mode: people who moved into control at the next build leave the destination."""
    with WebhookSandbox() as sandbox:
        world = World(tmp_path / "w.duckdb", sandbox, location=sync_engine)
        crowd = people(80)
        world.set_people(crowd)
        small = [("control", 10), ("treatment", 90)]
        large = [("control", 30), ("treatment", 70)]
        assignments(world, [("trial", pid, assign("trial", small, pid)) for pid in crowd])
        # the declared shares change between builds; the sync's definition does not
        definition = sync(declared=Experiment("trial", SEGMENT, tuple(small), 30), experiment="trial")
        assert world.run(definition, batch_size=200).status == "succeeded"
        before = set(world.received())
        assignments(world, [("trial", pid, assign("trial", large, pid)) for pid in crowd])
        result = world.run(definition, batch_size=200, force=True)
        after = set(world.received())
        assert after < before
        assert after == {crowd[pid].email for pid in crowd if assign("trial", large, pid) == "treatment"}
        assert result.plan.removes == len(before - after) > 0


def test_the_global_holdout_is_excluded_from_every_sync(sync_engine: Location, tmp_path: Path):
    with WebhookSandbox() as sandbox:
        world = World(tmp_path / "w.duckdb", sandbox, location=sync_engine)
        crowd = people(100)
        world.set_people(crowd)
        held = {
            pid for pid in crowd if assign("global_holdout", [("control", 15), ("treatment", 85)], pid) == "control"
        }
        rows = [("global_holdout", pid, "control" if pid in held else "treatment") for pid in crowd]
        assignments(world, rows)
        result = world.run(sync(), batch_size=200)  # a sync with no experiment of its own
        assert result.status == "succeeded", result.message
        assert set(world.received()) == {crowd[pid].email for pid in crowd if pid not in held}
        assert result.plan.excluded_holdout == len(held) > 0
