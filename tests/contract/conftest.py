"""Every contract test runs once per registered connector, through its harness."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from contract.harness import ConnectorHarness
from contract.harnesses import HARNESSES
from destinations.config import CONNECTORS


@pytest.fixture(params=sorted(CONNECTORS))
def harness(request: pytest.FixtureRequest) -> ConnectorHarness:
    kind = request.param
    if kind not in HARNESSES:
        pytest.fail(
            f"connector '{kind}' is registered in destinations.config.CONNECTORS but has no contract "
            "harness: add one in tests/contract/ and list it in tests/contract/harnesses.py"
        )
    return HARNESSES[kind]()


@pytest.fixture
def sandbox(harness: ConnectorHarness) -> Iterator[Any]:
    with harness.sandbox() as running:
        yield running
