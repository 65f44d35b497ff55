"""Every benchmark runs (at its --small size) and its figures agree with each other.

They are code and must not rot between measurements; the checks recompute each derived figure
(ratios, rates, totals) from the raw ones it is made of, so a benchmark that mislabels or
miscomputes its result fails here, whatever the machine's speed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pytest import approx

from benchmarks import near_duplicates, rehearsal
from benchmarks.common import REPO, RESULTS
from tasks.near_duplicates import MAX_ALIGNED_PAIRS
from tasks.stages import BY_NAME

pytestmark = [pytest.mark.slow, pytest.mark.bench]  # `make bench-check`, not `make test`


def _frozen_phase(r: dict) -> None:
    med = r["seconds_median"]
    assert r["speedup"] == approx(med["original"] / med["ours"])
    assert {len(v) for v in r["val_accuracy"].values()} == {r["params"]["repeats"]}
    reduced = {k.split("_", 1)[1] for k in med if "_" in k}  # run with --mixed-precision
    if not reduced:  # a CPU without bfloat16: float32 only
        assert "speedup_ours_rewritten" not in r
        return
    (reduced,) = reduced
    assert r["speedup_ours_rewritten"] == approx(med["original"] / med[f"ours_{reduced}"])
    assert r["speedup_both_rewritten"] == approx(med[f"original_{reduced}"] / med[f"ours_{reduced}"])


def _input_pipeline(r: dict) -> None:
    rates = r["images_per_second"]
    assert r["ours_vs_image_data_generator"] == approx(rates["ours_tf_data"] / rates["image_data_generator"], rel=1e-3)
    assert r["ours_share_of_bare_loop"] == approx(
        rates["ours_tf_data"] / rates["bare_decode_resize_all_cores"], rel=1e-3
    )


def _scale(r: dict) -> None:
    assert [run["images"] for run in r["runs"]] == [100, 200]  # --small sizes
    for run in r["runs"]:
        assert list(run["stages"]) == list(BY_NAME)  # every stage, in DAG order
        assert run["full_run_seconds"] == approx(sum(s["seconds"] for s in run["stages"].values()), abs=0.1)


def _data_half(r: dict) -> None:
    run = r["run"]
    assert run["images"] == 200
    assert list(run["stages"]) == ["download", "validate", "preprocess"]
    assert run["full_run_seconds"] == approx(sum(s["seconds"] for s in run["stages"].values()), abs=0.1)
    assert run["disk_mib"]["data"] > 0


def _rehearsal(r: dict) -> None:
    real, ours = rehearsal.images_handled(r["kaggle_counts"]), rehearsal.images_handled(r["counts"])
    for compute, m in r["measured"].items():
        s = m["seconds"]
        assert set(s) == {*rehearsal.DATA_STAGES, *rehearsal.MODEL_STAGES, "phase1", "phase2"}, compute
        assert 0 < s["phase1"] + s["phase2"] < s["train"], compute  # the phases are timed inside the stage
        if r["params"]["small"]:  # a smoke run's few images say nothing of the Kaggle size: not extrapolated
            assert "kaggle_scale_seconds" not in m
            continue
        scaled = m["kaggle_scale_seconds"]
        for k in ("validate", "features", "phase1", "evaluate"):
            assert scaled[k] == approx(s[k] / ours[k] * real[k], abs=1), (compute, k)
        rest = s["train"] - s["phase1"] - s["phase2"]
        assert scaled["train"] == approx(scaled["phase1"] + scaled["phase2"] + rest, abs=2), compute
    if not r["params"]["small"]:
        f32, low = (r["measured"][c]["kaggle_scale_seconds"] for c in ("float32", r["reduced_precision"]))
        assert r["speedup_at_kaggle_scale"]["features"] == approx(f32["features"] / low["features"], rel=0.01)
    assert "speedup_at_kaggle_scale" not in r or not r["params"]["small"]


def test_the_rehearsal_extrapolates_each_stage_by_the_images_it_handles():
    counts = {"Train": 60, "Validation": 20, "Test": 20}
    seconds = {"download": 1.0, "validate": 2.0, "preprocess": 1.0, "features": 4.0, "audit": 1.0, "train": 30.0}
    seconds |= {"phase1": 5.0, "phase2": 20.0, "evaluate": 3.0, "gate": 2.0}
    scaled, real = rehearsal.extrapolate(seconds, counts), rehearsal.images_handled(rehearsal.KAGGLE)
    assert scaled["features"] == approx(4.0 / 100 * real["features"], abs=1)
    assert scaled["train"] == approx(scaled["phase1"] + scaled["phase2"] + 5.0, abs=2)  # the rest kept as measured


def test_a_smoke_run_never_overwrites_a_committed_result(tmp_path, monkeypatch):
    from benchmarks import common

    monkeypatch.setattr(common, "RESULTS", tmp_path)
    assert common.save("rehearsal", {}, small=True) == tmp_path / "smoke_rehearsal.json"
    assert common.save("smoke_scale", {}, small=True) == tmp_path / "smoke_scale.json"
    assert common.save("rehearsal", {}) == tmp_path / "rehearsal.json"


def _predict(r: dict) -> None:
    images = r["params"]["images"]
    for name, m in r["models"].items():
        if "command_seconds" in m:  # the rate is rounded to 0.1 and the seconds to 0.01, each from the raw time
            seconds = m["command_seconds"]
            slack = 0.05 + images * 0.005 / (seconds - 0.005) ** 2 + 1e-9  # the rate's rounding + the seconds'
            assert m["command_images_per_second"] == approx(images / seconds, abs=slack), name
    faces = r["models"]["face detection"]
    whole, detect = faces["whole_photo_photos_per_second"], faces["detect_faces_photos_per_second"]
    ratio = whole / detect  # both rates rounded to 0.1, the ratio to 0.01
    assert faces["detection_cost_ratio"] == approx(ratio, abs=ratio * (0.05 / whole + 0.05 / detect) + 0.005)


def _near_duplicates(r: dict) -> None:
    splits, cores = r["params"]["splits"], r["params"]["cores"]
    assert r["fingerprint_seconds_on_all_cores"] == approx(
        r["fingerprint_ms_per_image"] / 1000 * sum(splits.values()) / cores, abs=0.1
    )
    assert (
        r["pair_comparisons"]
        == splits["Train"] * (splits["Validation"] + splits["Test"]) + splits["Validation"] * splits["Test"]
    )
    assert r["total_seconds"] == approx(r["fingerprint_seconds_on_all_cores"] + r["search_seconds"], abs=0.11)
    assert list(r["caught_share_by_transform"]) == list(near_duplicates._transforms())
    assert all(0 <= share <= 1 for share in r["caught_share_by_transform"].values())
    different = r["different_faces"]
    assert different["pairs_compared"] == 10 * 10  # 20 faces (--small), half against half
    assert different["confirmed"] <= different["candidates"]
    small, large = r["candidate_memory"]  # 9x the colour-alike pairs, no more memory (a running top-k)
    assert large["colour_alike_pairs"] > 8.5 * small["colour_alike_pairs"] > 8.5 * 0.95 * 200 * 50
    assert small["candidates_kept"] == large["candidates_kept"] == MAX_ALIGNED_PAIRS
    assert large["peak_mib"] < 2 * small["peak_mib"] + 32
    alike = different["most_colour_alike"]
    assert alike["pairs"] == near_duplicates.ALIKE_PAIRS
    assert alike["colours"][0] <= alike["colours"][1] <= 1


def _label_audit(r: dict) -> None:
    assert list(r["by_label_noise"]) == ["0.0", "0.02", "0.05"]
    for noise, run in r["by_label_noise"].items():
        for split, pr in ((k, v) for k, v in run.items() if isinstance(v, dict)):
            if pr["flagged"] and pr["planted"]:
                assert pr["precision"] == approx(pr["true_flags"] / pr["flagged"], abs=0.0005), (noise, split)
            if pr["planted"]:
                assert pr["recall"] == approx(pr["true_flags"] / pr["planted"], abs=0.0005), (noise, split)
        assert run["all"]["planted"] == sum(run[s]["planted"] for s in ("Train", "Validation", "Test"))
    assert r["by_label_noise"]["0.0"]["all"]["planted"] == 0 < r["by_label_noise"]["0.05"]["all"]["planted"]


def _precision(r: dict) -> None:
    rates, reduced = r["images_per_second_median"], r["reduced_precision"]
    assert set(rates) == {"float32", reduced}
    for k, ratio in r["speedup"].items():
        assert ratio == approx(rates[reduced][k] / rates["float32"][k], rel=0.01), k


def _install(r: dict) -> None:
    routes = r["routes"]
    assert r["uv_speedup"] == approx(routes["pip"]["seconds"] / routes["uv"]["seconds"], abs=0.005)
    assert set(routes["pip"]["packages"]) == {p for p in routes["uv"]["packages"] if not p.startswith("uv==")}
    for installer, measured in routes.items():  # both compile the bytecode, as `make setup` needs
        assert measured["compiled"] == dict.fromkeys(r["imported"], True), installer


def _gpu_checks(r: dict) -> None:
    _precision(json.loads((RESULTS / "smoke_gpu_precision.json").read_text()))
    _rehearsal(json.loads((RESULTS / "smoke_gpu_rehearsal.json").read_text()))
    _frozen_phase(json.loads((RESULTS / "smoke_gpu_frozen_phase.json").read_text()))
    assert set(r["rewrite_over_fp32"]) == {"feature_extraction", "phase2_train_step", "prediction"}
    steps = r["step_seconds"]
    assert r["input_overhead"] == approx(steps["real_input"] / steps["in_memory"] - 1)


# benchmarks.precision, benchmarks.rehearsal and benchmarks.frozen_phase (--mixed-precision) run (--small)
# inside benchmarks.gpu_checks, checked there. Longest first (alone, 2026-12-03: about 168, 100, 41, 38, 31 s,
# the rest under 20 s): each is a unit of work of its own for pytest-xdist (tests/conftest.py).
@pytest.mark.parametrize(
    ("module", "extra", "check"),
    [
        ("benchmarks.scale", [], _scale),
        ("benchmarks.gpu_checks", [], _gpu_checks),
        ("benchmarks.predict", [], _predict),
        ("benchmarks.label_audit", [], _label_audit),
        ("benchmarks.scale", ["--data-half"], _data_half),
        ("benchmarks.input_pipeline", [], _input_pipeline),
        ("benchmarks.near_duplicates", [], _near_duplicates),
        ("benchmarks.install", [], _install),
    ],
)
def test_benchmark_runs_small_and_its_figures_agree(module, extra, check):
    name = "smoke_" + module.split(".")[1] + "".join(extra).replace("-", "_")
    args = ["--small", *extra] + (["--name", name] if module != "benchmarks.gpu_checks" else [])
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((RESULTS / f"{name}.json").read_text())
    assert result["machine"]["cpus"] >= 1
    check(result)
