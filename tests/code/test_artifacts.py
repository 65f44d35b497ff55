"""The plots artifact embeds small PNGs as data: URIs and shows paths as text, never file:// links."""

from __future__ import annotations

import base64
import io
from dataclasses import replace

import numpy as np
from PIL import Image

from flows.artifacts import MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, PLOTS, plots_markdown, png_data_uri
from tasks.reports.validation import DataProfile, Drift, DriftRow, NearDuplicate, NearDuplicates, ValidationReport


def _decode(uri: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return base64.b64decode(uri[len(prefix) :])


def test_a_large_noisy_figure_is_downscaled_below_the_size_limit(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (1500, 2400, 3), dtype=np.uint8)  # incompressible
    Image.fromarray(noise).save(tmp_path / "big.png")
    assert (tmp_path / "big.png").stat().st_size > 5 * MAX_IMAGE_BYTES
    png = _decode(png_data_uri(tmp_path / "big.png"))
    assert len(png) <= MAX_IMAGE_BYTES
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert max(image.size) <= MAX_IMAGE_SIDE
        assert abs(image.size[0] / image.size[1] - 2400 / 1500) < 0.01  # the aspect ratio is kept


def test_plots_markdown_embeds_what_exists_and_says_what_does_not(tmp_path):
    title, rel = PLOTS[1]
    (tmp_path / rel).parent.mkdir(parents=True)
    Image.new("RGB", (400, 400), "white").save(tmp_path / rel)
    markdown = plots_markdown(tmp_path)
    assert markdown.count("](data:image/png;base64,") == 1
    assert f"![{title}](data:" in markdown
    assert markdown.count("_not written yet_") == len(PLOTS) - 1
    assert "file://" not in markdown
    assert all(f"`{r}`" in markdown for _, r in PLOTS)


def _empty_report() -> ValidationReport:
    return ValidationReport(
        success=False,
        class_names=["Female", "Male"],
        images=0,
        kept=0,
        skipped_junk_files=0,
        dropped=[],
        counts={},
        expectations=[],
        failed=[],
        data_docs="data_docs/index.html",
        profile=DataProfile(images=0, class_shares={}, features={}),
        near_duplicates=NearDuplicates(pairs=0, first=[]),
    )


def _row(feature: str, psi: float) -> DriftRow:
    return DriftRow(feature=feature, psi=psi, reference=[], current=[], bins=[])


def test_the_validation_summary_shows_the_drift_table():
    from flows.artifacts import _validation_markdown

    report = replace(
        _empty_report(), success=True, kept=10, counts={"Train/Male": 5}
    )  # what the summary shows; the rest of the report is left empty
    record = Drift(
        scope="against the data of the production model (models/production/validation.json, 10 images)",
        max_psi=0.25,
        passed=False,
        rows=[_row("class shares", 0.01), _row("brightness", 0.4)],
    )
    markdown = _validation_markdown(report, record)
    assert "## Drift against the data of the production model" in markdown
    assert "| class shares | 0.010 | ok |" in markdown
    assert "| brightness | 0.400 | SHIFTED |" in markdown
    assert "## Drift" not in _validation_markdown(report, None)


def test_the_validation_summary_counts_the_near_duplicates_by_kind():
    from flows.artifacts import _validation_markdown

    pairs = [
        NearDuplicate(a="Train/Male/1.jpg", b="Test/Male/2.jpg", distance=3, correlation=0.9, orientation=o, check=c)
        for c, o in (("colour", "mirrored"), ("aligned detail", "as is"), ("colour", "mirrored"))
    ]
    report = replace(_empty_report(), near_duplicates=NearDuplicates(pairs=3, first=pairs))
    expected = "by check and orientation: aligned detail, as is 1; colour, mirrored 2)"
    assert f"Near-duplicate pairs across splits: 3 (the 3 listed, {expected}" in (_validation_markdown(report, None))
    assert "across splits: 0\n" in _validation_markdown(_empty_report(), None)
