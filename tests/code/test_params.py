"""params.yaml loading: typed sections, and bad values rejected with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tasks import params
from tasks.params import ParamsError

REPO = Path(__file__).resolve().parents[2]


def test_committed_params_files_load():
    for path in [REPO / "params.yaml", *sorted((REPO / "configs").glob("*.yaml"))]:
        loaded = params.load(path)
        assert loaded.data.image_size > 0, path


def test_defaults_are_the_offline_embedded_configuration():
    p = params.load(REPO / "params.yaml")
    assert p.data.source == "synthetic"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"data": {"source": "ftp"}}, "data.source: unknown value 'ftp'"),
        ({"data": {"synthetic": {"train": -5}}}, "data.synthetic.train: -5 is out of range"),
        ({"data": {"image_size": "big"}}, "data.image_size: expected int"),
        ({"data": {"source": "local"}}, "data.path: required when data.source is 'local'"),
        (
            {"data": {"source": "local", "path": "/no/such/dataset.zip"}},
            "data.path: '/no/such/dataset.zip' does not exist",
        ),
        ({"data": {"kaggle_dataset": "no-owner"}}, "data.kaggle_dataset: 'no-owner' is not an 'owner/dataset' slug"),
        ({"data": {"colour": 1}}, "data.colour: unknown key"),
        ({"dat": {}}, "dat: unknown key"),
        ({"validate": {"min_width": 500, "max_width": 100}}, "validate.min_width: greater than validate.max_width"),
        ({"validate": {"class_names": ["Male"]}}, "validate.class_names: need two or more"),
        ({"validate": {"allowed_modes": "RGB"}}, "validate.allowed_modes: expected a list"),
        ({"validate": {"max_dropped": True}}, "validate.max_dropped: expected int"),
        ({"preprocess": []}, "preprocess: expected a mapping"),
    ],
)
def test_bad_values_name_the_key(raw, message):
    with pytest.raises(ParamsError) as err:
        params.parse(raw, "params.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("params.yaml: ")


def test_int_is_accepted_where_a_float_is_expected():
    p = params.parse({"validate": {"min_class_share": 0}})
    assert p.validate.min_class_share == 0.0 and isinstance(p.validate.min_class_share, float)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        params.load(tmp_path / "params.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ParamsError, match="bad.yaml: not valid YAML"):
        params.load(bad)


def test_load_reads_a_file(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({"data": {"image_size": 64}}))
    assert params.load(f).data.image_size == 64
