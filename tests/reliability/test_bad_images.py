"""One bad file never sinks a batch: fuzzed JPEG and PNG bytes through predict and validate's reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows import predict
from tasks import validate
from tasks.inference import LoadedModel
from tasks.params.validate import ValidateParams
from tests.helpers.fuzz import cases


def constant_model() -> LoadedModel:
    """A stand-in for the network (these tests are about reading files): every image gets 0.3/0.7."""
    import tensorflow as tf

    def signature(images):
        return {"probabilities": tf.tile([[0.3, 0.7]], [tf.shape(images)[0], 1])}

    return LoadedModel(signature=signature, class_names=["Female", "Male"], image_size=32)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz")
    for name, data in cases().items():
        (folder / f"{name}.{'png' if name.startswith('png') else 'jpg'}").write_bytes(data)
    (folder / "new\nline\ttab.jpg").write_bytes(data[:10])  # a name that cannot be printed as it is
    return folder


def test_every_fuzzed_file_gets_exactly_one_line_or_a_prediction(fuzzed, capfd):
    files = predict.expand([fuzzed])
    results = predict.predict_files(files, constant_model(), ValidateParams())
    assert [r["path"] for r in results] == [str(f) for f in files]
    for r in results:
        assert ("label" in r) != ("error" in r), r
        (line,) = predict.answers(r)
        assert "\n" not in line
        assert line.count("\t") in (0, 2)  # path, label, probability: a tab in a name is escaped
    errors = {Path(r["path"]).stem: r["error"] for r in results if "error" in r}
    assert "png-ztxt-bomb" in errors
    assert "MAX_TEXT_CHUNK" in errors["png-ztxt-bomb"]
    assert "png-huge-dimensions" in errors
    assert "None" not in " ".join(errors.values())  # every reason is a real sentence
    assert "jpeg-exif-truncated" not in errors  # odd EXIF: the photo is predicted as stored
    assert len(errors) < len(results)  # the readable ones were still predicted
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "Warning" not in err


def test_validates_reader_drops_each_fuzzed_file_with_a_reason(fuzzed):
    for path in sorted(fuzzed.iterdir()):
        row = validate.inspect_image(path.read_bytes(), ValidateParams().max_pixels)
        assert row["decodes"] or row["error"], path.name
        assert not (row["decodes"] and row["error"]), path.name


def test_two_batch_predictions_at_once_do_not_share_a_temporary_file(fuzzed, tmp_path, monkeypatch):
    """The second run writes and replaces its results while the first is between its write and its replace."""
    monkeypatch.setattr(predict, "open_model", lambda model: (constant_model(), "a constant model"))
    monkeypatch.setattr(predict, "create_table_artifact", lambda **kwargs: None)  # no Prefect server needed
    out, replace, runs = tmp_path / "predictions.json", predict.os.replace, []

    def replace_after_the_other_run(src, dst):
        if runs == ["first"]:  # the first run, about to publish: the second one runs whole now
            runs.append("second")
            runs.append(predict.batch_predict.fn([str(fuzzed)], output=str(out)))
        replace(src, dst)

    monkeypatch.setattr(predict.os, "replace", replace_after_the_other_run)
    runs.append("first")
    runs.append(predict.batch_predict.fn([str(fuzzed)], output=str(out)))
    assert runs[2] == runs[3] == {"images": len(cases()) + 1, "failed": runs[2]["failed"]}
    assert len(json.loads(out.read_text())) == len(cases()) + 1
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.json"]
