"""The Dagster UI in a real browser: the webserver on loopback over a built warehouse, whose
Dagster home holds one real run of a sync; headless Chromium (Debian's, driven by playwright)
finds what a person looks for — a segment and its sync in the asset graph, who owns them, the
sync's last run (its counts, Meta's figures, its summary line), the sensors and schedules — and
saves a screenshot of each page under the test's output directory.

Chromium is Debian's package (`.ci/run` installs it when missing), never a browser playwright
downloads. Without it the tests skip, saying why; under CDP_REQUIRE_BROWSER=1 (CI) they fail.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ui_server import assert_one_location_loaded, free_port, start, stop_process_group, wait_for_code_locations

from cdp.settings import REPO_ROOT, WAREHOUSE_ENV_VAR
from destinations.sandbox.meta import SANDBOX_ACCESS_TOKEN, MetaEmulator
from destinations.sandbox.server import SandboxServer

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="process groups and signals are POSIX")

#: CI sets this: a missing browser fails the run instead of skipping the UI tests
REQUIRE_BROWSER_ENV_VAR = "CDP_REQUIRE_BROWSER"
DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
#: what the UI waits for at most (the first page compiles the asset graph of ~90 assets)
PAGE_TIMEOUT_MS = 120_000

#: a segment model and a sync reading it, which the fixture runs (to the Meta sandbox) so its
#: asset has a last run to show
SEGMENT_MODEL = "lapsed_customers"
SYNC = "lapsed_to_meta"
SYNC_OWNER = "retention@example.com"  # owner.email of the lapsed_to_meta exposure
SEGMENT_OWNERS = ("marketing-analytics@example.com", "retention-team")  # dbt group owner, meta.segment.owner


def _chromium() -> str:
    """Debian's chromium, or a skip (a failure under CDP_REQUIRE_BROWSER=1) that says how to get it."""
    found = shutil.which("chromium") or (str(DEBIAN_CHROMIUM) if DEBIAN_CHROMIUM.exists() else None)
    if found:
        return found
    reason = (
        "no chromium on PATH or at /usr/bin/chromium: install Debian's package "
        "(apt-get install chromium; .ci/run does) to run the UI tests"
    )
    if os.environ.get(REQUIRE_BROWSER_ENV_VAR) == "1":
        pytest.fail(f"{reason} ({REQUIRE_BROWSER_ENV_VAR}=1)")
    pytest.skip(reason)


def test_without_chromium_the_ui_tests_skip_saying_why_and_fail_in_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(sys.modules[__name__], "DEBIAN_CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv(REQUIRE_BROWSER_ENV_VAR, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no chromium on PATH or at /usr/bin/chromium"):
        _chromium()
    monkeypatch.setenv(REQUIRE_BROWSER_ENV_VAR, "1")
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install chromium.*CDP_REQUIRE_BROWSER=1"):
        _chromium()


@pytest.fixture(scope="module")
def ui(dbt_manifest: Path, built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Dagster webserver on 127.0.0.1 (its base URL), over a copy of the built warehouse, with a
    Dagster home in which lapsed_to_meta has been planned, checked and sent to the Meta sandbox."""
    _chromium()  # no browser: skip (or fail in CI) before starting anything
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    from orchestration.sync_assets import SyncEngine, build_sync_definitions

    root = tmp_path_factory.mktemp("ui")
    warehouse = root / "warehouse.duckdb"
    shutil.copy(built_warehouse, warehouse)
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")

    meta = MetaEmulator()
    with SandboxServer([meta]) as sandbox, pytest.MonkeyPatch.context() as env:
        env.setenv("CDP_SANDBOX_URL", sandbox.origin)
        env.setenv("CDP_DEMO_META_TOKEN", SANDBOX_ACCESS_TOKEN)
        assets, _ = build_sync_definitions()
        wanted = {dg.AssetKey(f"audience_{SYNC}"), dg.AssetKey(f"sync_{SYNC}")}
        with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
            result = dg.materialize(
                [asset for asset in assets if asset.key in wanted],
                resources={"sync_engine": SyncEngine(warehouse=str(warehouse))},
                instance=instance,
            )
        assert result.success and any(meta.audience_sizes().values()), "the sync to show in the UI sent nothing"

    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), WAREHOUSE_ENV_VAR: str(warehouse)}
    port = free_port()
    log = root / "dagster-webserver.log"
    webserver = Path(sys.executable).with_name("dagster-webserver")
    process = start(
        [str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)], cwd=REPO_ROOT, env=env, log=log
    )
    try:
        assert_one_location_loaded(wait_for_code_locations(process, port, log), log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process_group(process)


@pytest.fixture(scope="module")
def browser(ui: str):
    """Headless Debian chromium, driven by playwright (which downloads no browser of its own here)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, ui: str):
    context = browser.new_context(base_url=ui, viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def _open(page, path: str) -> None:
    """``path`` of the UI, loaded, with the first-visit newsletter dialog dismissed if it shows."""
    page.goto(path, wait_until="networkidle")
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(timeout=5_000)
    except Exception:  # playwright's TimeoutError: no dialog this time
        return
    skip.click()
    skip.wait_for(state="detached")


def _see(page, *texts: str) -> None:
    """Every text is visible on the page (waiting for it to render); fails naming the first missing."""
    for text in texts:
        page.get_by_text(text, exact=True).filter(visible=True).first.wait_for(state="visible")


def _screenshot(page, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.exists() and shot.stat().st_size > 20_000, f"{shot} is missing or nearly empty"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{shot} is not a PNG"
    print(f"screenshot: {shot}")
    return shot


@pytest.mark.slow
def test_the_asset_graph_shows_a_segment_feeding_its_sync(page, tmp_path: Path):
    """The lineage of sync_lapsed_to_meta: the segment model, the audience (checked) and the send."""
    _open(page, f"/assets/sync_{SYNC}?view=lineage&lineageScope=upstream&lineageDepth=1")
    _see(page, SEGMENT_MODEL, f"audience_{SYNC}", f"sync_{SYNC}", "sync_profile_fields", "segments", "syncs")
    _screenshot(page, tmp_path, "asset-graph")


@pytest.mark.slow
def test_an_asset_page_shows_group_owner_and_the_description_from_dbt(page, tmp_path: Path):
    _open(page, f"/assets/{SEGMENT_MODEL}")
    _see(page, "Customers in the lapsed lifecycle stage (no purchase within var lifecycle_lapsed_days).")
    _see(page, "segments", *SEGMENT_OWNERS)
    _screenshot(page, tmp_path, "segment-model")

    _open(page, f"/assets/sync_{SYNC}")
    _see(page, "syncs", SYNC_OWNER)
    page.get_by_text("Mirrors the lapsed customers into a Meta customer-file custom audience").first.wait_for()
    _screenshot(page, tmp_path, "sync-asset")


@pytest.mark.slow
def test_a_sync_asset_shows_its_last_run_counts_and_summary(page, tmp_path: Path):
    """The run of the fixture: its summary line (no link, no personal data), its counts, the share
    of the audience carrying each identifier and Meta's own figures."""
    _open(page, f"/assets/sync_{SYNC}")
    summary = page.get_by_text("Succeeded: planned ").filter(visible=True).first
    summary.wait_for(state="visible")
    line = summary.inner_text()
    assert " confirmed, 0 failed, 0 rejected; demo_meta_ads reports num_received " in line, line
    assert "http" not in line and "@" not in line, line
    _see(page, "summary", "planned_adds", "confirmed", "identifier_coverage", "platform")
    _screenshot(page, tmp_path, "sync-last-run")


@pytest.mark.slow
def test_the_automation_page_lists_every_sensor_and_schedule(page, tmp_path: Path, ui: str):
    _open(page, "/automation")
    _see(
        page,
        "raw_data_sensor",
        "sync_automation",
        "alert_on_run_failure",
        "resolve_run_failure_alerts",
        "alert_evaluations",
        "build_and_sync_schedule",
        f"sync_{SYNC}_schedule",
    )
    _screenshot(page, tmp_path, "automation")
