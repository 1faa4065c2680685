"""The sandbox host: one loopback port, an emulator per path prefix, faults acted out the
same way for every platform, and no crash on hostile input."""

from __future__ import annotations

import http.client
import threading
import time

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from destinations.sandbox.faults import Fault, RateWindow
from destinations.sandbox.server import Emulator, Reply, Request, SandboxServer


class Counter(Emulator):
    """A tiny emulator: POST /add {"key": …} adds a key (token required); GET /keys lists them."""

    prefix = "counter"

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str] = []

    def handle(self, request: Request, fault: Fault | None) -> Reply:
        if request.headers.get("authorization") != "Bearer t0ken":
            return Reply.json(401, {"title": "unauthorised"})
        if request.method == "GET" and request.path == "/keys":
            return Reply.json(200, {"keys": self.keys})
        if request.method == "POST" and request.path == "/add":
            try:
                key = request.json()["key"]
            except (ValueError, KeyError, TypeError):
                return Reply.json(400, {"title": "bad body"})
            if fault is not None and fault.rejects(str(key)):
                return Reply.json(200, {"errors": [str(key)]})
            with self.lock:
                self.keys.append(str(key))
            return Reply.json(200, {"errors": []})
        return Reply.json(404, {"title": "no route"})

    def snapshot(self) -> dict:
        return {"keys": list(self.keys)}


AUTH = {"Authorization": "Bearer t0ken"}


@pytest.fixture
def host():
    counter = Counter()
    with SandboxServer([counter]) as server:
        yield server, counter


def add(server: SandboxServer, key: str, **kwargs) -> requests.Response:
    return requests.post(f"{server.base_url('counter')}/add", json={"key": key}, headers=AUTH, timeout=2, **kwargs)


def test_routes_by_prefix_and_binds_to_loopback(host):
    server, counter = host
    assert server.origin.startswith("http://127.0.0.1:")
    assert add(server, "a").json() == {"errors": []}
    assert counter.snapshot() == {"keys": ["a"]}
    missing = requests.get(f"{server.origin}/nowhere/x", timeout=2)
    assert missing.status_code == 404
    assert [(r.method, r.path, r.status) for r in counter.requests] == [("POST", "/add", 200)]


def test_ready_document_names_every_emulator(host):
    server, _ = host
    document = server.ready_document()
    assert document["platforms"]["counter"]["base_url"] == server.base_url("counter")


def test_a_prefix_with_the_word_server_is_refused():
    class Bad(Counter):
        prefix = "myserver"

    with pytest.raises(ValueError, match="server"):
        SandboxServer([Bad()])


def test_faults_by_number_route_key_and_queue(host):
    server, counter = host
    counter.faults.inject_at(2, Fault.status(503))
    counter.faults.on_route("POST", r"^/add$", Fault.throttle(retry_after=7))
    counter.faults.on_key("poison", Fault.status(500))
    first = add(server, "a")  # the route fault (request 1)
    assert first.status_code == 429 and first.headers["Retry-After"] == "7"
    assert add(server, "b").status_code == 503  # scheduled for request 2
    assert add(server, "poison").status_code == 500
    assert add(server, "poison").status_code == 500  # a key fault stays
    assert add(server, "c").status_code == 200
    assert counter.snapshot() == {"keys": ["c"]}


def test_reject_faults_reach_the_emulator(host):
    server, counter = host
    counter.faults.inject(Fault.reject(keys={"x"}))
    assert add(server, "x").json() == {"errors": ["x"]}
    assert counter.snapshot() == {"keys": []}


def test_drop_and_timeout_with_and_without_applying(host):
    server, counter = host
    counter.faults.inject(Fault.drop(), Fault.drop(apply_first=True), Fault.timeout(1.0, apply_first=True))
    with pytest.raises(requests.ConnectionError):
        add(server, "lost")
    with pytest.raises(requests.ConnectionError):
        add(server, "landed")
    with pytest.raises(requests.ReadTimeout):
        requests.post(f"{server.base_url('counter')}/add", json={"key": "slow"}, headers=AUTH, timeout=0.3)
    assert server.wait_idle(5)
    assert counter.snapshot() == {"keys": ["landed", "slow"]}
    assert [r.status for r in counter.requests[:2]] == [None, None]


def test_random_faults_are_reproducible_by_seed():
    def outcomes(seed: int) -> list[int]:
        counter = Counter()
        counter.faults.random(seed, 0.5, [Fault.status(500), Fault.status(502)])
        with SandboxServer([counter]) as server:
            return [add(server, str(i)).status_code for i in range(20)]

    assert outcomes(7) == outcomes(7)
    assert set(outcomes(7)) >= {200}


def test_rate_window_counts_per_request():
    window = RateWindow(limit=3, seconds=1.0)
    start = time.monotonic()
    assert [window.admit(start)[0] for _ in range(4)] == [True, True, True, False]
    allowed, wait = window.admit(start + 0.5)
    assert not allowed and 0.4 < wait <= 0.5
    assert window.admit(start + 1.01)[0]


def test_stop_ends_a_request_sleeping_in_a_fault():
    counter = Counter()
    server = SandboxServer([counter]).start()
    counter.faults.inject(Fault.timeout(30))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            add(server, "k")
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    server.stop()
    thread.join(5)
    assert time.monotonic() - started < 5
    assert not thread.is_alive()


methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"])
paths = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="#? "), max_size=60)
bodies = st.binary(max_size=300)
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=methods, path=paths, body=bodies, auth=header_values, content_type=header_values)
def test_hostile_requests_get_an_answer_and_change_nothing(host, method, path, body, auth, content_type):
    """Whatever arrives — odd paths, junk bodies, wrong tokens — the host answers with a
    status and no emulator changes state without its credentials."""
    server, counter = host
    before = counter.snapshot()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request(
            method,
            "/" + path.lstrip("/"),
            body=body,
            headers={"Authorization": auth, "Content-Type": content_type},
        )
        response = connection.getresponse()
        response.read()
        assert 200 <= response.status < 600
    finally:
        connection.close()
    if auth != "Bearer t0ken":
        assert counter.snapshot() == before
    # and the host still serves
    assert add(server, "alive").status_code == 200
    counter.keys.clear()
