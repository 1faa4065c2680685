"""The one parser of connector options (destinations/options.py): every connector's
configuration errors read the same way and never show a secret."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from destinations.base import DestinationConfigError
from destinations.options import Secret, option, option_specs, parse_options, secret_option

LABEL = "example destination 'ads'"


@dataclass(frozen=True)
class ExampleOptions:
    """The shapes the coming connectors need: ids, secrets, limits, switches, choices."""

    audience_id: str = option(help="the platform's audience")
    token_env: Secret = secret_option(help="API token", hint="export it with a token from the platform's settings")
    batch_size: int = option(default=100, minimum=1, maximum=10_000, help="records per request")
    poll_seconds: float = option(default=2.0, above=0, help="how often to poll a job")
    hash_identifiers: bool = option(default=True, help="hash before sending")
    match_on: Literal["email", "phone"] = option(default="email", help="identifier to match on")
    region: str | None = option(default=None, help="data region")


ENV = {"ADS_TOKEN": "tok_9f8e7d6c5b4a39281706"}
GOOD = {"audience_id": "aud-1", "token_env": "ADS_TOKEN"}


def parse(options: dict, env: dict | None = None) -> ExampleOptions:
    return parse_options(ExampleOptions, options, ENV if env is None else env, label=LABEL, connector_type="ads")


def error(options: dict, env: dict | None = None) -> str:
    with pytest.raises(DestinationConfigError) as raised:
        parse(options, env)
    message = str(raised.value)
    assert message.startswith(f"{LABEL}: ")
    assert ENV["ADS_TOKEN"] not in message
    return message


def test_defaults_conversions_and_the_secret_value():
    parsed = parse({**GOOD, "type": "ads", "batch_size": "250", "hash_identifiers": "no", "match_on": "phone"})
    assert (parsed.audience_id, parsed.batch_size) == ("aud-1", 250)
    assert (parsed.hash_identifiers, parsed.match_on) == (False, "phone")
    assert (parsed.poll_seconds, parsed.region) == (2.0, None)
    assert parsed.token_env.value == ENV["ADS_TOKEN"] and parsed.token_env.env_var == "ADS_TOKEN"
    assert ENV["ADS_TOKEN"] not in repr(parsed) and str(parsed.token_env) == "$ADS_TOKEN"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({**GOOD, "audience": "x"}, "unknown option 'audience'; did you mean 'audience_id'? (known: audience_id, "),
        ({**GOOD, "a": 1, "b": 2}, "unknown options 'a', 'b'"),
        ({**GOOD, "type": "webhook"}, "option type is 'webhook', expected 'ads'"),
        ({"token_env": "ADS_TOKEN"}, "option audience_id is required (a non-empty string)"),
        ({**GOOD, "audience_id": "  "}, "option audience_id is required"),
        ({"audience_id": "a"}, "option token_env is required (the name of an environment variable holding the secret)"),
        ({**GOOD, "batch_size": 0}, "option batch_size must be an integer from 1 to 10000, got 0"),
        ({**GOOD, "batch_size": 2.5}, "option batch_size must be an integer from 1 to 10000, got 2.5"),
        ({**GOOD, "batch_size": True}, "option batch_size must be an integer from 1 to 10000, got True"),
        ({**GOOD, "batch_size": "lots"}, "option batch_size must be an integer from 1 to 10000, got 'lots'"),
        ({**GOOD, "poll_seconds": 0}, "option poll_seconds must be a number above 0, got 0"),
        ({**GOOD, "hash_identifiers": "maybe"}, "option hash_identifiers must be true or false, got 'maybe'"),
        ({**GOOD, "match_on": "fax"}, "option match_on must be one of 'email', 'phone', got 'fax'"),
        ({**GOOD, "audience_id": 42}, "option audience_id must be a non-empty string, got 42"),
    ],
)
def test_each_kind_of_mistake_has_one_message(options: dict, expected: str):
    assert expected in error(options)


def test_an_unset_secret_names_the_variable_and_a_pasted_secret_is_never_echoed():
    assert error(GOOD, env={}) == (
        f"{LABEL}: environment variable $ADS_TOKEN (named by option token_env) is not set; "
        "export it with a token from the platform's settings"
    )
    pasted = "sk-live/4f3e+2d1c==="
    message = error({**GOOD, "token_env": pasted})
    assert "must name an environment variable" in message and pasted not in message
    long_text = error({**GOOD, "batch_size": "https://user:pa55@example.com/x"})
    assert "pa55" not in long_text and "got other text" in long_text


def test_option_specs_describe_the_record_in_order():
    specs = option_specs(ExampleOptions)
    assert [spec.name for spec in specs][:3] == ["audience_id", "token_env", "batch_size"]
    assert [spec.name for spec in specs if spec.required] == ["audience_id", "token_env"]
    assert [spec.name for spec in specs if spec.secret] == ["token_env"]


@dataclass(frozen=True)
class SignedOptions:
    """A connector with an optional secret (Meta's app secret: only some apps enforce it)."""

    token_env: Secret = secret_option(help="API token", hint="export it with a token")
    app_secret_env: Secret | None = secret_option(help="app secret", hint="export the app secret", required=False)


def test_an_optional_secret_may_be_left_out_but_when_named_its_variable_must_be_set():
    signed = {"token_env": "ADS_TOKEN"}
    parsed = parse_options(SignedOptions, signed, ENV, label=LABEL, connector_type="ads")
    assert parsed.app_secret_env is None
    env = {**ENV, "ADS_APP_SECRET": "s3cr3t-value-123"}
    parsed = parse_options(
        SignedOptions, {**signed, "app_secret_env": "ADS_APP_SECRET"}, env, label=LABEL, connector_type="ads"
    )
    assert parsed.app_secret_env is not None and parsed.app_secret_env.value == "s3cr3t-value-123"
    with pytest.raises(DestinationConfigError, match=r"\$ADS_APP_SECRET \(named by option app_secret_env\) is not set"):
        parse_options(
            SignedOptions, {**signed, "app_secret_env": "ADS_APP_SECRET"}, ENV, label=LABEL, connector_type="ads"
        )
    specs = option_specs(SignedOptions)
    assert [(spec.name, spec.required, spec.secret) for spec in specs] == [
        ("token_env", True, True),
        ("app_secret_env", False, True),
    ]
