"""make use-kaggle / make use-demo switch params.yaml, and never overwrite edits of the user's own."""

from __future__ import annotations

import pytest

from ops.configs import KAGGLE, switch
from tasks.errors import StageError
from tasks.paths import PARAMS_FILE
from tests.helpers.repo import copy_repo


def test_switching_keeps_edits_of_your_own(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    params, default = repo / PARAMS_FILE, (repo / PARAMS_FILE).read_text()
    assert switch("kaggle", repo) == f"{PARAMS_FILE}: the real configuration ({KAGGLE})"
    assert params.read_text() == (repo / KAGGLE).read_text()
    assert switch("demo", repo) == f"{PARAMS_FILE}: the embedded default"
    assert params.read_text() == default
    params.write_text(default.replace("epochs: 3", "epochs: 5"))  # an edit of the user's
    for to in ("demo", "kaggle"):
        with pytest.raises(StageError, match=f"has edits of your own; keep them first .* make use-{to} again"):
            switch(to, repo)
        assert "epochs: 5" in params.read_text()  # untouched
