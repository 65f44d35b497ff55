"""params.yaml loading: typed sections, and bad values rejected with the key named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from tasks.errors import ParamsError
from tasks.params import config

REPO = Path(__file__).resolve().parents[2]


def _keys(tree: dict, prefix: str = "") -> set[str]:
    keys = set()
    for k, v in tree.items():
        keys |= _keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}"}
    return keys


def test_committed_params_files_list_every_key():
    """params.yaml and configs/*.yaml are complete: DVC tracks each key, so none may come from a code default."""
    every = _keys(dataclasses.asdict(config.Params()))
    for path in [REPO / "params.yaml", *sorted((REPO / "configs").glob("*.yaml"))]:
        assert _keys(yaml.safe_load(path.read_text())) == every, path
        config.load(path)


def test_code_defaults_are_params_yaml():
    """One source of defaults: the dataclass defaults and the committed params.yaml never disagree."""
    assert config.load(REPO / "params.yaml") == config.Params()
    assert config.Params().data.source == "synthetic"  # the offline embedded configuration


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"data": {"source": "ftp"}}, "data.source: unknown value 'ftp'"),
        ({"data": {"synthetic": {"train": -5}}}, "data.synthetic.train: -5 is out of range"),
        ({"model": {"image_size": "big"}}, "model.image_size: expected int"),
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
        config.parse(raw, "params.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("params.yaml: ")


def test_int_is_accepted_where_a_float_is_expected():
    p = config.parse({"validate": {"min_class_share": 0}})
    assert p.validate.min_class_share == 0.0
    assert isinstance(p.validate.min_class_share, float)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        config.load(tmp_path / "params.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ParamsError, match="bad.yaml: not valid YAML"):
        config.load(bad)


def test_load_reads_a_file(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({"model": {"image_size": 64}}))
    assert config.load(f).model.image_size == 64


def test_the_positive_class_must_be_a_class_name():
    with pytest.raises(ParamsError, match="evaluate.positive_class: 'Man' is not one of validate.class_names"):
        config.parse({"evaluate": {"positive_class": "Man"}})
