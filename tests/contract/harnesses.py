"""Connector type -> its contract harness. A connector registered in
destinations.config.CONNECTORS without an entry here fails the contract suite."""

from __future__ import annotations

from contract.google_customer_match import GoogleCustomerMatchHarness
from contract.harness import ConnectorHarness
from contract.webhook import WebhookHarness

HARNESSES: dict[str, type[ConnectorHarness]] = {
    "webhook": WebhookHarness,
    "google_customer_match": GoogleCustomerMatchHarness,
}
