"""Connector type -> its contract harness. A connector registered in
destinations.config.CONNECTORS without an entry here fails the contract suite."""

from __future__ import annotations

from contract.google_customer_match import GoogleCustomerMatchHarness
from contract.harness import ConnectorHarness
from contract.klaviyo import KlaviyoHarness
from contract.mailchimp import MailchimpHarness
from contract.meta import MetaHarness
from contract.webhook import WebhookHarness

HARNESSES: dict[str, type[ConnectorHarness]] = {
    "klaviyo": KlaviyoHarness,
    "webhook": WebhookHarness,
    "mailchimp": MailchimpHarness,
    "meta_custom_audience": MetaHarness,
    "google_customer_match": GoogleCustomerMatchHarness,
}
