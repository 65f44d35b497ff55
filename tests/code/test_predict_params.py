"""flows.predict takes its limits from the project's params.yaml when it runs in the repository."""

from __future__ import annotations

import yaml

from flows.predict import project_limits
from tasks.params.validate import ValidateParams


def test_the_limits_come_from_the_projects_params(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert project_limits() == ValidateParams()  # outside a repository: the default
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"validate": {"max_pixels": 1234}}))
    assert project_limits().max_pixels == 1234
