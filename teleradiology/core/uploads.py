"""The rules of the resumable upload: what a manifest must say, which byte range a part may
cover, when parts make the whole file, and whether what arrived is the file the manifest
named. Plain values in, plain values (or a `ServiceError` saying what to fix) out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from storage.records import ManifestItem
from teleradiology.core.dicom import Identity
from teleradiology.core.errors import BadRequest, Conflict, InvalidState, SendAgain, TooLarge
from teleradiology.core.language import N_, Phrase

#: A session's files changed since it began, and those that did.
FILES_CHANGED = N_(
    "清单中 %(sops)s 的大小或 SHA-256 与本次上传不同；文件在上传开始后已变：请新开上传（另一个键）"
)
#: A commit before every instance arrived.
STILL_MISSING = N_(
    "%(total)s 个实例中仍缺 %(n)s 个（第一个：%(first)s）；请发送（%(list)s 列出）后再提交"
)


#: How a manifest lists its instances.
MANIFEST_FORM = '[{"sop_instance_uid": …, "size": bytes, "sha256": hex}, …]'
#: A body larger than its request may carry, and how to send it instead.
BODY_TOO_LARGE = N_("正文解压后超过 %(limit)s 字节，超出清单或本请求的允许；%(fix)s")
SEND_AS_LISTED = N_(
    "请按清单发送文件（较大的实例以 Content-Range 分段发送，每段至多 %(most)s 字节）"
)
#: A part shorter than the range it was sent for.
PART_CUT = N_("范围 %(first)s-%(last)s（%(size)s 字节）只收到 %(got)s 字节；传输中断：请重发此部分")

#: One request body (a whole instance or one part), decompressed: larger instances go in parts.
MAX_BODY_BYTES = 64 * 1024**2
MAX_MANIFEST_ITEMS = 50_000
MAX_QUESTION_CHARS = 2000
MAX_KEY_CHARS = 200
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


def study_uid(value: Any) -> str:
    """The study an upload carries: a DICOM UID."""
    if not isinstance(value, str) or len(value) > 64 or not _UID.fullmatch(value):
        raise BadRequest(N_("study_instance_uid 须为 DICOM UID（由数字和点组成，至多 64 个字符）"))
    return value


def manifest(value: Any, max_size: int) -> list[ManifestItem]:
    """The manifest's lines, each instance once; an instance may be at most ``max_size``."""
    if not isinstance(value, list) or not value:
        raise BadRequest(N_("'instances' 须逐一列出要发送的实例：%(form)s"), form=MANIFEST_FORM)
    if len(value) > MAX_MANIFEST_ITEMS:
        raise BadRequest(
            N_("一份清单至多列出 %(most)s 个实例；请将检查分开发送"), most=MAX_MANIFEST_ITEMS
        )
    items: dict[str, ManifestItem] = {}
    for n, line in enumerate(value):
        item = _manifest_line(n, line, max_size)
        earlier = items.get(item.sop_instance_uid)
        if earlier is not None and earlier != item:
            raise BadRequest(N_("实例 %(sop)s 被列出两次，文件不同"), sop=item.sop_instance_uid)
        items[item.sop_instance_uid] = item
    return list(items.values())


def _manifest_line(n: int, line: Any, max_size: int) -> ManifestItem:
    if not isinstance(line, dict):
        raise BadRequest(N_("instances[%(n)s] 须为 JSON 对象"), n=n)
    size = line.get("size")
    if not isinstance(size, int) or isinstance(size, bool):
        raise BadRequest(N_("instances[%(n)s].size 须为文件的字节数"), n=n)
    if size > max_size:
        raise TooLarge(
            N_("instances[%(n)s] 有 %(size)s 字节；一个实例至多 %(most)s 字节"),
            n=n,
            size=size,
            most=max_size,
        )
    try:
        return ManifestItem(
            sop_instance_uid=str(line.get("sop_instance_uid", "")),
            size_bytes=size,
            sha256=str(line.get("sha256", "")).lower(),
        )
    except ValueError as exc:
        raise BadRequest(N_("instances[%(n)s]：%(reason)s"), n=n, reason=str(exc)) from None


def question(value: Any) -> str | None:
    """The clinical question sent with an upload, if any."""
    if value is not None and not isinstance(value, str):
        raise BadRequest(N_("question 须为文本"))
    if value is not None and len(value) > MAX_QUESTION_CHARS:
        raise BadRequest(N_("问题至多 %(n)s 个字符"), n=MAX_QUESTION_CHARS)
    return value or None


def resume_key(value: Any, study: str, items: Sequence[ManifestItem]) -> str:
    """The key a session is found again by: the client's, or the SHA-256 of the manifest."""
    key = value or manifest_key(study, items)
    if not isinstance(key, str) or len(key) > MAX_KEY_CHARS:
        raise BadRequest(N_("key 须为至多 %(n)s 个字符的文本"), n=MAX_KEY_CHARS)
    return key


def manifest_key(study: str, items: Sequence[ManifestItem]) -> str:
    """The default resume key: the same manifest of the same study gives the same key."""
    digest = hashlib.sha256(study.encode())
    for i in sorted(items, key=lambda i: i.sop_instance_uid):
        digest.update(f"\n{i.sop_instance_uid} {i.size_bytes} {i.sha256}".encode())
    return "manifest-sha256:" + digest.hexdigest()


def check_resume(
    *,
    key: str,
    session_study: str,
    study: str,
    conflicting: Sequence[str],
    committed: bool,
    new_items: int,
    public_id: object,
) -> None:
    """Whether a session found under ``key`` may take this manifest: the same study, no line
    naming one of its instances with another file, nothing new once committed."""
    if session_study != study:
        raise Conflict(
            N_("上传键 %(key)r 已用于检查 %(study)s；一次上传只传一个检查"),
            key=key,
            study=session_study,
        )
    if conflicting:
        raise Conflict(FILES_CHANGED, sops=", ".join(conflicting))
    if committed and new_items:
        raise InvalidState(
            N_("上传 %(id)s 已提交；其余实例请用新的上传（另一个键）发送"), id=public_id
        )


def too_large(size: int, limit: int) -> TooLarge:
    """A body (or a part) that decodes to more than this request may carry."""
    return TooLarge(
        BODY_TOO_LARGE, limit=limit, fix=Phrase(SEND_AS_LISTED, {"most": MAX_BODY_BYTES})
    )


def byte_range(header: str, size: int) -> tuple[int, int]:
    """The [start, end) bytes of a file of ``size`` bytes a ``Content-Range`` names."""
    match = _CONTENT_RANGE.fullmatch(header.strip())
    if match is None:
        raise BadRequest(
            N_("Content-Range %(header)r 须形如 %(form)r"),
            header=header,
            form=f"bytes 0-1048575/{size}",
        )
    start, last, total = (int(g) for g in match.groups())
    if total != size:
        raise BadRequest(
            N_("Content-Range 说文件有 %(total)s 字节，清单为 %(size)s"), total=total, size=size
        )
    if not start <= last < size:
        raise BadRequest(
            N_("Content-Range %(header)r 超出文件的 %(size)s 字节"), header=header, size=size
        )
    if last - start + 1 > MAX_BODY_BYTES:
        raise too_large(last - start + 1, MAX_BODY_BYTES)
    return start, last + 1


def check_part(received: int, start: int, end: int) -> None:
    """A part must be as long as the range it was sent for."""
    if received != end - start:
        raise SendAgain(
            PART_CUT,
            got=received,
            first=start,
            last=end - 1,
            size=end - start,
        )


def covers(ranges: Sequence[tuple[int, int]], size: int) -> bool:
    """Whether [start, end) ranges, in order of their start, cover a file of ``size`` bytes."""
    covered = 0
    for start, end in ranges:
        if covered >= size:
            return True  # what lies past the end does not matter
        if start > covered:
            return False
        covered = max(covered, end)
    return covered >= size


def check_file(data: bytes, item: ManifestItem) -> None:
    """What arrived is the file the manifest describes: its size and SHA-256."""
    check_received(len(data), hashlib.sha256(data).hexdigest(), item)


def check_received(size_bytes: int, sha256: str, item: ManifestItem) -> None:
    """A file of ``size_bytes`` with this SHA-256 (hex) is the one the manifest describes."""
    sop, size = item.sop_instance_uid, item.size_bytes
    if size_bytes != size:
        raise SendAgain(
            N_("实例 %(sop)s：收到 %(got)s 字节，清单为 %(size)s；传输中断或文件已变：请重发"),
            sop=sop,
            got=size_bytes,
            size=size,
        )
    if sha256 != item.sha256:
        raise BadRequest(
            N_("实例 %(sop)s：收到内容的 SHA-256 与清单不同；文件已变：请新开上传"), sop=sop
        )


def check_identity(identity: Identity | None, sop: str, study: str) -> None:
    """The file sent as ``sop`` is that instance, of the upload's study."""
    if identity is None:
        raise BadRequest(N_("实例 %(sop)s：此文件不是 DICOM 实例"), sop=sop)
    if identity.sop_instance_uid != sop:
        raise BadRequest(
            N_("作为 %(sop)s 发送的文件是实例 %(actual)s；每个文件请发到自己的 SOP Instance UID"),
            sop=sop,
            actual=identity.sop_instance_uid,
        )
    if identity.study_instance_uid != study:
        raise BadRequest(
            N_("实例 %(sop)s 属于检查 %(actual)s，此上传属于 %(study)s：每个检查一个上传"),
            sop=sop,
            actual=identity.study_instance_uid,
            study=study,
        )


def check_complete(missing: Sequence[str], total: int, public_id: object) -> None:
    """A commit needs every manifest instance stored; ``missing`` are those that are not."""
    if missing:
        raise Conflict(
            STILL_MISSING,
            n=len(missing),
            total=total,
            first=missing[0],
            list=f"GET /api/v1/uploads/{public_id}",
        )
