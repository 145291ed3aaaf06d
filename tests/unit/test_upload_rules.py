"""The rules of the resumable upload, without a database: manifests, byte ranges, resuming."""

from __future__ import annotations

import hashlib

import pytest

from storage.records import ManifestItem
from teleradiology.core import uploads
from teleradiology.core.dicom import Identity
from teleradiology.core.errors import BadRequest, Conflict, InvalidState, SendAgain, TooLarge

SHA = "a" * 64


def line(sop: str = "1.2.3", size: int = 10, sha: str = SHA) -> dict[str, object]:
    return {"sop_instance_uid": sop, "size": size, "sha256": sha}


@pytest.mark.parametrize(
    ("manifest", "error", "match"),
    [
        ([], BadRequest, "must list each instance"),
        ("1.2.3", BadRequest, "must list each instance"),
        (["x"], BadRequest, r"instances\[0\] must be an object"),
        ([line(size="10")], BadRequest, r"instances\[0\].size"),  # type: ignore[arg-type]
        ([line(size=True)], BadRequest, r"instances\[0\].size"),
        ([line(size=2000)], TooLarge, "at most 1000"),
        ([line(sop="1.2.x")], BadRequest, "not a DICOM UID"),
        ([line(sha="zz")], BadRequest, "64 lowercase hex"),
        ([line(), line(size=11)], BadRequest, "listed twice with different files"),
    ],
)
def test_a_manifest_says_what_is_wrong_with_it(
    manifest: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        uploads.manifest(manifest, 1000)


def test_a_manifest_lists_each_instance_once_and_its_key_is_stable() -> None:
    items = uploads.manifest([line(), line(), line("1.2.4", sha=SHA.upper())], 1000)
    assert [i.sop_instance_uid for i in items] == ["1.2.3", "1.2.4"]
    assert items[1].sha256 == SHA
    key = uploads.resume_key(None, "1.2", items)
    assert key == uploads.resume_key("", "1.2", list(reversed(items)))
    assert key.startswith("manifest-sha256:")
    assert uploads.resume_key("mine", "1.2", items) == "mine"
    with pytest.raises(BadRequest, match="at most 200"):
        uploads.resume_key("k" * 201, "1.2", items)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes 0-99/1000", (0, 100)),
        (" bytes 900-999/1000 ", (900, 1000)),
        ("bytes 0-99/999", "the file has 999 bytes, the manifest 1000"),
        ("bytes 100-99/1000", "outside the file"),
        ("bytes 0-1000/1000", "outside the file"),
        ("0-99/1000", "must look like"),
    ],
)
def test_a_content_range_names_bytes_of_the_manifest_file(
    header: str, expected: tuple[int, int] | str
) -> None:
    if isinstance(expected, tuple):
        assert uploads.byte_range(header, 1000) == expected
    else:
        with pytest.raises(BadRequest, match=expected):
            uploads.byte_range(header, 1000)


def test_a_part_larger_than_one_body_is_refused() -> None:
    size = uploads.MAX_BODY_BYTES * 2
    with pytest.raises(TooLarge, match="in parts of at most"):
        uploads.byte_range(f"bytes 0-{uploads.MAX_BODY_BYTES}/{size}", size)


@pytest.mark.parametrize(
    ("ranges", "covered"),
    [
        ([], False),
        ([(0, 10)], True),
        ([(0, 4), (4, 10)], True),
        ([(0, 6), (3, 10)], True),
        ([(0, 4), (5, 10)], False),
        ([(0, 4)], False),
        ([(2, 10)], False),
        ([(0, 12), (20, 30)], True),  # found by fuzzing: a range past the end once said False
    ],
)
def test_parts_cover_the_file_only_without_a_gap(
    ranges: list[tuple[int, int]], covered: bool
) -> None:
    assert uploads.covers(ranges, 10) is covered


def test_what_arrived_is_the_file_the_manifest_names() -> None:
    data = b"0123456789"
    item = ManifestItem(
        sop_instance_uid="1.2.3", size_bytes=10, sha256=hashlib.sha256(data).hexdigest()
    )
    uploads.check_file(data, item)
    with pytest.raises(SendAgain, match="received 9 bytes, the manifest says 10"):
        uploads.check_file(data[:9], item)
    with pytest.raises(BadRequest, match="SHA-256 of what arrived differs"):
        uploads.check_file(b"9123456789", item)
    uploads.check_identity(
        Identity(study_instance_uid="1.2", sop_instance_uid="1.2.3"), "1.2.3", "1.2"
    )
    with pytest.raises(BadRequest, match="not a DICOM instance"):
        uploads.check_identity(None, "1.2.3", "1.2")
    with pytest.raises(BadRequest, match=r"is instance 1\.2\.4"):
        uploads.check_identity(
            Identity(study_instance_uid="1.2", sop_instance_uid="1.2.4"), "1.2.3", "1.2"
        )
    with pytest.raises(BadRequest, match="open one upload per study"):
        uploads.check_identity(
            Identity(study_instance_uid="1.9", sop_instance_uid="1.2.3"), "1.2.3", "1.2"
        )


@pytest.mark.parametrize(
    ("study", "conflicting", "committed", "new_items", "outcome"),
    [
        ("1.2", [], False, 0, None),
        ("1.2", [], True, 0, None),
        ("1.9", [], False, 0, Conflict),
        ("1.2", ["1.2.3"], False, 0, Conflict),
        ("1.2", [], True, 2, InvalidState),
        ("1.2", [], False, 2, None),
    ],
)
def test_a_session_is_resumed_with_the_same_study_and_files(
    study: str,
    conflicting: list[str],
    committed: bool,
    new_items: int,
    outcome: type[Exception] | None,
) -> None:
    def resume() -> None:
        uploads.check_resume(
            key="k",
            session_study="1.2",
            study=study,
            conflicting=conflicting,
            committed=committed,
            new_items=new_items,
            public_id="u-1",
        )

    if outcome is None:
        resume()
    else:
        with pytest.raises(outcome):
            resume()


def test_a_commit_needs_every_instance() -> None:
    uploads.check_complete([], 3, "u-1")
    with pytest.raises(Conflict, match=r"2 of 3 instances are still missing \(first: 1.2.3\)"):
        uploads.check_complete(["1.2.3", "1.2.4"], 3, "u-1")
