"""The segment framework: segments, segment_membership and history through real dbt builds."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cdp.dbt import run_dbt
from cdp.settings import DBT_PROJECT_DIR
from cdp.warehouse import connect


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with connect(path, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture
def warehouse_copy(built_warehouse: Path, tmp_path: Path) -> Path:
    path = tmp_path / "segments.duckdb"
    shutil.copy(built_warehouse, path)
    return path


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A private copy of the dbt project, so a test can add files without touching the repo."""
    target = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, target, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    return target


def test_every_shipped_segment_is_listed_with_its_yaml_metadata(built_warehouse: Path):
    rows = {
        name: (segment_type, owner, description)
        for name, segment_type, owner, description in query(
            built_warehouse, "select segment_name, segment_type, owner, description from segments"
        )
    }
    assert rows["cart_abandoners"][0] == "rule"
    assert rows["cart_abandoners"][1] == "crm-team"
    assert "running shoes" in rows["running_shoe_searchers_not_buying"][2]
    # membership agrees with the segment's own model and with the counts in `segments`
    for name in ("cart_abandoners", "running_shoe_searchers_not_buying"):
        members = query(built_warehouse, "select count(*) from segment_membership where segment_name = ?", [name])
        own = query(built_warehouse, f"select count(distinct profile_id) from main.{name}")
        count = query(built_warehouse, "select member_count from segments where segment_name = ?", [name])
        assert members == own == count


def test_a_new_segment_file_appears_without_touching_any_other_file(warehouse_copy: Path, project_copy: Path):
    (project_copy / "models" / "segments" / "audiences" / "uk_support_contacts.sql").write_text(
        "-- People in the UK who opened a support ticket.\n"
        "{{ did_event('ticket_opened') }}\n"
        "intersect\n"
        "select profile_id from {{ ref('profiles') }} where country = 'GB'\n"
    )
    run_dbt(
        ["build", "--select", "uk_support_contacts", "segments", "segment_membership"],
        warehouse=warehouse_copy,
        echo=False,
        project_dir=project_copy,
    )

    expected = query(
        warehouse_copy,
        """
        select count(distinct e.profile_id) from profile_events e
        inner join profiles p using (profile_id)
        where e.event_type = 'ticket_opened' and p.country = 'GB'
        """,
    )[0][0]
    assert expected > 0
    assert query(
        warehouse_copy, "select segment_type, member_count from segments where segment_name = 'uk_support_contacts'"
    ) == [("rule", expected)]
    assert query(
        warehouse_copy, "select count(*) from segment_membership where segment_name = 'uk_support_contacts'"
    ) == [(expected,)]

    # deleting the file removes the segment from the public models at the next build
    (project_copy / "models" / "segments" / "audiences" / "uk_support_contacts.sql").unlink()
    run_dbt(
        ["build", "--select", "segments", "segment_membership"],
        warehouse=warehouse_copy,
        echo=False,
        project_dir=project_copy,
    )
    assert query(warehouse_copy, "select count(*) from segments where segment_name = 'uk_support_contacts'") == [(0,)]
    assert query(
        warehouse_copy, "select count(*) from segment_membership where segment_name = 'uk_support_contacts'"
    ) == [(0,)]


def test_history_records_entries_and_exits_across_builds_with_changed_data(warehouse_copy: Path):
    segment = "cart_abandoners"
    before = {
        p
        for (p,) in query(warehouse_copy, "select profile_id from segment_membership where segment_name = ?", [segment])
    }
    first_stays = dict(
        query(
            warehouse_copy,
            "select profile_id, entered_at from segment_membership_history where segment_name = ? and exited_at is null",
            [segment],
        )
    )
    assert before and set(first_stays) == before

    # change the data: one member completes an order; one outsider abandons a cart
    leaver = sorted(before)[0]
    (leaver_device,) = query(
        warehouse_copy,
        "select identifier_value from profile_identifiers where profile_id = ? and identifier_type = 'anonymous_id' limit 1",
        [leaver],
    )[0]
    (joiner, joiner_device) = query(
        warehouse_copy,
        """
        select profile_id, identifier_value from profile_identifiers
        where identifier_type = 'anonymous_id'
          and profile_id not in (select profile_id from segment_membership where segment_name = ?)
        order by profile_id limit 1
        """,
        [segment],
    )[0]
    with connect(warehouse_copy) as con:
        for event_id, device, event_type in (
            ("test-leaver-order", leaver_device, "order_completed"),
            ("test-joiner-cart", joiner_device, "product_added_to_cart"),
        ):
            con.execute(
                "insert into raw.web_events (event_id, anonymous_id, event_type, properties, occurred_at) "
                "values (?, ?, ?, '{}', timestamp '2026-10-31 12:00:00')",
                [event_id, device, event_type],
            )

    run_dbt(["build", "--exclude", "resource_type:test"], warehouse=warehouse_copy, echo=False)

    after = {
        p
        for (p,) in query(warehouse_copy, "select profile_id from segment_membership where segment_name = ?", [segment])
    }
    assert leaver not in after and joiner in after
    stays = query(
        warehouse_copy,
        "select profile_id, entered_at, exited_at from segment_membership_history where segment_name = ? order by profile_id, entered_at",
        [segment],
    )
    by_profile: dict[str, list[tuple]] = {}
    for profile_id, entered, exited in stays:
        by_profile.setdefault(profile_id, []).append((entered, exited))
    second_build = max(entered for _, entered, _ in stays)
    assert second_build > max(first_stays.values())
    # the leaver's stay closed at the second build; the joiner's opened there
    assert by_profile[leaver] == [(first_stays[leaver], second_build)]
    assert by_profile[joiner] == [(second_build, None)]
    # stayers keep their original entry and have exactly one open stay
    for profile_id in before & after:
        assert by_profile[profile_id] == [(first_stays[profile_id], None)]
    # "who joined since the last build" is one query
    joined = query(
        warehouse_copy,
        "select profile_id from segment_membership_history where segment_name = ? and entered_at >= ?",
        [segment, second_build],
    )
    assert {p for (p,) in joined} == after - before


def test_shipped_predictive_and_cluster_segments_follow_their_models(built_warehouse: Path):
    types = {t for (t,) in query(built_warehouse, "select distinct segment_type from segments")}
    assert {"rule", "predictive", "cluster"} <= types
    # high churn risk is exactly the customers scored at or above 0.7
    expected = {
        p for (p,) in query(built_warehouse, "select profile_id from profile_scores where churn_probability >= 0.7")
    }
    members = {
        p
        for (p,) in query(
            built_warehouse, "select profile_id from segment_membership where segment_name = 'high_churn_risk'"
        )
    }
    assert members == expected
    # one segment per cluster, together covering every clustered profile exactly once
    clusters = query(
        built_warehouse,
        "select count(*), count(distinct profile_id) from segment_membership where segment_name like 'cluster_%'",
    )
    clustered = query(built_warehouse, "select count(*) from profile_clusters")
    assert clusters == [(clustered[0][0], clustered[0][0])]
    n_clusters = query(built_warehouse, "select count(*) from cluster_descriptions")[0][0]
    assert query(built_warehouse, "select count(*) from segments where segment_type = 'cluster'") == [(n_clusters,)]


def test_a_segment_below_its_minimum_size_makes_the_build_warn(warehouse_copy: Path, project_copy: Path):
    audiences = project_copy / "models" / "segments" / "audiences"
    (audiences / "tiny_audience.sql").write_text(
        "select profile_id from {{ ref('profiles') }} order by profile_id limit 3\n"
    )
    (audiences / "_tiny.yml").write_text(
        "version: 2\nmodels:\n  - name: tiny_audience\n    description: Three people.\n"
        "    config:\n      meta:\n        segment: {type: rule, owner: qa, min_size: 50}\n"
    )
    output = run_dbt(
        ["build", "--select", "tiny_audience", "segments"],
        warehouse=warehouse_copy,
        echo=False,
        project_dir=project_copy,
    )
    # the build passes, with a warning naming the test that flags undersized segments
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)
    warned = re.search(r"WARN (\d+) +segment_below_minimum_size_segments_", plain)
    assert warned, plain[-2000:]
    assert "ERROR=0" in plain
    undersized = query(warehouse_copy, "select segment_name from segments where member_count < min_size order by 1")
    assert ("tiny_audience",) in undersized
    assert int(warned.group(1)) == len(undersized)
    assert query(
        warehouse_copy, "select member_count, min_size from segments where segment_name = 'tiny_audience'"
    ) == [(3, 50)]
