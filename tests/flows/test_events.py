"""Events, the promoted-model trigger and the webhook alerts, on a real Prefect server, through both routes.

The module's own server (the automations must see only this module's runs), a repository copy with
tiny params, ``python -m flows.serve`` with ``ALERT_WEBHOOK_URL`` pointing at a loopback receiver
that records each POSTed JSON body. In order: a promoted model starts a batch-predict run (how soon
after the event is printed, not asserted: a latency is a benchmark's business), and the UI shows it
with the automation that started it; a blocked promotion sends one notification naming the failed
check; a weekly-retrain run that fails sends one; setting the alerts up again leaves one of each;
then the work-pool route (prefect.yaml, a worker) triggers the same run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from http.server import ThreadingHTTPServer

import pytest

from flows.events import BLOCKED, PROMOTED, promoted_trigger
from tasks import paths, synthetic
from tests.flows.test_flow import _deployment, _wait_for, flow
from tests.helpers.browser import SCREENSHOTS, chromium_page
from tests.helpers.loopback import QuietHandler, running
from tests.helpers.prefect_server import Server, prefect_home, run
from tests.helpers.repo import set_params

pytestmark = pytest.mark.slow
ALERT_NAMES = ["gender-alert: promotion blocked", "gender-alert: weekly-retrain failed"]


class Receiver(QuietHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(json.loads(body))
        self.send_body(200, "text/plain", b"ok")


@pytest.fixture(scope="module")
def webhook():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received = []
    with running(server):
        yield server


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """This module's own server: its automations react to this module's runs only."""
    with Server(prefect_home(tmp_path_factory, "prefect-home-events")) as server:
        yield server


@pytest.fixture(scope="module")
def alert_env(prefect_server, webhook) -> dict:
    return {**prefect_server.env, "ALERT_WEBHOOK_URL": f"http://127.0.0.1:{webhook.server_port}/hook"}


@pytest.fixture(scope="module")
def serving(flow_repo, prefect_server, alert_env):
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.serve", "--root", str(flow_repo)],
        cwd=flow_repo,
        env=alert_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _deployment(prefect_server, "batch-predict/batch-predict")
    yield proc
    proc.terminate()
    proc.wait(30)


def _events(server, name: str) -> list[dict]:
    return server.post("/events/filter", {"filter": {"event": {"name": [name]}}, "limit": 50})["events"]


def _emitted(server, name: str) -> list[dict]:
    """The events of that name once the server has stored one: it stores what it receives in batches, so an
    event sent as the flow ends may be stored a few seconds after the flow's process has exited."""
    return server.wait_until(lambda: _events(server, name), 60, f"a {name} event")


def _seconds_after(event: dict, stamp: str) -> float:
    def parse(s: str) -> datetime:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))

    return (parse(stamp) - parse(event["occurred"])).total_seconds()


def test_a_promoted_model_starts_a_batch_prediction_of_the_inbox(flow_repo, prefect_server, serving, webhook):
    inbox = flow_repo / paths.INBOX
    inbox.mkdir(parents=True)
    for i, (_, _, data) in enumerate(synthetic.generate({"Test": 3}, 0.5, seed=5)):
        (inbox / f"{i}.jpg").write_bytes(data)
    flow(flow_repo, prefect_server, "--promote")  # the first run: the gate passes and the model is promoted
    (event,) = _emitted(prefect_server, PROMOTED)
    production = json.loads((flow_repo / paths.PRODUCTION_POINTER).read_text())
    assert event["payload"]["fingerprint"] == production["fingerprint"]
    assert event["payload"]["metrics"] == json.loads((flow_repo / paths.METRICS).read_text())
    assert event["payload"]["failed_checks"] == []
    triggered = prefect_server.wait_until(
        lambda: prefect_server.flow_runs("batch-predict"), 300, "a batch-predict run"
    )[0]
    assert triggered["created_by"]["type"] == "AUTOMATION"
    # how soon after the event the run started: printed, not asserted (a latency is a benchmark's business;
    # a busy 2-core CI machine once took 66 s on the work-pool route)
    print(f"serve route: the run started {_seconds_after(event, triggered['start_time']):.0f} s after the event")
    finished = _wait_for(prefect_server, triggered["id"])
    assert finished["state"]["type"] == "COMPLETED", prefect_server.logs(triggered["id"])
    assert len(json.loads((flow_repo / paths.PREDICTIONS_OUT).read_text())) == 3
    assert webhook.received == []  # a promotion is no alert
    with chromium_page() as page:  # the UI shows the run, the automation that started it, and its log
        page.goto(f"{prefect_server.url}/runs/flow-run/{triggered['id']}", wait_until="networkidle")
        page.get_by_text(triggered["name"]).first.wait_for(timeout=60_000)
        page.get_by_text(promoted_trigger().name, exact=True).first.wait_for(timeout=30_000)
        page.get_by_text("3 predicted, 0 failed").first.wait_for(timeout=30_000)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "prefect-triggered-run.png"), full_page=True)


def test_a_blocked_promotion_sends_one_notification_naming_the_failed_check(flow_repo, prefect_server, webhook):
    set_params(flow_repo, {"gate": {"min_accuracy": 1.0}})
    flow(flow_repo, prefect_server)  # the gate fails: blocked, whether promotion was asked for or not
    (event,) = _emitted(prefect_server, BLOCKED)
    assert [c["name"] for c in event["payload"]["failed_checks"]] == ["accuracy"]
    (message,) = prefect_server.wait_until(lambda: list(webhook.received), 60, "a notification")
    assert message["text"].startswith(f"Promotion blocked: model {event['payload']['fingerprint']}")
    assert "accuracy" in message["text"]
    assert "needs >= 1.0" in message["text"]
    time.sleep(5)
    assert len(webhook.received) == 1  # one notification, not one per automation evaluation
    assert len(prefect_server.flow_runs("batch-predict")) == 1  # a blocked model triggers no prediction


def test_a_failed_weekly_retrain_sends_one_notification(flow_repo, prefect_server, webhook):
    good = (flow_repo / paths.PARAMS_FILE).read_text()
    (flow_repo / paths.PARAMS_FILE).write_text(good.replace("min_accuracy: 1.0", "min_accuracy: high"))
    try:
        deployment = _deployment(prefect_server, "gender-pipeline/weekly-retrain")
        created = prefect_server.post(f"/deployments/{deployment['id']}/create_flow_run", {})
        assert _wait_for(prefect_server, created["id"])["state"]["type"] == "FAILED"
        prefect_server.wait_until(lambda: len(webhook.received) == 2, 60, "a second notification")
    finally:
        (flow_repo / paths.PARAMS_FILE).write_text(good)
    message = webhook.received[1]["text"]
    assert message.startswith(f"weekly-retrain run {created['name']}: prefect.flow-run.Failed")
    assert "min_accuracy" in message  # the run's error, which names the bad key
    time.sleep(5)
    assert len(webhook.received) == 2


def test_setting_up_the_alerts_again_leaves_one_of_each(flow_repo, prefect_server, alert_env):
    run([sys.executable, "-m", "flows.events"], flow_repo, alert_env)
    automations = prefect_server.post("/automations/filter", {})
    names = sorted(a["name"] for a in automations if a["name"].startswith("gender-alert"))
    assert names == ALERT_NAMES
    triggers = [a for a in automations if a["name"] == promoted_trigger().name]
    assert len(triggers) == 1


def _triggered(server) -> list[dict]:
    """batch-predict runs an automation created, in any state (a work pool's run waits SCHEDULED for a worker)."""
    runs = server.post("/flow_runs/filter", {"flows": {"name": {"any_": ["batch-predict"]}}})
    return [r for r in runs if (r.get("created_by") or {}).get("type") == "AUTOMATION"]


def test_the_work_pool_route_triggers_the_same_batch_prediction(flow_repo, prefect_server, serving, alert_env):
    """What `make deploy` and `make worker` do, instead of `make serve`: prefect.yaml's trigger, a worker's run."""
    serving.terminate()  # from here the deployments are prefect.yaml's, on the process work pool
    serving.wait(30)
    env = {**alert_env, "PIPELINE_ROOT": str(flow_repo)}
    for cmd in (
        ["prefect", "work-pool", "create", "local-process", "--type", "process", "--overwrite"],
        ["prefect", "--no-prompt", "deploy", "--all"],
    ):
        run([sys.executable, "-m", *cmd], flow_repo, env)
    run([sys.executable, "-m", "flows.events"], flow_repo, env)
    before = {r["id"] for r in _triggered(prefect_server)}
    (flow_repo / paths.PREDICTIONS_OUT).unlink()
    set_params(flow_repo, {"train": {"epochs": 2}, "gate": {"min_accuracy": 0.0}})
    flow(flow_repo, prefect_server, "--promote")  # a new model passes the gate and is promoted
    event = prefect_server.wait_until(  # newest first: this promotion's, once stored (the first test's is older)
        lambda: (found := _events(prefect_server, PROMOTED))[1:] and found[0], 60, "this run's promotion event"
    )
    new = prefect_server.wait_until(
        lambda: [r for r in _triggered(prefect_server) if r["id"] not in before], 300, "the triggered run"
    )
    assert len(new) == 1
    assert _deployment(prefect_server, "batch-predict/batch-predict")["work_pool_name"] == "local-process"
    run([sys.executable, "-m", "prefect", "worker", "start", "--pool", "local-process", "--run-once"], flow_repo, env)
    finished = _wait_for(prefect_server, new[0]["id"])
    assert finished["state"]["type"] == "COMPLETED", prefect_server.logs(finished["id"])
    print(f"work-pool route: the run was created {_seconds_after(event, new[0]['created']):.0f} s after the event")
    assert len(json.loads((flow_repo / paths.PREDICTIONS_OUT).read_text())) == 3
