"""The in-memory connected components (cdp/identity_components.py) against a plain union-find, on
random record graphs: the same partition, each node labelled with its component's smallest node.
(tests/test_identity_scenarios.py compares it with the SQL fixpoint through real dbt builds.)"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdp.identity_components import smallest_node_of_component


def union_find_labels(pairs: list[tuple[int, int]]) -> dict[int, int]:
    """node -> smallest node of its component, where a record links every node it carries."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first_of_record: dict[int, int] = {}
    for record, node in pairs:
        parent.setdefault(node, node)
        if record in first_of_record:
            a, b = find(first_of_record[record]), find(node)
            parent[max(a, b)] = min(a, b)
        else:
            first_of_record[record] = node
    return {node: find(node) for node in parent}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 60)), max_size=120))
def test_matches_union_find(pairs: list[tuple[int, int]]) -> None:
    records = np.array([record for record, _ in pairs], dtype=np.int64)
    nodes = np.array([node for _, node in pairs], dtype=np.int64)
    got_nodes, got_labels = smallest_node_of_component(nodes, records)
    assert dict(zip(got_nodes.tolist(), got_labels.tolist(), strict=True)) == union_find_labels(pairs)
    assert got_nodes.tolist() == sorted(set(nodes.tolist()))


def test_a_late_record_merges_two_components() -> None:
    nodes = np.array([5, 3, 9, 7], dtype=np.int64)
    records = np.array([0, 0, 1, 1], dtype=np.int64)
    assert smallest_node_of_component(nodes, records)[1].tolist() == [3, 3, 7, 7]
    # a new record carrying 9 and 5 joins them: everyone is now labelled 3
    merged = smallest_node_of_component(np.append(nodes, [9, 5]), np.append(records, [2, 2]))
    assert merged[0].tolist() == [3, 5, 7, 9] and merged[1].tolist() == [3, 3, 3, 3]


def test_negative_ids_are_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        smallest_node_of_component(np.array([-1, 2]), np.array([0, 0]))
