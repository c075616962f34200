"""benchmark.data.download against a real HTTP server on 127.0.0.1 that can misbehave."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from fixtures.http import Fault, free_port, serve

from benchmark.data.download import digests, fetch, locate, verify_md5
from benchmark.data.errors import DataError

PAYLOAD = os.urandom(300_000) + b"end"
MD5 = hashlib.md5(PAYLOAD).hexdigest()
OLD = b"a previously downloaded, good file"


@pytest.fixture
def server(tmp_path: Path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "data.tgz").write_bytes(PAYLOAD)
    with serve(www) as srv:
        yield srv


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "raw" / "data.tgz"


def part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def test_download_verifies_and_renames(server, dest):
    assert fetch(server.url("data.tgz"), dest, MD5, dataset="toy") == dest
    assert dest.read_bytes() == PAYLOAD
    assert not part(dest).exists()
    assert server.requests == [("data.tgz", None, 200)]


def test_verified_destination_is_kept_without_network(server, dest):
    dest.parent.mkdir(parents=True)
    dest.write_bytes(PAYLOAD)
    fetch(server.url("data.tgz"), dest, MD5)
    assert server.requests == []


def test_resumes_partial_download_with_range(server, dest):
    dest.parent.mkdir(parents=True)
    part(dest).write_bytes(PAYLOAD[:120_000])
    fetch(server.url("data.tgz"), dest, MD5, dataset="toy")
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("data.tgz", "bytes=120000-", 206)]
    assert not part(dest).exists()


def test_restarts_when_server_ignores_range(server, dest):
    dest.parent.mkdir(parents=True)
    part(dest).write_bytes(b"x" * 5000)  # wrong bytes: must be discarded, not appended to
    server.faults["data.tgz"] = Fault(ignore_range=True)
    fetch(server.url("data.tgz"), dest, MD5)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("data.tgz", "bytes=5000-", 200)]


def test_restarts_when_partial_is_longer_than_file(server, dest):
    dest.parent.mkdir(parents=True)
    part(dest).write_bytes(PAYLOAD + b"junk")
    fetch(server.url("data.tgz"), dest, MD5)
    assert dest.read_bytes() == PAYLOAD
    assert [code for _, _, code in server.requests] == [416, 200]


def test_checksum_mismatch(server, dest):
    with pytest.raises(DataError) as caught:
        fetch(server.url("data.tgz"), dest, "0" * 32, dataset="toy")
    message = str(caught.value)
    assert "toy" in message and "data.tgz" in message
    assert f"expected md5 {'0' * 32}, got {MD5}" in message
    assert "mirror" in message and "URL" in message
    assert not dest.exists() and not part(dest).exists()


def test_checksum_mismatch_after_resume_deletes_partial(server, dest):
    dest.parent.mkdir(parents=True)
    part(dest).write_bytes(b"y" * 1000)  # server resumes after these wrong bytes: md5 must catch it
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch(server.url("data.tgz"), dest, MD5, dataset="toy")
    assert not dest.exists() and not part(dest).exists()
    fetch(server.url("data.tgz"), dest, MD5, dataset="toy")  # a clean second attempt succeeds
    assert dest.read_bytes() == PAYLOAD


@pytest.mark.parametrize("status", [404, 500])
def test_http_errors(server, dest, status):
    server.faults["data.tgz"] = Fault(status=status)
    with pytest.raises(DataError) as caught:
        fetch(server.url("data.tgz"), dest, MD5, dataset="toy")
    message = str(caught.value)
    assert f"HTTP {status}" in message and "toy" in message and "data.tgz" in message
    assert ("mirror" in message) and (("not at that address" in message) if status == 404 else ("later" in message))
    assert not dest.exists() and not part(dest).exists()


@pytest.mark.parametrize("fault", [Fault(status=404), Fault(status=500), Fault(truncate_at=1000)])
def test_failed_redownload_leaves_previous_destination_intact(server, dest, fault):
    dest.parent.mkdir(parents=True)
    dest.write_bytes(OLD)
    server.faults["data.tgz"] = fault
    with pytest.raises(DataError):
        fetch(server.url("data.tgz"), dest, MD5, dataset="toy", force=True)
    assert dest.read_bytes() == OLD


def test_unverified_destination_is_replaced_only_by_verified_download(server, dest):
    dest.parent.mkdir(parents=True)
    dest.write_bytes(OLD)  # fails the md5: a new download is needed
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch(server.url("data.tgz"), dest, "f" * 32)
    assert dest.read_bytes() == OLD
    fetch(server.url("data.tgz"), dest, MD5)
    assert dest.read_bytes() == PAYLOAD


def test_connection_refused(dest):
    url = f"http://127.0.0.1:{free_port()}/data.tgz"
    with pytest.raises(DataError) as caught:
        fetch(url, dest, MD5, dataset="toy")
    message = str(caught.value)
    assert "cannot connect" in message and "refused" in message.lower() and "data.tgz" in message
    assert not dest.exists() and not part(dest).exists()


def test_truncated_download_keeps_partial_and_resumes(server, dest):
    server.faults["data.tgz"] = Fault(truncate_at=100_000, times=1)
    with pytest.raises(DataError) as caught:
        fetch(server.url("data.tgz"), dest, MD5, dataset="toy")
    message = str(caught.value)
    assert "truncated download" in message and f"of {len(PAYLOAD)} bytes" in message and "toy" in message
    assert not dest.exists()
    assert part(dest).read_bytes() == PAYLOAD[:100_000]
    fetch(server.url("data.tgz"), dest, MD5, dataset="toy")  # the next run resumes
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[-1] == ("data.tgz", "bytes=100000-", 206)


def test_without_md5_a_complete_download_is_accepted(server, dest):
    fetch(server.url("data.tgz"), dest)
    assert dest.read_bytes() == PAYLOAD
    assert digests(dest) == {"md5": MD5, "sha256": hashlib.sha256(PAYLOAD).hexdigest(), "size": len(PAYLOAD)}


def test_verify_md5(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(PAYLOAD)
    verify_md5(path, MD5.upper())
    with pytest.raises(DataError, match=r"f\.bin.*expected md5 0{32}, got " + MD5):
        verify_md5(path, "0" * 32, dataset="toy")
    with pytest.raises(DataError, match="does not exist"):
        verify_md5(tmp_path / "missing.bin", MD5)


def test_locate_says_where_to_put_the_file(tmp_path):
    manual = tmp_path / "manual" / "nabirds"
    with pytest.raises(DataError) as caught:
        locate("nabirds", "nabirds.tar.gz", manual, MD5, how="from the dataset's site")
    message = str(caught.value)
    assert str((manual / "nabirds.tar.gz").resolve()) in message
    assert "nabirds.tar.gz" in message and MD5 in message and "from the dataset's site" in message
    manual.mkdir(parents=True)
    (manual / "nabirds.tar.gz").write_bytes(b"not it")
    with pytest.raises(DataError, match="checksum mismatch"):
        locate("nabirds", "nabirds.tar.gz", manual, MD5)
    (manual / "nabirds.tar.gz").write_bytes(PAYLOAD)
    assert locate("nabirds", "nabirds.tar.gz", manual, MD5) == manual / "nabirds.tar.gz"
