"""`cdp sandbox`: every emulator on one loopback port, a ready file once listening, and the
variables the demo connections read."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from cdp.settings import REPO_ROOT
from destinations.sandbox import DEMO_ENVIRONMENT, demo_environment, emulators


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_sandbox(port: int, ready_file: Path, *, interruptible: bool = True) -> subprocess.Popen:
    """`cdp sandbox` in a session of its own, once its ready file exists.

    ``interruptible``: SIGINT at its default in the child, as in a terminal, where Ctrl-C reaches it.
    A command started in the background of a script inherits SIGINT ignored (POSIX shells do that),
    and Python then installs no KeyboardInterrupt handler: a test run launched that way (`... &`)
    would otherwise see the sandbox ignore the test's Ctrl-C."""
    cdp = Path(sys.executable).with_name("cdp")
    process = subprocess.Popen(
        [str(cdp), "sandbox", "--port", str(port), "--ready-file", str(ready_file), "--quiet"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL if interruptible else signal.SIG_IGN),
    )
    deadline = time.monotonic() + 60
    while not ready_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"no ready file within 60 s:\n{process.communicate()[0]}")
        time.sleep(0.1)
    return process


def _stop(process: subprocess.Popen, signum: int) -> str:
    """Send ``signum`` to the sandbox; its output once it exited (a hang fails here, not forever)."""
    os.killpg(process.pid, signum)
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"cdp sandbox did not stop within 30 s of {signal.Signals(signum).name}") from None
    return output


def test_cdp_sandbox_writes_a_ready_file_and_serves_every_platform(tmp_path: Path):
    port = _free_port()
    ready_file = tmp_path / "ready.json"
    process = _start_sandbox(port, ready_file)
    try:
        ready = json.loads(ready_file.read_text())
        assert ready["origin"] == f"http://127.0.0.1:{port}"
        assert set(ready["platforms"]) == {emulator.prefix for emulator in emulators()}
        for prefix, platform in ready["platforms"].items():
            assert platform["base_url"].startswith(f"http://127.0.0.1:{port}/{prefix}")
            assert "server" not in platform["base_url"]  # the Mailchimp SDK rewrites that word
        # every platform answers under its prefix, and refuses a request without credentials
        for platform in ready["platforms"].values():
            answer = requests.get(platform["base_url"] + "/", timeout=5)
            assert 400 <= answer.status_code < 500
        # the variables the demo connections read come from the same document
        environment = demo_environment(ready)
        assert environment["CDP_SANDBOX_URL"] == ready["origin"]
        assert set(DEMO_ENVIRONMENT) <= set(environment)
        # not reachable on another address of this machine: it bound to loopback only
        with socket.socket() as other:
            other.settimeout(1)
            assert other.connect_ex(("127.0.0.2", port)) != 0
    finally:
        output = _stop(process, signal.SIGINT)  # Ctrl-C
    assert f"export CDP_SANDBOX_URL=http://127.0.0.1:{port}" in output
    assert output.rstrip().endswith("Stopped.")
    assert process.returncode == 0


def test_cdp_sandbox_stops_cleanly_on_sigterm_even_started_in_the_background(tmp_path: Path):
    """A service manager (or `kill`) stops it with SIGTERM; started in a script's background, where
    SIGINT is ignored, that is the way to stop it, and it still says so and exits 0."""
    process = _start_sandbox(_free_port(), tmp_path / "ready.json", interruptible=False)
    output = _stop(process, signal.SIGTERM)
    assert output.rstrip().endswith("Stopped.")
    assert process.returncode == 0
