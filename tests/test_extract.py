"""benchmark.data.extract: safe, all-or-nothing extraction of tar and zip archives."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
from fixtures.archives import write_tar, write_zip

from benchmark.data.errors import DataError
from benchmark.data.extract import archive_stem, extract, is_archive

GOOD = {"pkg/a.txt": b"alpha", "pkg/sub/b.bin": bytes(range(256)) * 10}


def tar_with(path: Path, *extra: tarfile.TarInfo, mode: str = "w:gz") -> Path:
    """A tar holding the GOOD files, then the crafted `extra` members (regular ones get 4 bytes)."""
    with tarfile.open(path, mode) as tar:
        for name, data in GOOD.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"evil") if info.isfile() else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = 4 if kind == tarfile.REGTYPE else 0
    return info


def siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir())


@pytest.mark.parametrize("suffix", [".tgz", ".tar.gz", ".tar", ".zip"])
def test_extracts_each_format(tmp_path, suffix):
    archive = tmp_path / f"data{suffix}"
    if suffix == ".zip":
        write_zip(archive, GOOD)
    else:
        write_tar(archive, GOOD, mode="w" if suffix == ".tar" else "w:gz")
    target = tmp_path / "out" / archive_stem(archive.name)
    assert extract(archive, target, dataset="toy") == target
    for name, data in GOOD.items():
        assert (target / name).read_bytes() == data
        assert stat.S_IMODE((target / name).stat().st_mode) == 0o644
    assert siblings(target) == ["data"]  # no temporary folder left behind


def test_replaces_previous_target(tmp_path):
    archive = tar_with(tmp_path / "data.tgz")
    target = tmp_path / "data"
    (target / "stale").mkdir(parents=True)
    extract(archive, target)
    assert not (target / "stale").exists() and (target / "pkg" / "a.txt").exists()
    assert siblings(target) == ["data", "data.tgz"]


@pytest.mark.parametrize(
    ("evil", "says"),
    [
        (member("/tmp/abs_evil.txt"), "absolute path"),
        (member("pkg/../../escape.txt"), "'..'"),
        (member("../escape.txt"), "'..'"),
        (member("pkg/link", tarfile.SYMTYPE, "../../../etc/passwd"), "symbolic link"),
        (member("pkg/inner_link", tarfile.SYMTYPE, "a.txt"), "symbolic link"),  # policy: all links
        (member("pkg/hard", tarfile.LNKTYPE, "/etc/passwd"), "hard link"),
        (member("pkg/dev", tarfile.CHRTYPE), "device file"),
        (member("pkg/fifo", tarfile.FIFOTYPE), "device file, FIFO"),
    ],
)
def test_rejects_unsafe_tar_members(tmp_path, evil, says):
    archive = tar_with(tmp_path / "evil.tgz", evil)
    target = tmp_path / "work" / "evil"
    target.mkdir(parents=True)
    (target / "keep.txt").write_bytes(b"previous good extraction")
    with pytest.raises(DataError) as caught:
        extract(archive, target, dataset="toy")
    message = str(caught.value)
    assert "evil.tgz" in message and "toy" in message and says in message
    assert (target / "keep.txt").read_bytes() == b"previous good extraction"
    assert siblings(target) == ["evil"]
    assert not (tmp_path / "escape.txt").exists() and not Path("/tmp/abs_evil.txt").exists()


def test_rejects_unsafe_zip_members(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.txt", b"fine")
        link = zipfile.ZipInfo("link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "../../outside")
    with pytest.raises(DataError, match="evil.zip.*symbolic link"):
        extract(archive, tmp_path / "evil")
    for name in ("../up.txt", "/abs.txt"):
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr(name, b"x")
        with pytest.raises(DataError, match="refusing to extract"):
            extract(archive, tmp_path / "evil")
    assert siblings(tmp_path / "evil") == ["evil.zip"]


@pytest.mark.parametrize("suffix", [".tgz", ".zip"])
def test_truncated_or_corrupt_archive(tmp_path, suffix):
    archive = tmp_path / f"broken{suffix}"
    payload = {"pkg/big.bin": bytes(range(256)) * 4000, "pkg/z.txt": b"last"}
    (write_zip if suffix == ".zip" else write_tar)(archive, payload)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    target = tmp_path / "broken"
    with pytest.raises(DataError) as caught:
        extract(archive, target, dataset="toy")
    assert f"broken{suffix}" in str(caught.value) and "corrupt or truncated" in str(caught.value)
    assert not target.exists() and siblings(target) == [f"broken{suffix}"]


def test_not_an_archive(tmp_path):
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"<html>404 page saved as an archive</html>")
    with pytest.raises(DataError, match="junk.tgz.*corrupt or truncated"):
        extract(junk, tmp_path / "junk")
    (tmp_path / "x.rar").write_bytes(b"rar")
    with pytest.raises(DataError, match="unsupported archive type"):
        extract(tmp_path / "x.rar", tmp_path / "x")
    with pytest.raises(DataError, match="does not exist"):
        extract(tmp_path / "missing.tgz", tmp_path / "missing")


def test_archive_names():
    assert archive_stem("CUB_200_2011.tgz") == "CUB_200_2011"
    assert archive_stem("nabirds.tar.gz") == "nabirds"
    assert archive_stem("ciFAIR-100.zip") == "ciFAIR-100"
    assert is_archive("indoorCVPR_09.tar") and not is_archive("cars_annos.mat")
