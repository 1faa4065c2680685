"""Local emulators of every destination platform (and of the alert receivers: a Slack-compatible
incoming webhook, a signed generic webhook), with fault injection, for tests and the demo.

``cdp sandbox`` (and the demo) serve all of them on one loopback port, each under its own
path prefix (:mod:`destinations.sandbox.server`); tests start the ones they need.
"""

from __future__ import annotations

from typing import Any

from destinations.sandbox.server import Emulator, SandboxServer

#: the environment variable the demo connections in destinations.yml read, and where the
#: sandbox's ready document holds its value: (platform prefix, key in its description)
DEMO_ENVIRONMENT: dict[str, tuple[str, str]] = {
    "CDP_DEMO_WEBHOOK_SECRET": ("webhook", "secret"),
    "CDP_DEMO_MAILCHIMP_API_KEY": ("mailchimp", "api_key"),
    "CDP_DEMO_KLAVIYO_API_KEY": ("klaviyo", "api_key"),
    "CDP_DEMO_META_TOKEN": ("meta", "access_token"),
    "CDP_DEMO_GOOGLE_ACCESS_TOKEN": ("datamanager", "access_token"),
    # alerts.yml's generic alert channel (its Slack channel needs no variable: a fixed sandbox hook)
    "CDP_DEMO_ALERTS_SECRET": ("alerts", "secret"),
}
#: the base URL every demo connection is relative to
SANDBOX_URL_ENV = "CDP_SANDBOX_URL"


def emulators() -> list[Emulator]:
    """A fresh emulator of every platform."""
    from destinations.sandbox.alerts import AlertReceiverEmulator
    from destinations.sandbox.datamanager import DataManagerEmulator
    from destinations.sandbox.googleads import GoogleAdsEmulator
    from destinations.sandbox.klaviyo import KlaviyoEmulator
    from destinations.sandbox.mailchimp import MailchimpEmulator
    from destinations.sandbox.meta import MetaEmulator
    from destinations.sandbox.slack import SlackEmulator
    from destinations.sandbox.webhook import WebhookEmulator

    return [
        WebhookEmulator(),
        MailchimpEmulator(),
        KlaviyoEmulator(),
        MetaEmulator(),
        DataManagerEmulator(),
        GoogleAdsEmulator(),
        SlackEmulator(),
        AlertReceiverEmulator(),
    ]


def demo_environment(ready: dict[str, Any]) -> dict[str, str]:
    """The variables destinations.yml's demo connections read, for a sandbox's ready document."""
    platforms = ready["platforms"]
    values = {SANDBOX_URL_ENV: ready["origin"]}
    for variable, (prefix, key) in DEMO_ENVIRONMENT.items():
        if prefix in platforms:
            values[variable] = str(platforms[prefix][key])
    return values


__all__ = ["DEMO_ENVIRONMENT", "SANDBOX_URL_ENV", "Emulator", "SandboxServer", "demo_environment", "emulators"]
