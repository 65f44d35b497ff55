"""Same input, same bytes: the stages before train, run twice in fresh processes, write identical outputs.

Otherwise a rerun of preprocess (after changing only ``validate.workers``, say) would make train stale:
hours of GPU for nothing. Each stage's contract says which outputs are byte-reproducible; the
GX context and Data Docs are not (they hold run times) and no stage reads them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tasks import synthetic
from tasks.stages import BY_NAME
from tests.helpers.data import digest
from tests.helpers.repo import share_backbones

DATA_STAGES = ("download", "validate", "preprocess", "features", "audit")
PARAMS = {
    "data": {"synthetic": {"train": 60, "validation": 16, "test": 16, "seed": 9}},
    "validate": {"min_per_class": 1, "workers": 2},  # two worker processes: order must not depend on them
    "preprocess": {"shards_per_split": 3},
}


def _run_data_stages(root: Path) -> dict[str, str]:
    root.mkdir()
    share_backbones(root)
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    digests: dict[str, str] = {}
    for name in DATA_STAGES:
        stage = BY_NAME[name]
        done = subprocess.run([sys.executable, "-m", "tasks.run", name], cwd=root, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        for out in stage.outputs():
            if out.reproducible:
                digests |= digest(root, out.path)
    return digests


def test_data_stages_write_the_same_bytes_in_fresh_processes(tmp_path):
    first, second = _run_data_stages(tmp_path / "a"), _run_data_stages(tmp_path / "b")
    assert any(name.endswith(".tfrecord") for name in first)
    assert "data/validation/report.json" in first
    assert {"data/features/Train.npy", "reports/label_issues.csv", "reports/label_issues.png"} <= set(first)
    assert first == second


def test_every_output_a_later_stage_reads_is_reproducible():
    """A later stage never depends on bytes that change on an identical rerun."""
    unstable = {o.path for s in BY_NAME.values() for o in s.outputs() if not o.reproducible}
    for stage in BY_NAME.values():
        read = set(stage.deps.values())
        assert not read & unstable, f"{stage.name} reads {sorted(read & unstable)}"


def test_synthetic_faces_do_not_depend_on_the_number_of_workers(monkeypatch):
    counts = {"Train": 17, "Test": 5}
    one_stream = list(synthetic.generate(counts, 0.42, 3))  # each split one block: the stream before blocks
    monkeypatch.setattr(synthetic, "BLOCK", 4)  # 5 + 2 blocks, drawn on 2 processes, in order
    sequential, parallel = list(synthetic.generate(counts, 0.42, 3)), list(synthetic.generate(counts, 0.42, 3, 2))
    assert parallel == sequential
    assert [s[:2] for s in sequential] == [s[:2] for s in one_stream]  # same splits and labels, in order
    assert sequential[:4] == one_stream[:4]  # the first block of a split is its old stream
    assert sequential[4:17] != one_stream[4:17]  # later blocks have their own streams
