"""Starting a Dagster UI on loopback for a test, and stopping all of it: the `cdp dev` test
(tests/test_orchestration.py) and the browser test (tests/test_ui_browser.py) share these."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

WORKSPACE_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { repositories { assetNodes { assetKey { path } } } }
          ... on PythonError { message causes { message } }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no output)"


def default_interrupts() -> None:
    """In the child: Ctrl-C and SIGTERM behave as in a terminal even if this test runs with
    SIGINT ignored (as background jobs do); dagster dev shuts down on either."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start(command: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """``command`` in a process group of its own (so it can be stopped whole), output to ``log``."""
    with open(log, "w") as output:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=default_interrupts,
        )


def stop_process_group(process: subprocess.Popen, grace: float = 30) -> None:
    """Ctrl-C the whole group (dagster dev, its webserver, daemon and code servers), then kill what is left."""
    group = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    process.wait(timeout=30)


def workspace(port: int) -> dict | None:
    """The webserver's view of its code locations, or None while it is not answering yet."""
    try:
        response = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": WORKSPACE_QUERY}, timeout=10)
    except requests.ConnectionError:
        return None
    if response.status_code != 200:
        return None
    return response.json()["data"]["workspaceOrError"]


def wait_for_code_locations(process: subprocess.Popen, port: int, log: Path, *, timeout: float = 300) -> list[dict]:
    """The webserver's code location entries once every one has loaded; fails the test, with the
    process's output, if it exits or nothing loads within ``timeout`` seconds."""
    name = " ".join(Path(part).name for part in process.args[:2])
    deadline = time.monotonic() + timeout
    entries = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`{name}` exited with code {process.returncode}. Its output:\n{tail(log)}")
        answer = workspace(port)
        if answer is not None:
            assert answer["__typename"] == "Workspace", f"{answer}\n{tail(log)}"
            entries = answer["locationEntries"]
            if entries and all(entry["loadStatus"] == "LOADED" and entry["locationOrLoadError"] for entry in entries):
                return entries
        time.sleep(1)
    pytest.fail(f"the code location did not load within {timeout:.0f} s (last answer: {entries}). Output:\n{tail(log)}")


def assert_one_location_loaded(entries: list[dict], log: Path) -> dict:
    """The one code location, loaded without error (its error and causes in the message otherwise)."""
    assert len(entries) == 1, [entry["name"] for entry in entries]
    location = entries[0]["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", (
        f"code location {entries[0]['name']} failed to load: {location.get('message')}\n"
        f"caused by: {[cause['message'] for cause in location.get('causes') or []]}\nOutput:\n{tail(log)}"
    )
    return location
