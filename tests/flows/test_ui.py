"""The Prefect UI, in a real headless Chromium (Debian's package), shows a completed flow run."""

from __future__ import annotations

import sys

import pytest

from flows.artifacts import PLOTS
from flows.pipeline import STAGE_NAMES
from tests.helpers.browser import SCREENSHOTS, chromium_page
from tests.helpers.prefect_server import run

pytestmark = pytest.mark.slow


def test_the_ui_shows_the_flow_its_stage_task_runs_the_plots_and_the_label_suspects(flow_repo, prefect_server):
    runs = prefect_server.flow_runs()
    if not runs or runs[0]["state"]["type"] != "COMPLETED":
        run([sys.executable, "-m", "flows.pipeline", "--root", str(flow_repo)], flow_repo, prefect_server.env)
        runs = prefect_server.flow_runs()
    flow_run = runs[0]
    assert flow_run["state"]["type"] == "COMPLETED"
    # its task runs: the stages, then promote where the run was asked to promote (the scheduled retrain)
    tasks = [t["name"] for t in prefect_server.task_runs(flow_run["id"])]
    assert tasks in (list(STAGE_NAMES), [*STAGE_NAMES, "promote"])
    # the run graph on the page below is drawn from these edges: the tasks as a chain
    assert prefect_server.graph_edges(flow_run["id"]) == set(zip(tasks, tasks[1:]))

    with chromium_page() as page:
        page.goto(f"{prefect_server.url}/runs/flow-run/{flow_run['id']}", wait_until="networkidle")
        page.get_by_text("gender-pipeline").first.wait_for(timeout=60_000)
        page.get_by_text(flow_run["name"]).first.wait_for(timeout=60_000)
        page.get_by_text(f"{len(tasks)} Task runs").first.wait_for(timeout=60_000)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "prefect-flow-run.png"), full_page=True)
        page.get_by_text("Task Runs", exact=True).first.click()
        names = page.locator(".task-run-list-item a.p-link")  # one row per task run, linked by name
        names.nth(len(tasks) - 1).wait_for(timeout=60_000)
        assert sorted(names.all_inner_texts()) == sorted(tasks)
        page.get_by_text("stage:train").first.wait_for(timeout=10_000)  # the version tags are shown
        shot = SCREENSHOTS / "prefect-task-runs.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000

        # the plots artifact: every picture is embedded (data: URI) and has loaded in the page
        artifact = prefect_server.post("/artifacts/filter", {"artifacts": {"key": {"any_": ["plots"]}}})[0]
        page.goto(f"{prefect_server.url}/artifacts/artifact/{artifact['id']}", wait_until="networkidle")
        images = page.locator("img[src^='data:image/png;base64,']")
        images.nth(len(PLOTS) - 1).wait_for(timeout=60_000)
        widths = images.evaluate_all("els => els.map(e => e.complete ? e.naturalWidth : 0)")
        assert len(widths) == len(PLOTS), widths
        assert all(w > 0 for w in widths), widths
        assert [t for t, _ in PLOTS] == page.locator("img[src^='data:']").evaluate_all("els => els.map(e => e.alt)")
        page.screenshot(path=str(SCREENSHOTS / "prefect-plots-artifact.png"), full_page=True)

        # the label audit: its counts and the picture of the top suspects, loaded in the page
        artifact = prefect_server.post("/artifacts/filter", {"artifacts": {"key": {"any_": ["label-audit"]}}})[0]
        page.goto(f"{prefect_server.url}/artifacts/artifact/{artifact['id']}", wait_until="networkidle")
        page.get_by_text("Most suspect first").first.wait_for(timeout=60_000)
        grid = page.locator("img[alt='The top label suspects'][src^='data:image/png;base64,']")
        grid.wait_for(timeout=60_000)
        assert grid.evaluate("e => e.complete ? e.naturalWidth : 0") > 0
        page.screenshot(path=str(SCREENSHOTS / "prefect-label-audit-artifact.png"), full_page=True)
