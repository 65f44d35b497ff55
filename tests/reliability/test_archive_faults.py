"""Bad archives are refused before anything is extracted or kept (download stage, local zip source)."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from tasks.archive import pack_folder
from tasks.download import download
from tasks.files import StageError
from tasks.params import DataParams
from tests.conftest import run_stage


def _zip_with(tmp_path: Path, dataset_folder: Path, name: str, data: bytes = b"x", mode: int | None = None) -> Path:
    zipped = tmp_path / "in.zip"
    pack_folder(dataset_folder, zipped)
    with zipfile.ZipFile(zipped, "a") as zf:
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        zf.writestr(info, data)
    return zipped


def _refused(tmp_path: Path, source: Path, match: str) -> None:
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(StageError, match=match):
        download(tmp_path / "data" / "raw", DataParams(source="local", path=str(source)))
    # nothing kept: no raw output, no temporary folder, nothing outside the target
    assert not (tmp_path / "data" / "raw").exists()
    assert list((tmp_path / "data").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({*before, "data"})
    assert not Path("/tmp/evil.txt").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "Dataset/../../evil.txt", "/tmp/evil.txt"])
def test_zip_slip_entries_are_refused(name, dataset_folder, tmp_path):
    _refused(tmp_path, _zip_with(tmp_path, dataset_folder, name), "zip-slip")


def test_symlink_entries_are_refused(dataset_folder, tmp_path):
    zipped = _zip_with(tmp_path, dataset_folder, "Dataset/Train/Male/link.jpg", b"/etc/passwd", stat.S_IFLNK | 0o777)
    _refused(tmp_path, zipped, "symbolic link")


def test_a_truncated_zip_is_refused(dataset_folder, tmp_path):
    zipped = tmp_path / "in.zip"
    pack_folder(dataset_folder, zipped)
    zipped.write_bytes(zipped.read_bytes()[: zipped.stat().st_size // 2])
    _refused(tmp_path, zipped, "not a readable zip")


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    fake = tmp_path / "in.zip"
    fake.write_text("<html>login required</html>")
    _refused(tmp_path, fake, "not a readable zip")


def test_a_zip_without_the_dataset_top_folder_is_refused(dataset_folder, tmp_path):
    zipped = tmp_path / "in.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for f in sorted((dataset_folder / "Dataset").rglob("*.jpg")):
            zf.write(f, "images/" + f.relative_to(dataset_folder / "Dataset").as_posix())
    _refused(tmp_path, zipped, "top folder named Dataset/")


def test_a_symlink_in_a_local_folder_is_refused(dataset_folder, tmp_path):
    (dataset_folder / "Dataset" / "Train" / "Male" / "link.jpg").symlink_to("/etc/passwd")
    _refused(tmp_path, dataset_folder, "symbolic link")


def test_a_corrupt_member_is_reported_by_validate_not_a_crash(dataset_folder, make_raw, tiny_validate_params, tmp_path):
    """A flipped byte inside a stored image fails its CRC: that file is named as undecodable."""
    from tasks import paths

    raw = make_raw(dataset_folder)
    archive = raw / paths.RAW_ARCHIVE_NAME
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("Dataset/Train/Male/000001.jpg")
    data = bytearray(archive.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + 200] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(StageError, match="Train/Male/000001.jpg"):
        run_stage("validate", tmp_path, validate=tiny_validate_params)
