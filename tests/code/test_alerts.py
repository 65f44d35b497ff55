"""An alert webhook that no notification could reach is refused when the alerts are set up, in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flows.events import check_webhook
from tasks.errors import StageError
from tests.helpers.repo import REPO


@pytest.mark.parametrize("url", ["garbage", "hooks.slack.com/services/T0/B0/x", "ftp://example.org/hook", "https://"])
def test_a_webhook_url_without_an_http_scheme_and_host_is_refused(url):
    with pytest.raises(StageError, match=r"ALERT_WEBHOOK_URL: .* is not an http\(s\) URL with a host"):
        check_webhook(url)


def test_a_real_webhook_url_passes():
    check_webhook("https://hooks.slack.com/services/T0/B0/secret")
    check_webhook("http://127.0.0.1:8080/hook")


def test_setting_up_the_alerts_with_garbage_is_one_line_before_any_server_is_asked(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO), "ALERT_WEBHOOK_URL": "garbage"}
    env["PREFECT_API_URL"] = "http://127.0.0.1:9/api"  # nothing listens: a call would fail otherwise
    done = subprocess.run([sys.executable, "-m", "flows.events"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: ALERT_WEBHOOK_URL: ... is not an http(s) URL with a host; set it to your chat's incoming-webhook URL "
        "(https://...)"
    ]
