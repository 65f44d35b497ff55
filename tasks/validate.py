"""Stage ``validate``: a manifest of every image and a Great Expectations suite over it.

The manifest (one row per file: split, label, path, format, size, mode, bytes, content hash,
whether it decodes) is built on all cores straight from the raw zip. A real GX File Data Context
under ``data/validation/gx`` runs the suite and builds the Data Docs in ``data/validation/data_docs``.
A failing suite writes its report, then exits non-zero naming the failed expectations and the
first offending files, so no later stage runs. The data's profile (``tasks/drift.py``) goes into the
report, and is compared with the production model's data: a shift above ``validate.max_drift_psi`` fails too.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import multiprocessing
import os
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tasks import archive, docs_assets, drift, near_duplicates, paths, registry, reports
from tasks.contract import Output, Stage, StageResult
from tasks.errors import StageError, logger
from tasks.files import atomic_outputs
from tasks.params.validate import ValidateParams
from tasks.reports.source import Source
from tasks.reports.validation import (
    DataProfile,
    Drift,
    Dropped,
    Expectation,
    NearDuplicate,
    NearDuplicates,
    ValidationReport,
)

log = logger("validate")
MANIFEST_COLUMNS = [
    "split",
    "label",
    "path",
    "format",
    "width",
    "height",
    "mode",
    "brightness",
    "bytes",
    "sha256",
    "phash",
    "decodes",
    "error",
]
FIRST_OFFENDERS = 10  # offending files named per failed expectation
FIRST_FOUND = 5  # distinct offending values named per failed expectation (formats, modes, ...)
NEAR_DUPLICATES_LISTED = 100  # near-duplicate pairs listed in the report (all are counted)
_CHUNK = 256

_worker_zip: zipfile.ZipFile | None = None
_worker_max_pixels = 0
_worker_max_bytes = 0


def _init_worker(archive_path: str, max_pixels: int, max_file_mb: int) -> None:
    global _worker_zip, _worker_max_pixels, _worker_max_bytes
    from PIL import Image

    _worker_zip = zipfile.ZipFile(archive_path)
    _worker_max_bytes = max_file_mb * 2**20
    _worker_max_pixels = max_pixels
    Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow's own bomb guard, from params


def inspect_image(data: bytes, max_pixels: int) -> dict[str, Any]:
    """Describe one image file; decode it fully unless its header declares too many pixels."""
    from PIL import Image, ImageStat

    row: dict[str, Any] = {
        "format": None,
        "width": None,
        "height": None,
        "mode": None,
        "brightness": None,
        "phash": None,
        "colours": None,
        "decodes": False,
        "error": "",
    }
    try:
        with Image.open(io.BytesIO(data)) as img:
            row.update(format=img.format, width=img.width, height=img.height, mode=img.mode)
            if img.width * img.height > max_pixels:
                row["error"] = f"{img.width}x{img.height} exceeds validate.max_pixels={max_pixels}; not decoded"
                return row
            img.load()
            row["decodes"] = True
            row["brightness"] = round(float(ImageStat.Stat(img.convert("L")).mean[0]), 2)
            row["phash"], row["colours"] = near_duplicates.fingerprints(img)
    except Exception as exc:  # any decoder fault (Pillow raises many kinds): the file is dropped with its reason
        row["error"] = f"{type(exc).__name__}: {exc}"
    return row


def _inspect_chunk(chunk: list[archive.Entry]) -> list[dict[str, Any]]:
    rows = []
    for entry in chunk:
        size = _worker_zip.getinfo(entry.name).file_size
        try:
            if size > _worker_max_bytes:  # never read into memory
                data, bad = b"", f"{size:,} bytes is more than validate.max_file_mb={_worker_max_bytes >> 20}; not read"
            else:
                data, bad = _worker_zip.read(entry.name), ""
        except (zipfile.BadZipFile, OSError) as exc:  # a CRC error is a corrupt file, not a crash
            data, bad = b"", f"unreadable in the zip: {exc}"
        row = {
            "split": entry.split,
            "label": entry.label,
            "path": entry.relpath,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            **inspect_image(data, _worker_max_pixels),
        }
        if bad:
            row.update(decodes=False, error=bad)
        rows.append(row)
    return rows


def build_manifest(archive_path: Path, max_pixels: int, max_file_mb: int, workers: int = 0):
    """The manifest DataFrame of every image in the archive, built on ``workers`` processes.

    Returns:
        ``(manifest, junk_count)``.
    """
    import pandas as pd

    entries, junk = archive.read_entries(archive_path)
    chunks = [entries[i : i + _CHUNK] for i in range(0, len(entries), _CHUNK)]
    workers = workers or os.cpu_count() or 1
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        if workers == 1:
            _init_worker(str(archive_path), max_pixels, max_file_mb)
            results = map(_inspect_chunk, chunks)
        else:
            ctx = multiprocessing.get_context("spawn")  # TensorFlow and fork do not mix
            pool = stack.enter_context(
                ctx.Pool(workers, initializer=_init_worker, initargs=(str(archive_path), max_pixels, max_file_mb))
            )
            results = pool.imap(_inspect_chunk, chunks)
        for chunk_rows in results:
            rows.extend(chunk_rows)
            log.info("manifest: %d/%d files", len(rows), len(entries))
    return pd.DataFrame(rows, columns=[*MANIFEST_COLUMNS, "colours"]), junk


def group_table(manifest, class_names: list[str]):
    """Counts and class shares per split and class, with zero rows for missing ones."""
    import pandas as pd

    expected = [(s, c) for s in paths.SPLITS for c in class_names]
    seen = list(manifest.groupby(["split", "label"]).size().items())
    counts = dict.fromkeys(expected, 0) | {key: int(n) for key, n in seen}
    table = pd.DataFrame([(s, c, n) for (s, c), n in counts.items()], columns=["split", "label", "count"])
    totals = table.groupby("split")["count"].transform("sum")
    table["share"] = (table["count"] / totals.where(totals > 0)).fillna(0.0)
    table["group"] = table["split"] + "/" + table["label"]
    return table


def _expectations(p: ValidateParams, files_count: int, near: list[NearDuplicate]) -> dict[str, list[Any]]:
    import great_expectations.expectations as gxe

    def meta(intent: str) -> dict[str, str]:
        return {"intent": intent}

    def allowing(files: int) -> float:
        """GX's ``mostly``: the share of rows that must pass when up to ``files`` rows may fail."""
        return max(0.0, 1.0 - (files + 0.5) / max(1, files_count))

    files = [
        gxe.ExpectColumnValuesToBeInSet(
            column="split", value_set=list(paths.SPLITS), meta=meta("layout: only Train/Validation/Test")
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="label", value_set=p.class_names, meta=meta("label set: no unknown class folder")
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="decodes", value_set=[True], meta=meta("every file is a decodable image")
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="format", value_set=p.allowed_formats, meta=meta("schema: image format")
        ),
        gxe.ExpectColumnValuesToBeInSet(column="mode", value_set=p.allowed_modes, meta=meta("schema: colour mode")),
        gxe.ExpectColumnValuesToBeBetween(
            column="width", min_value=p.min_width, max_value=p.max_width, meta=meta("size bounds")
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="height", min_value=p.min_height, max_value=p.max_height, meta=meta("size bounds")
        ),
        gxe.ExpectColumnValuesToBeUnique(column="path", meta=meta("no duplicate paths")),
        gxe.ExpectColumnValuesToBeInSet(
            column="splits_with_same_content", value_set=[1], meta=meta("data leak: the same image in two splits")
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="labels_with_same_content",
            value_set=[1],
            meta=meta("label conflict: the same image under two classes"),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="copies_in_split",
            value_set=[1],
            mostly=allowing(p.max_duplicates),
            meta=meta(f"exact duplicates within a split (at most validate.max_duplicates={p.max_duplicates} files)"),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="near_duplicates_in_other_splits",
            value_set=[0],
            mostly=allowing(p.max_near_duplicates),
            meta=meta(
                "data leak: a near-duplicate (re-encoded, resized, flipped, recoloured, cropped, shifted or rotated "
                f"copy) in another split (at most validate.max_near_duplicates={p.max_near_duplicates} files)"
            ),
            notes=f"{len(near)} near-duplicate pairs across splits"  # shown on the suite's Data Docs page
            + (f"; by the check that matched and orientation: {near_duplicates.kinds(near)}" if near else ""),
        ),
    ]
    groups = [
        gxe.ExpectColumnValuesToBeBetween(
            column="count", min_value=p.min_per_class, meta=meta("enough images per split and class")
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="share", min_value=p.min_class_share, max_value=1.0, meta=meta("class balance per split")
        ),
    ]
    shift = [
        gxe.ExpectColumnValuesToBeBetween(
            column="psi",
            min_value=0.0,
            max_value=p.max_drift_psi,
            meta=meta("drift: population stability index against the production model's training data"),
        )
    ]
    return {"files": files, "groups": groups, "drift": shift}


INDEX_COLUMN = {"files": "path", "groups": "group", "drift": "feature"}  # how each table names an offender


def _context(gx_dir: Path, docs_dir: Path) -> Any:
    """A GX File Data Context at ``gx_dir`` whose one Data Docs site is built in ``docs_dir``."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no network calls from GX
    import great_expectations as gx

    if gx_dir.name != "gx":
        raise ValueError(f"{gx_dir}: GX keeps a file context in a folder named gx")
    context = gx.get_context(mode="file", project_root_dir=str(gx_dir.parent))
    context.variables.progress_bars = {"globally": False}
    site = {
        "class_name": "SiteBuilder",
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": os.path.relpath(docs_dir, context.root_directory),
        },
    }
    for name in list(context.get_config().data_docs_sites or {}):
        context.delete_data_docs_site(name)
    context.add_data_docs_site("local_site", site)
    return context


def _checkpoint(context: Any, source: Any, table: str, expectations: list[Any]) -> Any:
    """The checkpoint that runs ``expectations`` on the dataframe ``table`` and updates the Data Docs."""
    import great_expectations as gx

    batch = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("all")
    suite = context.suites.add(gx.ExpectationSuite(name=f"dataset_{table}"))
    for expectation in expectations:
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=table, data=batch, suite=suite))
    return context.checkpoints.add(
        gx.Checkpoint(
            name=f"check_{table}",
            validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [INDEX_COLUMN[table]]},
        )
    )


def _expectation(table: str, r: Any) -> Expectation:
    """One GX expectation result, as the report keeps it."""
    offenders = [row[INDEX_COLUMN[table]] for row in r.result.get("unexpected_index_list") or []]
    cfg = r.expectation_config
    return Expectation(
        table=table,
        type=cfg.type,
        column=cfg.kwargs.get("column"),
        intent=(cfg.meta or {}).get("intent", ""),
        success=bool(r.success),
        unexpected_count=int(r.result.get("unexpected_count") or 0),
        found=sorted({str(v) for v in r.result.get("partial_unexpected_list") or []})[:FIRST_FOUND],
        offenders=sorted(dict.fromkeys(offenders))[:FIRST_OFFENDERS],
    )


def run_suite(
    gx_dir: Path, docs_dir: Path, frames: dict[str, Any], params: ValidateParams, near: list[NearDuplicate]
) -> list[Expectation]:
    """Run the GX suites on ``frames`` in a File Data Context at ``gx_dir``; build Data Docs in ``docs_dir``.

    Returns:
        One result per expectation: table, type, column, intent, success, unexpected_count, offenders.
    """
    context = _context(gx_dir, docs_dir)
    source = context.data_sources.add_pandas("manifest")
    tables = {t: e for t, e in _expectations(params, len(frames["files"]), near).items() if t in frames}
    checkpoints = {table: _checkpoint(context, source, table, e) for table, e in tables.items()}
    results = []
    for table, checkpoint in checkpoints.items():
        outcome = checkpoint.run(batch_parameters={"dataframe": frames[table]})
        results += [_expectation(table, r) for run in outcome.run_results.values() for r in run.results]
    docs_assets.localize(docs_dir)  # GX's pages load their scripts from CDNs: local copies, for offline use
    return results


@dataclass(frozen=True)
class ValidationResult(StageResult):
    """The report of a validation that passed (a failing one raises :class:`StageError`)."""

    report: ValidationReport


def _first(failed: Expectation, report: ValidationReport) -> str:
    """The first offenders of a failed expectation; for near-duplicates, the pairs with how each was matched."""
    pairs = report.near_duplicates.first[:FIRST_OFFENDERS]
    if failed.column == "near_duplicates_in_other_splits" and pairs:
        return "first pairs: " + "; ".join(map(near_duplicates.describe, pairs))
    return f"first: {', '.join(map(str, failed.offenders)) or '-'}"


def _failure_message(report: ValidationReport, report_file: Path, data_docs: Path) -> str:
    lines = [f"data validation failed ({report_file}; Data Docs: {data_docs}/index.html):"]
    for f in report.failed:
        found = f" (found: {', '.join(f.found)})" if f.found else ""
        lines.append(f"  - {f.type}({f.column}) [{f.intent}]: {f.unexpected_count} bad{found}; {_first(f, report)}")
    lines.append("Fix or remove these files (or relax the bounds in params.yaml 'validate') and rerun.")
    return "\n".join(lines)


def reference_profile(reference: Path) -> tuple[DataProfile | None, str]:
    """The production model's data profile, or None and why there is none."""
    if not reference.is_file():
        return None, f"no reference: {reference} is absent (no model in production yet), so drift is not checked"
    try:
        remedy = "drift is not checked until a model of this version is promoted"
        profile = reports.read(reference, ValidationReport, "validate", remedy).profile
    except reports.VersionError as exc:  # promoted by an older version: no comparable profile
        return None, f"no reference: {exc}"
    return profile, f"against the data of the production model ({reference}, {profile.images} images)"


def _drift_message(record: Drift) -> str:
    shifted = [f"{r.feature} PSI {r.psi:.3f}" for r in record.rows if r.psi > record.max_psi]
    return (
        f"data drift {record.scope}: {', '.join(shifted)} above validate.max_drift_psi="
        f"{record.max_psi}. If the new data is meant to differ, raise validate.max_drift_psi and rerun."
    )


def manifest_tables(raw_dir: Path, params: ValidateParams) -> tuple[Any, Any, int]:
    """The manifest of every file (``dropped`` marked), the kept files with their cross-checks, and junk skipped.

    Undecodable files are dropped (and reported) only when they are at most ``validate.max_dropped``;
    otherwise none is, and the suite fails on them.
    """
    manifest, junk = build_manifest(
        raw_dir / paths.RAW_ARCHIVE_NAME, params.max_pixels, params.max_file_mb, params.workers
    )
    bad = ~manifest["decodes"]
    dropped = manifest[bad] if bad.sum() <= params.max_dropped else manifest.iloc[0:0]
    manifest["dropped"] = manifest.index.isin(dropped.index)
    kept = manifest[~manifest["dropped"]].copy()
    kept["splits_with_same_content"] = kept.groupby("sha256")["split"].transform("nunique")
    kept["labels_with_same_content"] = kept.groupby("sha256")["label"].transform("nunique")
    kept["copies_in_split"] = kept.groupby(["split", "sha256"])["sha256"].transform("size")
    return manifest, kept, junk


def mark_near_duplicates(kept: Any, archive_path: Path) -> list[NearDuplicate]:
    """Near-duplicate pairs across splits; each kept file gets how many pairs it is in."""
    import pandas as pd

    decoded = kept[kept["decodes"].astype(bool)]
    near = near_duplicates.find(decoded, archive_path)
    involved = pd.Series([path for p in near for path in (p.a, p.b)], dtype=object).value_counts()
    kept["near_duplicates_in_other_splits"] = kept["path"].map(involved).fillna(0).astype(int)
    kept.drop(columns="colours", inplace=True)  # 512 bytes a file, for this search only
    return near


def validate(
    raw_dir: Path,
    report_file: Path,
    manifest_file: Path,
    gx_dir: Path,
    data_docs: Path,
    drift_file: Path,
    reference: Path,
    params: ValidateParams,
) -> ValidationResult:
    """Validate the raw archive; write the manifest, the JSON report, the GX context and its Data Docs.

    The report and the manifest are byte-identical for the same archive and params (later stages
    read them); the report carries the data's profile, the reference of later drift checks. The
    drift check against ``reference`` (the production model's validation report, which DVC does not
    track: it is promote's output) goes to ``drift_file`` and the Data Docs; those and the GX
    context hold run times or depend on what is in production, and are read by people only.

    Raises:
        StageError: when the suite or the drift check fails (after writing the report), naming the
            offending files or the shifted features with their PSI.
    """
    import pandas as pd

    reports.read(raw_dir / paths.SOURCE_NAME, Source, "download")  # the raw stage finished
    manifest, kept, junk = manifest_tables(raw_dir, params)
    groups = group_table(kept, params.class_names)
    near = mark_near_duplicates(kept, raw_dir / paths.RAW_ARCHIVE_NAME)
    decoded = kept[kept["decodes"].astype(bool)]
    ref, scope = reference_profile(reference)
    log.info("drift: %s", scope)
    rows = drift.compare(decoded, params.class_names, ref) if ref else []
    frames = {"files": kept, "groups": groups} | ({"drift": pd.DataFrame(map(asdict, rows))} if rows else {})

    with atomic_outputs([report_file, manifest_file, gx_dir, data_docs, drift_file]) as tmp:
        manifest.drop(columns="colours").to_csv(tmp / manifest_file.name, index=False, lineterminator="\n")
        results = run_suite(tmp / gx_dir.name, tmp / data_docs.name, frames, params, near)
        drift_record = Drift(
            scope=scope,
            max_psi=params.max_drift_psi,
            passed=all(r.success for r in results if r.table == "drift"),
            rows=rows,
        )
        reports.write(tmp / drift_file.name, drift_record)
        results = [r for r in results if r.table != "drift"]
        failed = [r for r in results if not r.success]
        report = ValidationReport(
            success=not failed,
            class_names=params.class_names,  # preprocess takes the label map from here
            images=int(len(manifest)),
            kept=int(len(kept)),
            skipped_junk_files=junk,
            dropped=[Dropped(path=r.path, error=r.error) for r in manifest[manifest["dropped"]].itertuples()],
            counts={f"{g.split}/{g.label}": int(g.count) for g in groups.itertuples()},
            expectations=results,
            failed=failed,
            data_docs=f"{data_docs.name}/index.html",  # relative to the report: the same bytes wherever it runs
            profile=drift.profile(decoded, params.class_names),
            near_duplicates=NearDuplicates(pairs=len(near), first=near[:NEAR_DUPLICATES_LISTED]),
        )
        reports.write(tmp / report_file.name, report)
    _print_summary(report, groups, drift_record)
    if failed:
        raise StageError(_failure_message(report, report_file, data_docs))
    if not drift_record.passed:
        raise StageError(f"{_drift_message(drift_record)} ({drift_file}; Data Docs: {data_docs}/index.html)")
    return ValidationResult(report=report)


def _print_summary(report: ValidationReport, groups: Any, drift_record: Drift) -> None:
    print(f"{'split/class':<22}{'images':>8}{'share':>8}")
    for g in groups.itertuples():
        print(f"{g.group:<22}{g.count:>8}{g.share:>8.2f}")
    passed = sum(r.success for r in report.expectations)
    print(f"expectations passed: {passed}/{len(report.expectations)}; dropped files: {len(report.dropped)}")
    psi = ", ".join(f"{r.feature} {r.psi:.3f}" for r in drift_record.rows)
    print(f"drift {drift_record.scope}" + (f": PSI {psi} (max {drift_record.max_psi})" if psi else ""))


STAGE = Stage(
    "validate",
    validate,
    deps={"raw_dir": paths.RAW_DIR},
    outs={
        "report_file": paths.VALIDATION_REPORT,
        "manifest_file": paths.MANIFEST,
        "gx_dir": Output(paths.GX_DIR, reproducible=False),  # run times inside
        "data_docs": Output(paths.DATA_DOCS, reproducible=False),
        "drift_file": Output(paths.DRIFT, reproducible=False),  # depends on which model is in production
    },
    params={"params": "validate"},
    work={"reference": paths.PRODUCTION_VALIDATION},  # the registry's, not a dep (tasks.registry)
    prepare=registry.prepare,
)
