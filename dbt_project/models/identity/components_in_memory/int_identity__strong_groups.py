"""Phase 1 of resolution on DuckDB: groups of records joined by strong identifiers only, over the
graph in int_identity__strong_record_nodes, computed in memory (cdp/identity_components.py says
why). The model of the same name in components_in_sql/ is the portable SQL fixpoint; both give
the same groups (enabled in dbt_project.yml).

Output: one row per node: node_id, group_id (the smallest node id in its group).
"""

from cdp.identity_components import record_components


def model(dbt, session):
    return record_components(dbt.ref("int_identity__strong_record_nodes"), label_column="group_id")
