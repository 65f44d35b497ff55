"""The demo as a newcomer runs it (`make demo`: `dvc repro` with the committed params.yaml, then `make promote`),
the experiment -> compare -> promote loop and the registry seen from a second clone, then behaviour and
face-crop checks on the production model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from flows import predict
from tasks import dataset, paths, precision, synthetic
from tasks.evaluate import BLANK_COLOURS
from tasks.inference import load_model, predict_split
from tasks.stages import BY_NAME
from tests.helpers.data import contents, digest, overlap
from tests.helpers.repo import dvc, ran, set_params

# the first test's time includes the demo's whole `dvc repro` (about 200 s alone, 250-300 s sharing 2 cores with
# another test process); pytest-timeout counts fixture setup in it
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ALL_STAGES = list(BY_NAME)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from tests.helpers.repo import copy_repo

    repo = copy_repo(tmp_path_factory.mktemp("demo") / "repo")
    out = dvc(repo, "repro")
    promoted = promote(repo)
    assert promoted.returncode == 0, promoted.stderr
    return repo, out + promoted.stdout


def promote(repo) -> subprocess.CompletedProcess:
    """`make promote` in ``repo``."""
    return subprocess.run([sys.executable, "-m", "ops.promote"], cwd=repo, capture_output=True, text=True)


def git(repo, *args) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def test_demo_passes_the_gate_and_make_promote_puts_its_model_in_production(demo):
    repo, out = demo
    assert ran(out) == ALL_STAGES
    assert "quality gate passed (absolute floor only: no model in production yet)" in out
    assert "promoted: models/model is the production model model@v0.0.1 (commit " in out
    metrics = json.loads((repo / paths.EVALUATION).read_text())
    assert metrics["accuracy"] >= 0.9
    assert json.loads((repo / paths.GATE).read_text())["passed"]
    pointer = json.loads((repo / paths.PRODUCTION_POINTER).read_text())
    assert pointer["model_version"] == "v0.0.1"
    assert pointer["fingerprint"] == metrics["model"]["fingerprint"]
    # the registry is two GTO tags on the commit that records this run: its dvc.lock and metrics are the workspace's
    assert git(repo, "tag", "--points-at", pointer["commit"]).split() == ["model#prod#1", "model@v0.0.1"]
    for recorded in ("dvc.lock", paths.METRICS):
        assert git(repo, "show", f"{pointer['commit']}:{recorded}") == (repo / recorded).read_text().strip()
    assert git(repo, "rev-parse", f"{pointer['commit']}^") == git(repo, "rev-parse", "HEAD")  # no branch moved
    assert f"{100 * metrics['accuracy']:.2f}%" in (repo / paths.MODEL_CARD).read_text()
    assert "up to date" in dvc(repo, "status")
    assert ran(dvc(repo, "repro")) == []
    assert promote(repo).stdout.strip() == "models/model is already the production model (model@v0.0.1)"


def _stale(repo) -> set[str]:
    return set(json.loads(dvc(repo, "status", "--json")))


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("tasks/metrics.py", {"evaluate", "gate"}),  # the quality gate's arithmetic
        # the TFRecord encoder, and the input function of everything that reads the shards
        ("tasks/dataset.py", {"preprocess", "features", "audit", "train", "evaluate", "gate"}),
        ("tasks/synthetic.py", {"download", "features", "train"}),  # also what small_cnn is pretrained on
        # deps at the grain of what computes the outputs: what runs a stage reruns nothing ...
        ("tasks/run.py", set()),
        ("tasks/cli.py", set()),
        ("tasks/doctor.py", set()),
        ("tasks/quiet.py", set()),
        ("tasks/params/config.py", set()),
        # ... and a params section's code reruns only the stages that read that section
        ("tasks/params/gate.py", {"gate"}),
        ("tasks/params/audit.py", {"audit"}),
        # a report's module reruns its writer and its readers only: the gate's verdict, evaluate's evaluation
        ("tasks/reports/verdict.py", {"gate"}),
        ("tasks/reports/evaluation.py", {"evaluate", "gate"}),
    ],
)
def test_touching_a_module_makes_stale_exactly_the_stages_that_import_it(demo, module, expected):
    repo, _ = demo
    source = repo / module
    original = source.read_bytes()
    try:
        source.write_bytes(original + b"\n# touched\n")
        assert _stale(repo) == expected
    finally:
        source.write_bytes(original)
    assert _stale(repo) == set()


def test_a_forced_preprocess_writes_the_same_bytes_and_leaves_train_up_to_date(demo):
    repo, _ = demo
    out = dvc(repo, "repro", "--force", "--single-item", "preprocess")
    assert ran(out) == ["preprocess"]
    assert _stale(repo) == set(), "preprocess wrote other bytes: train would rerun"
    assert ran(dvc(repo, "repro")) == []


def test_a_forced_evaluate_writes_the_same_bytes(demo):
    repo, _ = demo
    outputs = [o.path for o in BY_NAME["evaluate"].outputs()]
    before = {k: v for rel in outputs for k, v in digest(repo, rel).items()}
    assert ran(dvc(repo, "repro", "--force", "--single-item", "evaluate")) == ["evaluate"]
    assert {k: v for rel in outputs for k, v in digest(repo, rel).items()} == before
    assert _stale(repo) == set()


def test_a_forced_train_writes_the_same_model(demo):
    # the demo's run exported the built-in backbone into an empty cache; this one finds it there.
    # TensorBoard's event files are named and stamped with the wall time: no later stage reads them
    repo, _ = demo
    outputs = [o.path for o in BY_NAME["train"].outputs() if o.path != paths.TENSORBOARD_DIR]
    before = {k: v for rel in outputs for k, v in digest(repo, rel).items()}
    assert ran(dvc(repo, "repro", "--force", "--single-item", "train")) == ["train"]
    assert {k: v for rel in outputs for k, v in digest(repo, rel).items()} == before
    assert _stale(repo) == set()


def _test_images(repo, size):
    return np.concatenate(
        [x.numpy() for x, _ in dataset.make_dataset(dataset.shard_files(repo / paths.PROCESSED_DIR, "Test"), size, 100)]
    )


def test_flip_and_small_brightness_changes_rarely_change_the_prediction(demo):
    repo, _ = demo
    model = load_model(repo / paths.PRODUCTION_MODEL)
    images = _test_images(repo, model.image_size)
    label = model.predict(images).argmax(1)
    flip_rate = (model.predict(images[:, :, ::-1]).argmax(1) != label).mean()
    brighter = model.predict(np.clip(images + 0.05 * 255, 0, 255).astype(np.uint8)).argmax(1)
    darker = model.predict(np.clip(images - 0.05 * 255, 0, 255).astype(np.uint8)).argmax(1)
    brightness_rate = ((brighter != label) | (darker != label)).mean()
    # measured on the demo model: 1.75% and 1.5% of 400 Test images
    assert flip_rate <= 0.05, (flip_rate, brightness_rate)
    assert brightness_rate <= 0.03, (flip_rate, brightness_rate)
    behaviour = json.loads((repo / paths.EVALUATION).read_text())["behaviour"]  # evaluate reports the same
    assert behaviour["flip_changed"] == pytest.approx(flip_rate)
    assert behaviour["brightness_changed"] == pytest.approx(brightness_rate)


@pytest.mark.skipif(not precision.cpu_has_bfloat16(), reason="this CPU has no bfloat16 instructions")
def test_the_demo_model_in_bfloat16_gives_the_same_answers(demo):
    repo, _ = demo
    model, files = load_model(repo / paths.MODEL_DIR), dataset.shard_files(repo / paths.PROCESSED_DIR, "Test")
    full = predict_split(model, files, 64)
    with precision.rewrite("bfloat16"):
        reduced = predict_split(load_model(repo / paths.MODEL_DIR), files, 64)
    a, b = full.probs.argmax(axis=1), reduced.probs.argmax(axis=1)
    # 400 Test images: at most 2 answers differ, accuracy within half a point
    assert (a == b).mean() >= 0.995
    assert abs((a == full.y_true).mean() - (b == full.y_true).mean()) <= 0.005


def test_a_blank_image_is_refused_by_the_production_model_cli(demo, tmp_path, monkeypatch, capsys):
    repo, _ = demo
    monkeypatch.chdir(repo)  # the default --model is the production model, relative to the repository
    for name, rgb in BLANK_COLOURS.items():  # greys and colours, as evaluate's behaviour check has them
        Image.new("RGB", (178, 218), rgb).save(tmp_path / f"blank-{name}.jpg")
    Image.open(repo / paths.FIGURES_DIR / "roc.png").convert("RGB").save(tmp_path / "not_blank.jpg")
    assert predict.main([str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("blank image (a single colour): nothing to classify") == len(BLANK_COLOURS)
    assert "not_blank.jpg\t" in captured.out  # everything else is still predicted


def test_face_crops_find_and_classify_pasted_faces(demo, tmp_path, capsys):
    repo, _ = demo
    scenes = synthetic.photos(24, seed=2)
    for k, (photo, _, _) in enumerate(scenes):
        photo.save(tmp_path / f"scene{k:02d}.jpg", quality=95)
    empty = tmp_path / "empty.jpg"
    Image.fromarray(np.random.default_rng(0).integers(90, 160, (400, 600, 3), dtype=np.uint8)).save(empty)
    model = ["--model", str(repo / paths.PRODUCTION_MODEL)]

    assert predict.main([str(tmp_path), "--detect-faces", "--json", *model]) == 0
    results = {r["path"]: r for r in json.loads(capsys.readouterr().out)}
    assert results[str(empty)]["faces"] == []
    found = right = stray = 0
    for k, (_, rect, male) in enumerate(scenes):
        faces = results[str(tmp_path / f"scene{k:02d}.jpg")]["faces"]
        hits = [f for f in faces if overlap(tuple(f["crop"]), rect) >= 0.6]  # cropped like the pasted crop
        stray += len(faces) - len(hits)
        if hits:
            found += 1
            right += hits[0]["label"] == ("Male" if male else "Female")
    # Haar finds about 70% of these drawn faces (measured: 101 of 144 over 6 seeds, 1 stray box)
    assert found >= 15, f"found {found} of 24 pasted faces, {stray} stray boxes"
    assert stray <= 1, f"found {found} of 24 pasted faces, {stray} stray boxes"
    assert right / found >= 0.8, f"{right} of {found} faces classified right"

    assert predict.main([str(empty), str(tmp_path / "scene00.jpg"), "--detect-faces", *model]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header == "path\tface\tlabel\tprobability"
    assert lines[0] == f"{empty}\tno face found"


def test_an_experiment_shows_its_verdict_beside_the_baseline_and_never_changes_production(demo):
    repo, _ = demo
    registry = (git(repo, "tag"), (repo / paths.PRODUCTION_POINTER).read_bytes())
    out = dvc(repo, "exp", "run", "-n", "short", "-S", "train.fine_tune_epochs=2")
    assert ran(out) == ["train", "evaluate", "gate"]
    assert (git(repo, "tag"), (repo / paths.PRODUCTION_POINTER).read_bytes()) == registry
    done = subprocess.run([sys.executable, "-m", "flows.experiments"], cwd=repo, capture_output=True, text=True)
    header, workspace, baseline, experiment = done.stdout.split("\n\n")[0].splitlines()
    assert header.split()[:8] == ["experiment", "acc", "acc_lo", "acc_hi", "auc", "ece", "gate", "logloss"]
    assert header.split()[-1] == "Δacc"
    # the baseline row has the committed metrics file's figures (a fresh clone has them too), the experiment its own
    committed = json.loads(git(repo, "show", f"HEAD:{paths.METRICS}"))
    assert baseline.split()[1:3] == [f"{committed['acc']:.4f}", f"{committed['acc_lo']:.4f}"]
    ours = json.loads((repo / paths.METRICS).read_text())
    assert experiment.split()[1:3] == ["short", f"{ours['acc']:.4f}"]
    assert experiment.split()[-1] == f"{ours['acc'] - committed['acc']:+.4f}"
    assert experiment.split()[7] == str(ours["gate"])


def test_make_promote_refuses_uncommitted_code_a_stale_pipeline_and_a_failed_gate(demo):
    repo, _ = demo
    tags = git(repo, "tag")
    (repo / "README.md").write_text("an edit\n")
    assert promote(repo).stderr.strip() == (
        "error: uncommitted changes to README.md; commit them first (git commit): a production model is made "
        "from committed code"
    )
    git(repo, "checkout", "README.md")
    set_params(repo, {"gate": {"min_accuracy": 1.0}})
    stale = promote(repo).stderr.strip()
    assert stale == "error: not up to date: gate; run `dvc repro` (or make repro) first"
    dvc(repo, "repro")
    refused = promote(repo).stderr.strip()
    assert refused.startswith("error: not promoted: the quality gate failed (accuracy 0.")
    assert git(repo, "tag") == tags


def test_a_second_clone_gets_the_production_model_by_its_registry_name_through_the_remote(demo, tmp_path):
    repo, _ = demo
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    (clone / ".venv").symlink_to(repo / ".venv")
    dvc(clone, "remote", "modify", "--local", "local", "url", str(repo / "dvc-storage"))  # the team's remote
    image = tmp_path / "face.jpg"
    shutil.copy(next((repo / paths.FIGURES_DIR).glob("*.png")), tmp_path / "x.png")
    Image.open(tmp_path / "x.png").convert("RGB").save(image)
    done = subprocess.run(
        [sys.executable, "-m", "flows.predict", str(image)], cwd=clone, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "model: model@v0.0.1 at models/production/model" in done.stderr
    assert digest(clone, paths.PRODUCTION_MODEL) == digest(repo, paths.PRODUCTION_MODEL)
    assert (clone / paths.PRODUCTION_POINTER).read_bytes() == (repo / paths.PRODUCTION_POINTER).read_bytes()
    dvc(clone, "artifacts", "get", ".", "model", "--stage", "prod", "-o", "by-name")  # DVC's own command
    assert contents(clone, "by-name") == contents(repo, paths.PRODUCTION_MODEL)


def test_a_model_trained_on_another_dataset_is_promoted_when_it_passes_the_floor(demo):
    """Issue 15's path: the demo model is in production, then the pipeline runs on another face set.

    The production model is re-evaluated on the new Test images and compared image by image, but it was
    trained on other data, so by default (``gate.baseline: same_data``) only the floor decides.
    Runs last: it changes the demo repository's data.
    """
    repo, _ = demo
    # another face set, a quarter of the demo's Train images and 6 fine-tune epochs (the point is the gate,
    # not the accuracy: measured 0.735), and the floor that decides set where a model of that size passes it
    other = {"seed": 7, "male_share": 0.3, "train": 600, "validation": 200, "test": 200}
    set_params(repo, {"data": {"synthetic": other}, "train": {"fine_tune_epochs": 6}, "gate": {"min_accuracy": 0.6}})
    out = dvc(repo, "repro")
    assert ran(out) == ALL_STAGES
    assert "the comparison is shown, it does not decide" in out
    gate = json.loads((repo / paths.GATE).read_text())
    assert gate["passed"]
    assert not gate["baseline"]["gating"]
    assert gate["baseline"]["reason"].startswith("the production model was trained on another dataset")
    compared = {c["name"]: c for c in gate["checks"] if c["difference"] is not None}
    assert set(compared) == {"accuracy vs production", "Female recall vs production", "Male recall vs production"}
    assert not any(c["gating"] for c in compared.values())
    # each comparison is shown with its own verdict and only the floor decides, whichever way the training's last
    # digits fall on this CPU (a failing comparison that does not decide: tests/code/test_metrics.py)
    for check in compared.values():
        assert check["passed"] == (check["value"] >= check["threshold"]), check
        assert check["interval"][0] <= check["difference"] <= check["interval"][1], check
    floor = next(c for c in gate["checks"] if c["name"] == "accuracy")
    assert floor["gating"] and floor["value"] >= 0.6
    assert promote(repo).stdout.startswith("promoted: models/model is the production model model@v0.0.2")
    metrics = json.loads((repo / paths.EVALUATION).read_text())
    assert json.loads((repo / paths.PRODUCTION_POINTER).read_text())["fingerprint"] == metrics["model"]["fingerprint"]
