"""Prefect events from the pipeline, the trigger that serves a promoted model, and the alerts.

* **Events.** The flow emits ``gender.model.blocked`` when the gate stage fails, and
  ``gender.model.promoted`` when its promote task (``ops.promote``) makes the model the production one
  (resource ``gender.model.<fingerprint>``), with the model's fingerprint, the headline metrics
  (``reports/metrics.json``) and the gate's failed checks. ``dvc repro`` and ``make promote`` emit
  none: events belong to the orchestrated route.
* **Trigger.** The ``batch-predict`` deployment runs when a model is promoted (flows/deployments.py
  declares it once, for ``make serve`` and prefect.yaml alike), so the inbox is served by the new
  model seconds after its promotion instead of at the next daily run.
* **Alerts.** :func:`ensure_alerts` (run by ``make serve``, ``make deploy`` and ``python -m
  flows.events``) saves the webhook block ``gender-alerts`` (a Slack-compatible JSON body,
  ``{"text": ...}``, POSTed to ``ALERT_WEBHOOK_URL``) and two automations that send through it: one
  on ``gender.model.blocked`` and one on a failed or crashed ``weekly-retrain`` run. They are
  created by name or updated in place, so running it twice leaves one of each. Without
  ``ALERT_WEBHOOK_URL`` it says so and sets up nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tasks import paths
from tasks.errors import StageError
from tasks.reports import read
from tasks.reports.evaluation import Evaluation
from tasks.reports.verdict import Verdict
from tasks.verdict import failed_checks

PROMOTED = "gender.model.promoted"
BLOCKED = "gender.model.blocked"
MODEL_RESOURCES = "gender.model.*"
WEBHOOK_ENV = "ALERT_WEBHOOK_URL"
BLOCK = "gender-alerts"
SLACK_BODY = {"text": "{{subject}}\n{{body}}"}  # what Slack's incoming webhooks (and most chat hooks) accept


def promotion_event(root: Path) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The event of a gate that failed or a model that was promoted, from the gate report: name, resource, payload."""
    verdict = read(root / paths.GATE, Verdict, "gate")
    fingerprint = read(root / paths.EVALUATION, Evaluation, "evaluate").model.fingerprint
    payload = {
        "fingerprint": fingerprint,
        "metrics": json.loads((root / paths.METRICS).read_text()),
        "failed_checks": [asdict(c) for c in verdict.failed()],
        "reasons": failed_checks(verdict),
    }
    resource = {"prefect.resource.id": f"gender.model.{fingerprint}", "prefect.resource.name": "gender model"}
    return (PROMOTED if verdict.passed else BLOCKED), resource, payload


def emit_promotion_event(root: Path) -> None:
    """Emit :func:`promotion_event` (inside a task run, so the event is related to it)."""
    from prefect.events import emit_event

    name, resource, payload = promotion_event(root)
    emit_event(event=name, resource=resource, payload=payload)


def promoted_trigger() -> Any:
    """The deployment trigger that runs batch prediction when a model is promoted."""
    from prefect.events import DeploymentEventTrigger

    return DeploymentEventTrigger(
        name="batch-predict when a model is promoted",
        expect={PROMOTED},
        match={"prefect.resource.id": MODEL_RESOURCES},
        posture="Reactive",
        threshold=1,
        within=0,
    )


def _alerts(block_id: Any) -> list[Any]:
    from prefect.automations import Automation, EventTrigger, SendNotification

    blocked = Automation(
        name="gender-alert: promotion blocked",
        trigger=EventTrigger(
            expect={BLOCKED}, match={"prefect.resource.id": MODEL_RESOURCES}, posture="Reactive", threshold=1
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject="Promotion blocked: model {{ event.payload.fingerprint }}",
                body="Failed checks: {% for c in event.payload.failed_checks %}{{ c.name }} {{ c.value }} "
                "(needs {{ c.op }} {{ c.threshold }}); {% endfor %}metrics: {{ event.payload.metrics }}",
            )
        ],
    )
    failed = Automation(
        name="gender-alert: weekly-retrain failed",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "deployment", "prefect.resource.name": "weekly-retrain"},
            posture="Reactive",
            threshold=1,
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject="weekly-retrain run {{ event.resource['prefect.resource.name'] }}: {{ event.event }}",
                body="{{ event.payload.validated_state.message }}",
            )
        ],
    )
    return [blocked, failed]


def check_webhook(url: str) -> None:
    """Refuse, in one line, a webhook URL that no notification could reach (the server would drop each one)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StageError(
            f"{WEBHOOK_ENV}: {parts.scheme + '://' if parts.scheme else ''}... is not an http(s) URL with a host; "
            "set it to your chat's incoming-webhook URL (https://...)"
        )


def ensure_alerts(url: str | None = None) -> list[str]:
    """Save the webhook block and create or update the alert automations; their names (none without a URL)."""
    from prefect.automations import Automation
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    url = url or os.environ.get(WEBHOOK_ENV)
    if not url:
        print(f"alerts: {WEBHOOK_ENV} is not set, so no notifications (set it to a Slack-compatible webhook URL)")
        return []
    check_webhook(url)
    block = CustomWebhookNotificationBlock(name=BLOCK, url=url, method="POST", json_data=SLACK_BODY)
    block_id = block.save(BLOCK, overwrite=True)
    names = []
    for automation in _alerts(block_id):
        try:
            existing = Automation.read(name=automation.name)
        except ValueError:  # not there yet
            automation.create()
        else:
            automation.id = existing.id
            automation.update()
        names.append(automation.name)
    print(f"alerts: {', '.join(names)} -> {urlsplit(url).scheme}://{urlsplit(url).hostname}/... (the URL is a secret)")
    return names


if __name__ == "__main__":  # python -m flows.events: set up the alerts on PREFECT_API_URL's server
    from tasks.cli import run_cli

    run_cli(ensure_alerts)
