"""The contract harness of the webhook connector (destinations/webhook.py), against the
Standard Webhooks sandbox (destinations/sandbox/webhook.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from contract.harness import ConnectorHarness
from destinations.base import Change
from destinations.http import Timeout
from destinations.sandbox.webhook import Fault, WebhookSandbox
from destinations.webhook import WebhookDestination

SECRET_ENV = "CONTRACT_WEBHOOK_SECRET"
#: well-formed (whsec_<base64>) but not the sandbox's
WRONG_SECRET = "whsec_bm90IHRoZSByZWNlaXZlcidzIHNlY3JldCAxMjM0NTY="


class WebhookHarness(ConnectorHarness):
    connector_type = "webhook"

    @contextmanager
    def sandbox(self) -> Iterator[WebhookSandbox]:
        with WebhookSandbox() as sandbox:
            yield sandbox

    def options(self, sandbox: WebhookSandbox) -> dict[str, Any]:
        return {"url": sandbox.url, "secret_env": SECRET_ENV}

    def env(self, sandbox: WebhookSandbox) -> dict[str, str]:
        return {SECRET_ENV: sandbox.secret}

    def wrong_credentials_env(self, sandbox: WebhookSandbox) -> dict[str, str]:
        return {SECRET_ENV: WRONG_SECRET}

    def build(
        self,
        sandbox: WebhookSandbox,
        *,
        batch_size: int | None = None,
        max_retries: int = 2,
        max_retry_after: float = 2.0,
        read_timeout: float = 2.0,
    ) -> WebhookDestination:
        tuning: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
        return WebhookDestination(
            self.name,
            sandbox.url,
            sandbox.secret,
            sync_name="contract",
            timeout=Timeout(connect=1.0, read=read_timeout),
            max_retries=max_retries,
            backoff_factor=0.0,
            max_retry_after=max_retry_after,
            **tuning,
        )

    def upsert(self, key: str, **fields: Any) -> Change:
        identifiers = {"email": f"{key}@example.com", "profile_id": key}
        return Change(change_id=f"chg-{key}-up", op="upsert", key=key, identifiers=identifiers, fields=fields)

    def remove(self, key: str) -> Change:
        return Change(change_id=f"chg-{key}-rm", op="remove", key=key, identifiers={"profile_id": key})

    def bad_identifier_upsert(self, key: str) -> tuple[Change, list[str]]:
        bad_email = f"{key}.doe(at)example"
        change = Change(change_id=f"chg-{key}-bad", op="upsert", key=key, identifiers={"email": bad_email})
        return change, [bad_email]

    def held(self, sandbox: WebhookSandbox) -> dict[str, dict[str, Any]]:
        return {key: record["fields"] for key, record in sandbox.state.items()}

    def requests(self, sandbox: WebhookSandbox) -> int:
        return len(sandbox.requests)

    def wait_idle(self, sandbox: WebhookSandbox) -> None:
        assert sandbox.wait_idle()

    def fail(self, sandbox: WebhookSandbox, status: int, *, title: str, times: int = 1) -> None:
        sandbox.inject(*[Fault.status(status, title=title)] * times)

    def throttle(self, sandbox: WebhookSandbox, *, retry_after: float) -> None:
        sandbox.inject(Fault.throttle(retry_after=retry_after))

    def drop(self, sandbox: WebhookSandbox, *, apply_first: bool = False) -> None:
        sandbox.inject(Fault.drop(apply_first=apply_first))

    def stall(self, sandbox: WebhookSandbox, seconds: float, *, apply_first: bool = False) -> None:
        sandbox.inject(Fault.timeout(seconds, apply_first=apply_first))

    def clear_faults(self, sandbox: WebhookSandbox) -> None:
        sandbox.clear_faults()

    def reject(
        self, sandbox: WebhookSandbox, keys: Iterable[str], *, retryable: bool, error: str | None = None
    ) -> None:
        sandbox.inject(Fault.reject(keys=frozenset(keys), retryable=retryable, error=error))
