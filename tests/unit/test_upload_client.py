"""The upload client's pure parts: the resume key, gaps in a part upload, the file scan, the
server URL it agrees to send a token to."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pydicom
import pytest

from storage.records import Language
from teleradiology.core.dicom import instance_identity
from teleradiology.node.upload_client import (
    ExitCode,
    LocalInstance,
    LocalStudy,
    UploadError,
    _gaps,
    check_server_url,
    compress,
    scan,
    upload_paths,
)
from tests.factory import make_study, write_files


def test_the_resume_key_depends_on_the_files_not_their_order_or_place() -> None:
    a = LocalInstance(
        path=Path("/a/1.dcm"), sop_instance_uid="1.2.3", size_bytes=10, sha256="a" * 64
    )
    b = LocalInstance(
        path=Path("/a/2.dcm"), sop_instance_uid="1.2.4", size_bytes=20, sha256="b" * 64
    )
    moved = LocalInstance(
        path=Path("/b/x.dcm"), sop_instance_uid="1.2.3", size_bytes=10, sha256="a" * 64
    )
    key = LocalStudy(study_instance_uid="1.2", instances=(a, b)).key
    assert key == LocalStudy(study_instance_uid="1.2", instances=(b, moved)).key
    assert key.startswith("manifest-sha256:")
    changed = LocalInstance(path=a.path, sop_instance_uid="1.2.3", size_bytes=10, sha256="c" * 64)
    assert key != LocalStudy(study_instance_uid="1.2", instances=(changed, b)).key


def test_gaps_are_the_ranges_the_server_does_not_hold() -> None:
    assert _gaps([], 100) == [(0, 100)]
    assert _gaps([[0, 40], [60, 100]], 100) == [(40, 60)]
    assert _gaps([[10, 20]], 30) == [(0, 10), (20, 30)]
    assert _gaps([[0, 100]], 100) == []


def test_compression_is_kept_only_when_it_pays() -> None:
    assert compress(bytes(10_000)) is not None
    assert compress(os.urandom(10_000)) is None


def test_scan_groups_by_study_and_skips_what_is_not_an_instance(tmp_path: Path) -> None:
    first = make_study(count=2)
    second = make_study(count=1, patient_id="P2")
    write_files(tmp_path / "a", first)
    write_files(tmp_path / "b", second)
    (tmp_path / "a" / "notes.txt").write_text("hello", "utf-8")
    studies, skipped = scan([tmp_path])
    assert sorted(len(s.instances) for s in studies) == [1, 2]
    assert [p.name for p in skipped] == ["notes.txt"]
    uid = pydicom.dcmread(io.BytesIO(second[0])).StudyInstanceUID
    assert instance_identity(second[0]) is not None
    assert {s.study_instance_uid for s in studies} >= {uid}
    # A file named on the command line must be DICOM.
    with pytest.raises(UploadError, match="is not a DICOM instance"):
        scan([tmp_path / "a" / "notes.txt"])
    with pytest.raises(UploadError, match="no such file") as refused:
        scan([tmp_path / "missing", tmp_path / "gone"])
    # said in the terminal's language: each problem once, as the language separates them
    missing, gone = tmp_path / "missing", tmp_path / "gone"
    assert refused.value.phrase.say(Language.ZH_CN) == (
        f"{missing}：没有这个文件或文件夹；{gone}：没有这个文件或文件夹"
    )
    assert (
        str(refused.value) == f"{missing}: no such file or folder; {gone}: no such file or folder"
    )


@pytest.mark.parametrize(
    "url",
    ["https://county.example", "http://localhost:8080", "http://127.0.0.1:8080", "http://[::1]:80"],
)
def test_https_or_this_machine_is_accepted(url: str) -> None:
    check_server_url(url)


@pytest.mark.parametrize("url", ["http://county.example", "http://10.1.2.3:8080"])
def test_plain_http_off_this_machine_is_refused_unless_allowed(url: str) -> None:
    with pytest.raises(ValueError, match="in the clear"):
        check_server_url(url)
    check_server_url(url, allow_http=True)


@pytest.mark.parametrize("url", ["ftp://county.example", "county.example", "https://"])
def test_what_is_not_an_http_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="must be an http"):
        check_server_url(url, allow_http=True)


async def test_the_upload_refuses_before_reading_anything(tmp_path: Path) -> None:
    err = io.StringIO()
    code = await upload_paths(
        [tmp_path / "absent"], server="http://county.example", token="t", err=err
    )
    assert code == ExitCode.BAD_INPUT
    assert "in the clear" in err.getvalue()


def test_the_forwarder_refuses_plain_http_off_this_machine(tmp_path: Path) -> None:
    from teleradiology.node.forwarder import ForwarderSettings

    def settings(**changes: object) -> ForwarderSettings:
        return ForwarderSettings(
            spool_dir=tmp_path, server_url="http://county.example", token="t",
            accept_ae=("CART",), **changes,  # type: ignore[arg-type]
        )  # fmt: skip

    with pytest.raises(ValueError, match="in the clear"):
        settings()
    assert settings(allow_http=True).allow_http
