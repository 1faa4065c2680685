"""The connector contract: what the engine relies on from every destination, tested for
each registered connector against its platform's sandbox over real HTTP.

A connector is built from its destinations.yml entry, returns exactly one outcome per
change, rides out throttling, server errors, timeouts and dropped connections within a
bounded retry budget and then says the platform is unavailable, reports per-record
failures as failed or rejected, honours its batch limit, and never lets personal data or
a secret into an outcome or an exception. Each test reads what the platform ends up
holding, as a user would. Retries are tuned short (no back-off) so the suite stays fast.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from contract.harness import ConnectorHarness
from contract.harnesses import HARNESSES
from destinations.base import MODES, Destination, DestinationConfigError, DestinationUnavailable
from destinations.config import CONNECTORS, connector_class
from destinations.options import option_specs


def statuses(outcomes) -> dict[str, str]:
    return {outcome.change_id: outcome.status for outcome in outcomes}


def leaks(secret: str, message: str) -> bool:
    """Whether any 12-character piece of ``secret`` is in ``message`` (not only the whole)."""
    return any(secret[i : i + 12] in message for i in range(max(1, len(secret) - 11)))


# -- every connector is in the suite ---------------------------------------------------------


def test_every_registered_connector_has_a_harness():
    missing = sorted(set(CONNECTORS) - set(HARNESSES))
    assert not missing, f"connectors without a contract harness in tests/contract/harnesses.py: {missing}"
    assert all(HARNESSES[kind].connector_type == kind for kind in HARNESSES)


# -- the interface -----------------------------------------------------------------------------


def test_the_connector_implements_the_interface(harness: ConnectorHarness, sandbox):
    cls = connector_class(harness.connector_type)
    assert cls.supported_modes and set(cls.supported_modes) <= set(MODES)
    assert cls.identifier_names
    assert dataclasses.is_dataclass(cls.options_type) and cls.options_type.__dataclass_params__.frozen
    destination = harness.build(sandbox)
    try:
        assert isinstance(destination, Destination)
        assert isinstance(destination.batch_size, int) and destination.batch_size >= 1
    finally:
        destination.close()


def test_from_config_builds_a_working_connector_for_a_sync(harness: ConnectorHarness, sandbox):
    cls = connector_class(harness.connector_type)
    destination = cls.from_config(harness.name, harness.options(sandbox), harness.env(sandbox), sync_name="vip_sync")
    try:
        assert statuses(destination.send([harness.upsert("p1", plan="gold")])) == {"chg-p1-up": "confirmed"}
    finally:
        destination.close()
    assert harness.held(sandbox) == {"p1": {"plan": "gold"}}


def test_configuration_errors_name_the_destination_and_the_option_never_a_secret(harness: ConnectorHarness, sandbox):
    cls = connector_class(harness.connector_type)
    options, env = harness.options(sandbox), harness.env(sandbox)
    secrets = [value for value in env.values() if value]

    def error(options: dict, env: dict) -> str:
        with pytest.raises(DestinationConfigError) as raised:
            cls.from_config(harness.name, options, env, sync_name="vip_sync")
        message = str(raised.value)
        assert harness.name in message, message
        assert not any(leaks(secret, message) for secret in secrets), "a secret leaked into a configuration error"
        return message

    specs = option_specs(cls.options_type)
    first = specs[0].name
    typo = first[:-1] if len(first) > 1 else first + "x"
    message = error({**options, typo: options.get(first, "x")}, env)
    assert f"'{typo}'" in message and first in message  # the typo, and the option it resembles
    for spec in specs:
        if spec.required:
            assert spec.name in error({k: v for k, v in options.items() if k != spec.name}, env)
        if spec.secret:
            variable = options[spec.name]
            message = error(options, {k: v for k, v in env.items() if k != variable})
            assert f"${variable}" in message and spec.name in message


# -- one outcome per change --------------------------------------------------------------------


def test_upserts_land_removals_delete_and_each_change_gets_one_outcome_in_order(harness: ConnectorHarness, sandbox):
    destination = harness.build(sandbox)
    batch = [harness.upsert("p1", plan="gold"), harness.upsert("p2", plan="silver"), harness.upsert("p3", ltv=12.5)]
    outcomes = destination.send(batch)
    assert [outcome.change_id for outcome in outcomes] == [change.change_id for change in batch]
    assert [outcome.status for outcome in outcomes] == ["confirmed"] * 3
    assert all(outcome.error is None for outcome in outcomes)
    assert harness.held(sandbox) == {"p1": {"plan": "gold"}, "p2": {"plan": "silver"}, "p3": {"ltv": 12.5}}

    assert [outcome.status for outcome in destination.send([harness.remove("p2")])] == ["confirmed"]
    assert set(harness.held(sandbox)) == {"p1", "p3"}
    assert destination.send([]) == []
    destination.close()


def test_per_record_failures_are_failed_when_retryable_and_rejected_otherwise(harness: ConnectorHarness, sandbox):
    destination = harness.build(sandbox)
    harness.reject(sandbox, {"p2"}, retryable=True)
    first = destination.send([harness.upsert("p1"), harness.upsert("p2"), harness.upsert("p3")])
    harness.reject(sandbox, {"p5"}, retryable=False)
    second = destination.send([harness.upsert("p4"), harness.upsert("p5")])

    assert statuses(first) == {"chg-p1-up": "confirmed", "chg-p2-up": "failed", "chg-p3-up": "confirmed"}
    assert statuses(second) == {"chg-p4-up": "confirmed", "chg-p5-up": "rejected"}
    assert all(outcome.error for outcome in first + second if outcome.status != "confirmed")
    assert set(harness.held(sandbox)) == {"p1", "p3", "p4"}


# -- batch limit -------------------------------------------------------------------------------


def test_the_connector_refuses_more_than_its_batch_size_before_sending(harness: ConnectorHarness, sandbox):
    destination = harness.build(sandbox, batch_size=3)
    with pytest.raises(ValueError, match="batch_size 3"):
        destination.send([harness.upsert(f"p{i}") for i in range(4)])
    assert harness.requests(sandbox) == 0


def test_a_full_batch_at_the_default_size_is_within_the_platform_limit(harness: ConnectorHarness, sandbox):
    destination = harness.build(sandbox)
    batch = [harness.upsert(f"p{i}") for i in range(destination.batch_size)]
    outcomes = destination.send(batch)
    assert len(outcomes) == len(batch) and {outcome.status for outcome in outcomes} == {"confirmed"}
    assert len(harness.held(sandbox)) == destination.batch_size


# -- throttling, server errors, timeouts, drops ------------------------------------------------


def test_throttling_is_waited_out_as_retry_after_asks(harness: ConnectorHarness, sandbox):
    harness.throttle(sandbox, retry_after=1)
    started = time.monotonic()
    outcomes = harness.build(sandbox).send([harness.upsert("p1")])
    assert time.monotonic() - started >= 1.0
    assert statuses(outcomes) == {"chg-p1-up": "confirmed"}
    assert harness.requests(sandbox) == 2  # the throttled request and its retry
    assert set(harness.held(sandbox)) == {"p1"}


def test_a_server_error_is_retried_within_the_send(harness: ConnectorHarness, sandbox):
    harness.fail(sandbox, 503, title="busy")
    outcomes = harness.build(sandbox).send([harness.upsert("p1"), harness.upsert("p2")])
    assert {outcome.status for outcome in outcomes} == {"confirmed"}
    assert set(harness.held(sandbox)) == {"p1", "p2"}


def test_persistent_server_errors_make_the_platform_unavailable_after_the_retry_budget(
    harness: ConnectorHarness, sandbox
):
    harness.fail(sandbox, 503, title="maintenance", times=3)
    with pytest.raises(DestinationUnavailable) as raised:
        harness.build(sandbox, max_retries=2).send([harness.upsert("p1")])
    message = str(raised.value)
    assert harness.name in message and "HTTP 503" in message and "maintenance" in message and "3 attempts" in message
    assert harness.requests(sandbox) == 3
    assert harness.held(sandbox) == {}


def test_a_retry_after_beyond_the_limit_gives_up_at_once(harness: ConnectorHarness, sandbox):
    harness.throttle(sandbox, retry_after=5)
    started = time.monotonic()
    with pytest.raises(DestinationUnavailable, match=r"wait 5s.*max_retry_after=2s") as raised:
        harness.build(sandbox, max_retry_after=2.0).send([harness.upsert("p1")])
    assert time.monotonic() - started < 1.0
    assert harness.name in str(raised.value) and "1 attempt" in str(raised.value)
    assert harness.requests(sandbox) == 1


@pytest.mark.parametrize("apply_first", [False, True], ids=["before-applying", "after-applying"])
def test_a_timeout_is_retried_and_the_platform_ends_right(harness: ConnectorHarness, sandbox, apply_first: bool):
    harness.stall(sandbox, 1.0, apply_first=apply_first)
    outcomes = harness.build(sandbox, read_timeout=0.3).send([harness.upsert("p1"), harness.upsert("p2")])
    assert {outcome.status for outcome in outcomes} == {"confirmed"}
    harness.wait_idle(sandbox)
    assert set(harness.held(sandbox)) == {"p1", "p2"}


def test_a_dropped_connection_is_retried_within_the_send(harness: ConnectorHarness, sandbox):
    harness.drop(sandbox)
    outcomes = harness.build(sandbox).send([harness.upsert("p1")])
    assert statuses(outcomes) == {"chg-p1-up": "confirmed"}
    assert set(harness.held(sandbox)) == {"p1"}


def test_a_drop_with_no_retry_left_is_unavailable_and_sending_again_converges(harness: ConnectorHarness, sandbox):
    batch = [harness.upsert("p1"), harness.upsert("p2"), harness.remove("p0")]
    harness.drop(sandbox, apply_first=True)
    with pytest.raises(DestinationUnavailable):
        harness.build(sandbox, max_retries=0).send(batch)
    outcomes = harness.build(sandbox).send(batch)  # the engine plans the batch again next run
    assert {outcome.status for outcome in outcomes} == {"confirmed"}
    assert set(harness.held(sandbox)) == {"p1", "p2"}


def test_an_unreachable_platform_is_unavailable(harness: ConnectorHarness):
    with harness.sandbox() as stopped:
        destination = harness.build(stopped, max_retries=1)
    with pytest.raises(DestinationUnavailable, match=r"could not connect .* after 2 attempts") as raised:
        destination.send([harness.upsert("p1")])
    assert harness.name in str(raised.value)


def test_refused_credentials_are_a_configuration_error_naming_the_destination_not_the_secret(
    harness: ConnectorHarness, sandbox
):
    wrong = harness.wrong_credentials_env(sandbox)
    cls = connector_class(harness.connector_type)
    destination = cls.from_config(harness.name, harness.options(sandbox), wrong, sync_name="vip_sync")
    with pytest.raises(DestinationConfigError) as raised:
        destination.send([harness.upsert("p1")])
    message = str(raised.value)
    assert harness.name in message and harness.credentials_refusal in message
    assert all(f"${variable}" in message for variable in wrong)  # where to fix it
    assert not any(leaks(secret, message) for secret in wrong.values())
    assert harness.held(sandbox) == {}


# -- no personal data in outcomes or errors ----------------------------------------------------


def test_a_refused_identifier_is_rejected_without_echoing_it(harness: ConnectorHarness, sandbox):
    bad, personal = harness.bad_identifier_upsert("p1")
    outcomes = harness.build(sandbox).send([bad, harness.upsert("p2")])
    assert [outcome.status for outcome in outcomes] == ["rejected", "confirmed"]
    assert outcomes[0].error and not any(value in repr(outcomes) for value in personal)
    assert set(harness.held(sandbox)) == {"p2"}


def test_platform_errors_that_echo_personal_data_are_redacted(harness: ConnectorHarness, sandbox):
    harness.reject(sandbox, {"p1"}, retryable=False, error="mailbox p1@example.com full, call +49 151 2345678")
    [outcome] = harness.build(sandbox).send([harness.upsert("p1")])
    assert outcome.status == "rejected"
    assert "p1@example.com" not in outcome.error and "2345678" not in outcome.error
    assert outcome.error.startswith("mailbox [redacted] full")
