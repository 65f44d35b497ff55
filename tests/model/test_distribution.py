"""train.distribution: MirroredStrategy on 2 logical CPU devices matches single-device training, and two
MultiWorkerMirroredStrategy workers on loopback train the tiny model to the one-worker band."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from tasks import dataset, paths
from tasks.errors import StageError
from tasks.inference import load_model, predict_split
from tests.helpers.prefect_server import free_port
from tests.helpers.repo import REPO
from tests.helpers.tiny_model import TINY_MODEL_PARAMS, link_prepared

pytestmark = pytest.mark.slow
FINE_TUNE_EPOCHS = 14  # enough for the mirrored run to leave the majority answer on a 2-core CPU (8 were not)

# Runs in a fresh interpreter: logical devices must be set before TensorFlow starts.
SCRIPT = """
import json, sys
from pathlib import Path
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tasks.train import make_strategy
from tests.helpers.tiny_model import tiny_params, train_at
root, kind, per_replica = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
params = tiny_params(fine_tune_epochs=int(sys.argv[4]), distribution=kind, batch_size=per_replica)
replicas = make_strategy(kind).num_replicas_in_sync
result = train_at(root / kind, root, params)
print("RESULT " + json.dumps({"replicas": replicas, "history": result.history}))
"""


def _train(root, kind: str, per_replica: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root), kind, str(per_replica), str(FINE_TUNE_EPOCHS)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def test_mirrored_on_two_cpu_devices_matches_single_device(prepared, trained, tmp_path):
    """The single-device run is the session's tiny model (the same params and processed data), up to the
    mirrored run's last epoch: every epoch is seeded on its own and nothing depends on how many follow,
    so a 14-epoch run is the first 14 epochs of a 25-epoch one (resuming relies on the same property)."""
    root, _ = prepared
    _, _, trained_result = trained
    single = [h for h in trained_result.history if h["phase"] != "fine_tune" or h["epoch"] <= FINE_TUNE_EPOCHS]
    link_prepared(tmp_path, root)
    mirrored = _train(tmp_path, "mirrored", 16)  # the same global batch of 32 over 2 replicas
    assert mirrored["replicas"] == 2
    assert [h["phase"] for h in mirrored["history"]] == [h["phase"] for h in single]
    # Two replicas reduce the batch in another order and draw their own dropout masks, so the epochs take
    # other paths (on a CPU without AVX-512 one run leaves the 0.58 majority answer epochs before the other);
    # where they end is what must agree: both learn the signal, to the same accuracy (within 0.1).
    runs = {"1": single, "2": mirrored["history"]}
    curves = {name: [round(h["val_accuracy"], 2) for h in history] for name, history in runs.items()}
    for history in runs.values():
        assert history[-1]["val_accuracy"] >= 0.68, curves  # above the majority answer (0.58) by 0.1
        assert history[-1]["loss"] < history[0]["loss"], curves
    assert mirrored["history"][-1]["val_accuracy"] == pytest.approx(single[-1]["val_accuracy"], abs=0.1), curves
    assert (tmp_path / "mirrored" / paths.MODEL_DIR / "saved_model.pb").is_file()


def test_multi_worker_needs_tf_config(monkeypatch):
    from tasks.train import make_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(StageError, match="TF_CONFIG is not set"):
        make_strategy("multi_worker")


def test_two_workers_on_loopback_train_the_tiny_model_in_the_one_worker_band(prepared, trained, tmp_path):
    """train.distribution: multi_worker, two processes on 127.0.0.1 (TF_CONFIG), as on two hosts."""
    root, _ = prepared
    _, _, one_worker = trained
    raw = copy.deepcopy(TINY_MODEL_PARAMS)
    raw["train"]["distribution"] = "multi_worker"
    cluster = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    workers = []
    for index in (0, 1):
        home = tmp_path / f"worker{index}"  # each host has its own checkout; the data comes from the DVC remote
        link_prepared(home, root)
        (home / paths.PARAMS_FILE).write_text(yaml.safe_dump(raw))
        tf_config = {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "tasks.run", "train"],
                cwd=home,
                env={**os.environ, "TF_CONFIG": json.dumps(tf_config), "PYTHONPATH": str(REPO)},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    logs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert all("CollectiveAllReduceStrategy with 2 replica(s)" in log for log in logs)  # MultiWorkerMirrored

    def test_accuracy(model_dir) -> float:
        pred = predict_split(load_model(model_dir), dataset.shard_files(root / paths.PROCESSED_DIR, "Test"), 64)
        return float(np.mean(pred.probs.argmax(axis=1) == pred.y_true))

    one, two = test_accuracy(one_worker.model_dir), test_accuracy(tmp_path / "worker0" / paths.MODEL_DIR)
    assert two >= 0.8, (one, two)
    assert abs(one - two) <= 0.1, (one, two)  # 100 Test images
