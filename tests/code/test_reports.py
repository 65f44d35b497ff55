"""Typed reports (tasks/reports/): written as key-sorted JSON, read back into the same dataclasses, and a
file of another version or shape refused in one line that says what to do."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import asdict

import pytest

from tasks import paths, reports
from tasks.errors import StageError
from tasks.registry import Production
from tasks.reports.source import Source
from tasks.reports.verdict import Baseline, Check, ConfigIdentity, DatasetIdentity, Identity, Verdict
from tests.helpers.repo import REPO

VERDICT = Verdict(
    passed=False,
    checks=[
        Check(name="accuracy", value=0.95, op=">=", threshold=0.9, passed=True),
        Check(
            name="accuracy vs production",
            value=-0.02,
            op=">=",
            threshold=-0.01,
            passed=False,
            difference=-0.03,
            interval=[-0.04, -0.02],
        ),
    ],
    baseline=Baseline(
        model="model@v0.0.3",
        fingerprint="ab" * 32,
        promoted_at="2026-12-01T08:00:00+00:00",
        trained_on=Identity(
            dataset=DatasetIdentity(source="kaggle", slug="o/d", dataset_version=2, sha256="cd" * 32),
            config=ConfigIdentity(handle="small_cnn", image_size=96, class_names=["Female", "Male"]),
        ),
        gating=True,
        accuracy=0.97,
    ),
)


def test_a_report_reads_back_as_the_same_dataclass_and_writes_the_same_bytes(tmp_path):
    pointer = Production(model_version="v0.0.3", commit="ef" * 20, fingerprint="ab" * 32)
    for report, cls in ((VERDICT, Verdict), (pointer, Production)):
        path = tmp_path / f"{cls.__name__}.json"
        reports.write(path, report)
        first = path.read_bytes()
        assert reports.read(path, cls, "gate") == report
        reports.write(path, reports.read(path, cls, "gate"))
        assert path.read_bytes() == first  # the same report, the same bytes
        assert list(json.loads(first)) == sorted(json.loads(first))  # key-sorted, indented JSON
        assert json.loads(first)["version"] == 1


def _refusal(path, cls, stage="gate") -> str:
    with pytest.raises(StageError) as err:
        reports.read(path, cls, stage)
    message = str(err.value)
    assert "\n" not in message  # one line
    assert message.startswith(f"{path}: ")
    return message


@pytest.mark.parametrize(("version", "shown"), [(2, "version 2"), (None, "version None")])
def test_a_report_of_another_version_is_refused_naming_the_file_and_what_to_do(tmp_path, version, shown):
    path = tmp_path / "gate.json"
    data = asdict(VERDICT) | {"version": version}
    path.write_text(json.dumps({k: v for k, v in data.items() if v is not None}))
    message = _refusal(path, Verdict)
    assert f"{shown} of the Verdict report, and this code reads version 1" in message
    assert message.endswith("rerun the gate stage (dvc repro -f -s gate)")
    with pytest.raises(reports.VersionError):
        reports.read(path, Verdict, "gate")


def test_a_report_of_another_shape_is_refused(tmp_path):
    path = tmp_path / "gate.json"
    path.write_text(json.dumps(asdict(VERDICT) | {"colour": "blue"}))
    assert "not a Verdict (Verdict: unknown key 'colour')" in _refusal(path, Verdict)
    data = asdict(VERDICT)
    del data["checks"][0]["threshold"]
    path.write_text(json.dumps(data))
    assert "threshold" in _refusal(path, Verdict)
    path.write_text("{not json")
    assert "unreadable, not valid JSON" in _refusal(path, Verdict)


def test_a_missing_report_says_which_stage_writes_it(tmp_path):
    message = _refusal(tmp_path / "SOURCE.json", Source, "download")
    assert message.endswith("not found; run the download stage first (dvc repro download)")


def test_the_stage_command_line_refuses_an_old_report_in_one_line(tmp_path):
    """What a user with reports from an older version sees from `dvc repro` (exit 2, no traceback)."""
    shutil.copy(REPO / paths.PARAMS_FILE, tmp_path / paths.PARAMS_FILE)
    evaluation = tmp_path / paths.EVALUATION
    evaluation.parent.mkdir(parents=True)
    evaluation.write_text(json.dumps({"accuracy": 0.9}))  # written before reports had versions
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)  # the registry (no model in it yet)
    done = subprocess.run(
        [sys.executable, "-m", "tasks.run", "gate"], cwd=tmp_path, capture_output=True, text=True, env=None
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {paths.EVALUATION}: version None of the Evaluation report, and this code reads version 1; "
        "rerun the evaluate stage (dvc repro -f -s evaluate)"
    ]
