"""The alert receivers of the sandbox (a Slack incoming webhook, a signed generic webhook) on
one loopback host, an alerts.yml pointing at them, and what they received — for the alert
tests with and without Dagster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from destinations.alerts import AlertConfig, Alerter, load_alerts
from destinations.sandbox import SandboxServer
from destinations.sandbox.alerts import AlertReceiverEmulator
from destinations.sandbox.slack import DEMO_HOOK, SlackEmulator

SLACK_URL_ENV = "TEST_ALERTS_SLACK_URL"
SECRET_ENV = "TEST_ALERTS_SECRET"


class Receivers:
    """Both receivers on one sandbox host; use as a context manager."""

    def __init__(self) -> None:
        self.slack = SlackEmulator()
        self.hooks = AlertReceiverEmulator()
        self.server = SandboxServer([self.slack, self.hooks])

    def __enter__(self) -> Receivers:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    # -- configuration -------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """What the alerts.yml of :meth:`write` reads from the environment."""
        return {SLACK_URL_ENV: self.server.base_url(self.slack) + DEMO_HOOK, SECRET_ENV: self.hooks.secret}

    def write(self, path: Path, rules: str) -> Path:
        """An alerts.yml with both channels (slack, hooks) and ``rules`` (YAML under `rules:`)."""
        path.write_text(
            "channels:\n"
            "  slack:\n"
            "    type: slack\n"
            f"    url: ${{{SLACK_URL_ENV}}}\n"
            "  hooks:\n"
            "    type: webhook\n"
            f"    url: {self.server.base_url(self.hooks)}/hooks\n"
            f"    secret_env: {SECRET_ENV}\n"
            "rules:\n" + "\n".join(f"  {line}" for line in rules.strip("\n").splitlines()) + "\n"
        )
        return path

    def config(self, path: Path, rules: str) -> AlertConfig:
        return load_alerts(self.write(path, rules), self.env())

    def alerter(self, path: Path, rules: str, warehouse: Path) -> Alerter:
        """An alerter for ``rules``, its channels tuned for tests (no back-off between retries)."""
        return Alerter(self.config(path, rules), warehouse, channel_tuning={"backoff_factor": 0})

    # -- what arrived -------------------------------------------------------------------------

    def notices(self, rule: str | None = None) -> list[tuple[str, str, str]]:
        """(type, rule, subject) of every alert the webhook receiver accepted, in order."""
        return [
            (payload["type"], payload["alert"]["rule"], payload["alert"]["subject"])
            for payload in self.hooks.alerts
            if rule is None or payload["alert"]["rule"] == rule
        ]

    def slack_texts(self, rule: str | None = None) -> list[str]:
        texts = [message["text"] for message in self.slack.messages()]
        return [text for text in texts if rule is None or f" {rule}" in text]

    def everything(self) -> str:
        """All that both receivers hold, as one text (to look for personal data in)."""
        received: list[Any] = [self.slack.snapshot(), self.hooks.snapshot()]
        return json.dumps(received, ensure_ascii=False)
