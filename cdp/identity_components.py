"""Connected components of the identity graph in memory, where dbt runs Python models (DuckDB).

The dbt Python models models/identity/components_in_memory/ call ``record_components``; on
the other engines (Postgres, Spark) the models of the same names in components_in_sql/ run the
portable SQL fixpoint (macros/identity/connected_components.sql). Both read the same graph
input, the record-node views int_identity__strong_record_nodes and
int_identity__linkable_record_nodes, and give the same partition with the same labels: each
node's component is named by the smallest node id in it (tests/test_identity_scenarios.py
builds the same worlds both ways and compares them row for row).

Why not SQL everywhere: each fixpoint pass joins every edge, and a warehouse pays a few
passes' worth of scans and writes per doubling of the longest chain; scipy's
connected_components is one linear pass over a sparse matrix (at 1M people, 3.8M nodes and
3.5M edges: well under a second, against about ten for the fixpoint in DuckDB).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

#: What a record-node view gives the graph: which nodes each record carries (a record links them all).
GRAPH_SQL = "select node_id, record_number from record_nodes"


def smallest_node_of_component(node_ids: np.ndarray, record_numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nodes of the graph in which record ``record_numbers[i]`` carries node ``node_ids[i]`` (non-negative
    integers; pairs may repeat), sorted, and for each the smallest node id of its connected component
    (nodes carried by one record are connected).

    Edges: each record's nodes joined to the record's smallest node (a star, as the SQL fixpoint's
    record_star_edges), self-loops left out. Node ids index the sparse matrix directly (they are dense
    row numbers): ids not in ``node_ids`` are isolated vertices, never read."""
    if len(node_ids) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    if int(node_ids.min()) < 0 or int(record_numbers.min()) < 0:
        raise ValueError("identity components: node ids and record numbers must be non-negative")
    size = int(node_ids.max()) + 1
    record_anchor = np.full(int(record_numbers.max()) + 1, size, dtype=np.int64)
    np.minimum.at(record_anchor, record_numbers, node_ids)
    anchors = record_anchor[record_numbers]
    star = anchors != node_ids
    graph = csr_matrix(
        (np.ones(int(star.sum()), dtype=np.bool_), (anchors[star], node_ids[star])),
        shape=(size, size),
    )
    _, labels = connected_components(graph, directed=False, return_labels=True)
    present = np.zeros(size, dtype=bool)
    present[node_ids] = True
    nodes = np.flatnonzero(present).astype(np.int64)
    node_labels = labels[nodes]
    smallest = np.full(int(labels.max()) + 1, size, dtype=np.int64)
    np.minimum.at(smallest, node_labels, nodes)
    return nodes, smallest[node_labels]


def record_components(record_nodes, label_column: str) -> pa.Table:
    """One row per node of a record-node view (a DuckDB relation with record_number and node_id):
    ``node_id`` and ``label_column``, the smallest node id of its component."""
    graph = record_nodes.query("record_nodes", GRAPH_SQL).fetchnumpy()
    nodes, labels = smallest_node_of_component(
        np.asarray(graph["node_id"], dtype=np.int64), np.asarray(graph["record_number"], dtype=np.int64)
    )
    return pa.table({"node_id": pa.array(nodes, pa.int64()), label_column: pa.array(labels, pa.int64())})
