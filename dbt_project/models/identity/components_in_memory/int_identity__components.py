"""Phase 2 of resolution on DuckDB: connected components over every identifier the guard allows,
over the graph in int_identity__linkable_record_nodes, computed in memory
(cdp/identity_components.py says why). A component is one person. The model of the same name in
components_in_sql/ is the portable SQL fixpoint; both give the same components (enabled in
dbt_project.yml).

Output: one row per node: node_id, component_id (the smallest node id in its component; internal,
profile_id is the stable id).
"""

from cdp.identity_components import record_components


def model(dbt, session):
    return record_components(dbt.ref("int_identity__linkable_record_nodes"), label_column="component_id")
