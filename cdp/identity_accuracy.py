"""Score resolved profiles against the sample generator's ground truth.

Every raw record of the identity-bearing tables is a point; the resolver puts it in a
profile (or in none, when it carries no usable identifier — then it stands alone), the
ground truth puts it with a real person. Pairwise scores count record pairs:

    precision = pairs in the same profile that are the same person / pairs in the same profile
    recall    = pairs in the same profile that are the same person / pairs that are the same person

computed from cluster sizes (sum of n·(n-1)/2 over contingency cells), never by listing
pairs, so it runs on millions of records. Also counted: people split over several
profiles, and profiles holding several people (over-merged).

The SQL lives here rather than in dbt because ground truth only exists in generated
warehouses; production projects have nothing to score against.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cdp.warehouse import connect

#: (ground-truth source_table, SQL giving record_id → its record in main.profile_source_records (source, record_id))
_RECORD_MAPS = {
    "crm_contacts": "select contact_id as record_id, 'crm' as source, contact_id as identity_record from staging.stg_crm__contacts",
    "shop_customers": "select customer_id as record_id, 'shop' as source, customer_id as identity_record from staging.stg_shop__customers",
    "pos_transactions": "select transaction_id as record_id, 'pos' as source, transaction_id as identity_record from staging.stg_pos__transactions",
    "support_tickets": "select ticket_id as record_id, 'support' as source, ticket_id as identity_record from staging.stg_support__tickets",
    "web_events": (
        "select event_id as record_id, 'web' as source, "
        "min(event_id) over (partition by anonymous_id, customer_id, email) as identity_record "
        "from staging.stg_web__events"
    ),
    "email_events": (
        "select event_id as record_id, 'email' as source, "
        "case when email is not null then min(event_id) over (partition by email) end as identity_record "
        "from staging.stg_email__events"
    ),
}


@dataclass(frozen=True)
class AccuracyReport:
    records: int
    resolved_records: int
    people: int
    profiles: int
    precision: float
    recall: float
    f1: float
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    split_people: int
    over_merged_profiles: int
    by_table: list[tuple[str, int, int]]  # (table, records, resolved)

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("records scored", f"{self.records:,}"),
            (
                "records resolved to a profile",
                f"{self.resolved_records:,} ({self.resolved_records / max(self.records, 1):.2%})",
            ),
            ("real people", f"{self.people:,}"),
            ("profiles", f"{self.profiles:,}"),
            ("pairwise precision", f"{self.precision:.4f}"),
            ("pairwise recall", f"{self.recall:.4f}"),
            ("pairwise F1", f"{self.f1:.4f}"),
            ("people split over several profiles", f"{self.split_people:,}"),
            ("profiles holding several people", f"{self.over_merged_profiles:,}"),
        ]


def score(warehouse: Path) -> AccuracyReport:
    """Score the built warehouse at ``warehouse`` (needs `dbt build` and ground_truth)."""
    mapped = " union all ".join(
        f"select '{table}' as source_table, * from ({sql})" for table, sql in _RECORD_MAPS.items()
    )
    tables = ", ".join(f"'{t}'" for t in _RECORD_MAPS)
    with connect(warehouse, read_only=True) as con:
        con.execute(
            f"""
            create temp table scored as
            with
            mapped as ({mapped}),
            truth as (
                select source_table, record_id, person_id
                from ground_truth.record_person
                where source_table in ({tables})
            )
            select
                truth.source_table,
                truth.record_id,
                truth.person_id,
                source_records.profile_id is not null as resolved,
                coalesce(
                    source_records.profile_id,
                    'alone:' || truth.source_table || ':' || truth.record_id
                ) as cluster
            from truth
            -- inner: a record staging keeps out belongs to an erased person (dbt_project/macros/privacy/
            -- erasure.sql), who is meant to be in no profile; staging has every other raw row
            inner join mapped
                on mapped.source_table = truth.source_table
                and mapped.record_id = truth.record_id
            left join main.profile_source_records as source_records
                on source_records.source = mapped.source
                and source_records.record_id = mapped.identity_record
            """
        )

        def pairs(column: str) -> str:
            return f"select coalesce(sum(n * (n - 1) / 2), 0) from (select count(*) as n from scored group by {column})"

        (true_pairs,) = con.execute(pairs("person_id")).fetchall()[0]
        (predicted_pairs,) = con.execute(pairs("cluster")).fetchall()[0]
        (correct_pairs,) = con.execute(pairs("cluster, person_id")).fetchall()[0]
        records, resolved, people, profiles = con.execute(
            "select count(*), count(*) filter (where resolved), count(distinct person_id), "
            "count(distinct cluster) filter (where resolved) from scored"
        ).fetchall()[0]
        (split_people,) = con.execute(
            "select count(*) from (select person_id from scored where resolved "
            "group by person_id having count(distinct cluster) > 1)"
        ).fetchall()[0]
        (over_merged,) = con.execute(
            "select count(*) from (select cluster from scored where resolved "
            "group by cluster having count(distinct person_id) > 1)"
        ).fetchall()[0]
        by_table = con.execute(
            "select source_table, count(*), count(*) filter (where resolved) from scored group by 1 order by 1"
        ).fetchall()
    precision = correct_pairs / predicted_pairs if predicted_pairs else 1.0
    recall = correct_pairs / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return AccuracyReport(
        records=int(records),
        resolved_records=int(resolved),
        people=int(people),
        profiles=int(profiles),
        precision=precision,
        recall=recall,
        f1=f1,
        true_pairs=int(true_pairs),
        predicted_pairs=int(predicted_pairs),
        correct_pairs=int(correct_pairs),
        split_people=int(split_people),
        over_merged_profiles=int(over_merged),
        by_table=[(t, int(n), int(r)) for t, n, r in by_table],
    )
