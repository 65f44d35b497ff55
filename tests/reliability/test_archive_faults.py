"""Bad archives are refused before anything is extracted or kept (download stage, local zip source)."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from tasks.archive import pack_folder
from tasks.download import copy_local, download
from tasks.errors import StageError
from tasks.params.data import DataParams
from tests.helpers.data import run_stage


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
    _refused(tmp_path, zipped, f"^{zipped}: entry 'images/.*top folder named Dataset/")  # the user's file


def _patched(zipped: Path, flag_bits: int = 0, method: int | None = None) -> Path:
    """Rewrite every header of a stored zip: add general-purpose flags, or declare another compression method."""
    data = bytearray(zipped.read_bytes())
    for signature, flags_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = data.find(signature)
        while at != -1:
            data[at + flags_at] |= flag_bits
            if method is not None:
                data[at + method_at : at + method_at + 2] = method.to_bytes(2, "little")
            at = data.find(signature, at + 4)
    zipped.write_bytes(bytes(data))
    return zipped


def test_an_encrypted_zip_is_refused_with_what_to_do(dataset_folder, tmp_path):
    zipped = tmp_path / "in.zip"
    pack_folder(dataset_folder, zipped)
    expected = "is encrypted \\(password-protected\\); unzip it with its password"
    _refused(tmp_path, _patched(zipped, flag_bits=0x1), expected)


def test_a_deflate64_zip_is_refused_naming_the_method(dataset_folder, tmp_path):
    zipped = tmp_path / "in.zip"
    pack_folder(dataset_folder, zipped)
    _refused(tmp_path, _patched(zipped, method=9), "compressed with Deflate64 .* re-zip it with standard Deflate")


def test_a_zip_made_with_windows_separators_is_read(dataset_folder, tmp_path):
    zipped = tmp_path / "in.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for f in sorted((dataset_folder / "Dataset").rglob("*.jpg")):
            zf.write(f, "Dataset\\" + "\\".join(f.relative_to(dataset_folder / "Dataset").parts))
    result = download(tmp_path / "data" / "raw", DataParams(source="local", path=str(zipped)))
    names = zipfile.ZipFile(result.archive).namelist()
    assert len(names) == result.source.images == 24
    assert all("\\" not in n for n in names)  # repacked
    assert result.source.counts["Train"] == {"Female": 7, "Male": 5}


def test_a_fifo_inside_a_dataset_folder_is_refused_not_read(dataset_folder, tmp_path):
    os.mkfifo(dataset_folder / "Dataset" / "Train" / "Male" / "pipe.jpg")
    _refused(tmp_path, dataset_folder, "pipe.jpg: not a regular file \\(a FIFO")


def test_a_backslash_in_a_local_file_name_is_named_as_the_users_file(dataset_folder, tmp_path):
    bad = dataset_folder / "Dataset" / "Train" / "Male" / "back\\slash.jpg"
    bad.write_bytes((dataset_folder / "Dataset" / "Train" / "Male" / "000001.jpg").read_bytes())
    with pytest.raises(StageError) as err:
        download(tmp_path / "data" / "raw", DataParams(source="local", path=str(dataset_folder)))
    assert str(err.value).startswith(f"{bad}: a backslash in a file or folder name reads as a folder in a zip; rename")
    assert ".tmp" not in str(err.value)  # not the temporary zip the folder was packed into
    assert "top folder" not in str(err.value)  # the user has one: no advice to repack with it


def test_a_file_name_that_cannot_be_printed_is_shown_escaped(dataset_folder, tmp_path):
    (dataset_folder / "Dataset" / "Train" / "odd\nname.jpg").write_bytes(b"x")
    with pytest.raises(StageError) as err:
        download(tmp_path / "data" / "raw", DataParams(source="local", path=str(dataset_folder)))
    assert "\n" not in str(err.value)
    assert repr(str(dataset_folder / "Dataset" / "Train" / "odd\nname.jpg")) in str(err.value)


def test_a_local_zip_over_the_size_limit_is_refused(dataset_folder, tmp_path):
    zipped = tmp_path / "in.zip"
    pack_folder(dataset_folder, zipped)
    with pytest.raises(StageError, match="MB is more than data.max_archive_mb=0"):
        copy_local(zipped, tmp_path, max_archive_mb=0)


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
