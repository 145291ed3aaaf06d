"""STOW-RS (PS3.18 10.5): store instances over HTTP, each committed before it is listed."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, BinaryIO

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDictProxy

from storage.records import Facility, ReceivedVia
from teleradiology.core.errors import (
    BadRequest,
    DuplicateConflict,
    InvalidDicom,
    QuotaExceeded,
    TooLarge,
    UnsupportedMediaType,
)
from teleradiology.core.language import N_
from teleradiology.http.context import INGESTOR, POOL, SETTINGS, current_user
from teleradiology.http.dicomweb.common import base_url, dicom_json
from teleradiology.services.intake import Ingestor, Stored, StudyMismatch, sending_facility

log = logging.getLogger(__name__)


class FailureReason(IntEnum):
    """STOW-RS FailureReason (0008,1197) values, from PS3.4's storage statuses."""

    #: The SOP Instance UID is stored with other content; the first copy is kept.
    DUPLICATE_SOP_INSTANCE = 0x0111
    OUT_OF_RESOURCES = 0xA700
    #: The instance is not of the study named in the URL; not stored.
    STUDY_MISMATCH = 0xA900
    #: Not DICOM, truncated, damaged, or an identifying UID missing.
    CANNOT_UNDERSTAND = 0xC000


class WarningReason(IntEnum):
    """STOW-RS WarningReason (0008,1196) values, from PS3.4's storage statuses."""

    #: Stored; the index holds the study's patient data where this instance's differs.
    COERCION_OF_DATA_ELEMENTS = 0xB000


#: Parts up to this size are read into memory; larger ones are spooled to disk as they come.
SPOOL_ABOVE_BYTES = 8 * 1024**2


def _ref(
    sop_class: str,
    sop_instance: str,
    url: str | None = None,
    warning: WarningReason | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "00081150": {"vr": "UI", "Value": [sop_class]},
        "00081155": {"vr": "UI", "Value": [sop_instance]},
    }
    if url:
        item["00081190"] = {"vr": "UR", "Value": [url]}
    if warning is not None:
        item["00081196"] = {"vr": "US", "Value": [int(warning)]}
    return item


def _failed(
    sop_class: str | None, sop_instance: str | None, reason: FailureReason
) -> dict[str, Any]:
    item: dict[str, Any] = {"00081197": {"vr": "US", "Value": [int(reason)]}}
    if sop_class:
        item["00081150"] = {"vr": "UI", "Value": [sop_class]}
    if sop_instance:
        item["00081155"] = {"vr": "UI", "Value": [sop_instance]}
    return item


#: The bodies STOW-RS takes.
STOW_FORM = "'multipart/related; type=\"application/dicom\"'"


def _check_content_type(request: web.Request) -> None:
    ctype = request.headers.get("Content-Type", "")
    main = ctype.split(";")[0].strip().lower()
    if main != "multipart/related":
        if not main:
            raise UnsupportedMediaType(
                N_("STOW-RS 只接受 %(form)s 正文；此请求没有 Content-Type"), form=STOW_FORM
            )
        raise UnsupportedMediaType(
            N_("STOW-RS 只接受 %(form)s 正文；此请求发送的是 %(sent)s"), form=STOW_FORM, sent=main
        )
    params = {
        k.strip().lower(): v.strip().strip('"').lower()
        for k, _, v in (p.partition("=") for p in ctype.split(";")[1:])
    }
    if params.get("type", "application/dicom") != "application/dicom":
        raise UnsupportedMediaType(
            N_("只存储 application/dicom 部分，不存储 %(type)s"), type=params["type"]
        )
    if "boundary" not in params:
        raise BadRequest(N_("multipart 正文没有 boundary 参数"))


async def stow(request: web.Request) -> web.Response:
    """Store the instances of a multipart/related body, each committed before it is listed.

    The body is read part by part (one part in memory at a time, large parts spooled to
    disk), so its size is bounded by ``max_upload_bytes``, not by memory. ``Content-Encoding:
    gzip`` bodies are inflated as they arrive and the limit applies to what they inflate to.
    """
    facility = await sending_facility(request.app[POOL], current_user(request))
    _check_content_type(request)
    limit = request.app[SETTINGS].max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    outcome = _Outcome(
        study=request.match_info.get("study"), retrieve_base=f"{base_url(request)}/dicomweb"
    )
    ahead: deque[asyncio.Future[_Noted]] = deque()
    total = 0
    try:
        async for part in _parts(request):
            if _part_type(part.headers) not in ("application/dicom", ""):
                total += await _drain(part, limit - total)
                ahead.append(_now(FailureReason.CANNOT_UNDERSTAND))
            else:
                received = await _read_part(part, limit - total, request.app[INGESTOR])
                total += received.size
                # Stored while the next parts are read: the instances of one request are
                # indexed together (`IndexGroups`), a few at a time in memory.
                ahead.append(
                    asyncio.ensure_future(
                        _store(request.app[INGESTOR], received, facility, outcome.study)
                    )
                )
            while len(ahead) > STORE_AHEAD or (ahead and ahead[0].done()):
                outcome.note(await ahead.popleft())
    except MalformedBody:
        await _settle(ahead, outcome)
        if not outcome.stored:
            raise
        # The body broke after some instances were committed: say which were stored (202),
        # not a 400 that would tell the client nothing was.
        outcome.failed.append(_failed(None, None, FailureReason.CANNOT_UNDERSTAND))
    except BaseException:
        await _settle(ahead, None)
        raise
    await _settle(ahead, outcome)
    return outcome.answer()


#: Received parts being stored while the next ones are read, at most.
STORE_AHEAD = 4


async def _settle(ahead: deque[asyncio.Future[_Noted]], outcome: _Outcome | None) -> None:
    """Wait for every part still being stored and note each (in order), or only wait (the
    request failed: its error is the answer)."""
    try:
        while ahead and outcome is not None:
            outcome.note(await ahead.popleft())
    finally:
        await asyncio.gather(*ahead, return_exceptions=True)
        ahead.clear()


def _now(noted: _Noted) -> asyncio.Future[_Noted]:
    done: asyncio.Future[_Noted] = asyncio.get_running_loop().create_future()
    done.set_result(noted)
    return done


class MalformedBody(BadRequest):
    """The multipart body cannot be read on (cut short, malformed, nested)."""


async def _parts(request: web.Request) -> AsyncIterator[BodyPartReader]:
    """The parts of the body, one at a time; a malformed body is a 400 that says why."""
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError) as exc:
        raise MalformedBody(N_("multipart 正文无法读取：%(reason)s"), reason=str(exc)) from None
    while True:
        try:
            part = await reader.next()
        except (ValueError, HttpProcessingError) as exc:
            # HttpProcessingError: a part header aiohttp cannot parse (a stray CR in it, say)
            raise MalformedBody(
                N_("multipart 正文格式有误：%(reason)s"), reason=" ".join(str(exc).split())
            ) from None
        if part is None:
            return
        if isinstance(part, MultipartReader):
            raise MalformedBody(N_("不接受嵌套的 multipart 正文"))
        yield part


@dataclass
class _Outcome:
    """What a STOW-RS request stored and refused, answered as PS3.18 says."""

    study: str | None
    retrieve_base: str
    stored: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    warned: bool = False
    #: A part was refused for the facility's daily limit: with nothing stored, the answer
    #: is that refusal (429), not a list of failures.
    over_quota: QuotaExceeded | None = None

    def note(self, noted: _Noted) -> None:
        """One part's fate, in the order the parts came."""
        if isinstance(noted, FailureReason):
            self.failed.append(_failed(None, None, noted))
        elif isinstance(noted, QuotaExceeded):
            self.failed.append(_failed(None, None, FailureReason.OUT_OF_RESOURCES))
            self.over_quota = noted
        else:
            warning = WarningReason.COERCION_OF_DATA_ELEMENTS if noted.identity_conflicts else None
            self.warned = self.warned or warning is not None
            study_url = f"{self.retrieve_base}/studies/{noted.study_instance_uid}"
            self.stored.append(
                _ref(noted.sop_class_uid, noted.sop_instance_uid, study_url, warning)
            )

    def answer(self) -> web.Response:
        if self.over_quota is not None and not self.stored:
            raise self.over_quota
        body: dict[str, Any] = {}
        if self.study:
            body["0020000D"] = {"vr": "UI", "Value": [self.study]}
        if self.stored:
            body["00081199"] = {"vr": "SQ", "Value": self.stored}
        if self.failed:
            body["00081198"] = {"vr": "SQ", "Value": self.failed}
        if self.stored and (self.failed or self.warned):
            status = 202
        elif self.failed:
            status = 409
        elif not self.stored:
            raise BadRequest(N_("multipart 正文中没有 DICOM 实例"))
        else:
            status = 200
        return dicom_json(body, status=status)


#: What became of one part: stored, or refused for a reason.
_Noted = Stored | FailureReason | QuotaExceeded


async def _store(
    ingestor: Ingestor, received: _Part, facility: Facility, study: str | None
) -> _Noted:
    """Store one received part through the ingest path; how it went."""
    try:
        if received.path is not None:
            return await ingestor.ingest_file(
                received.path,
                facility=facility,
                via=ReceivedVia.STOW,
                study_instance_uid=study,
                size_bytes=received.size,
            )
        return await ingestor.ingest(
            received.data,
            facility=facility,
            via=ReceivedVia.STOW,
            study_instance_uid=study,
        )
    except InvalidDicom as exc:
        log.info("STOW part refused from %s: %s", facility.code, exc)
        return FailureReason.CANNOT_UNDERSTAND
    except StudyMismatch:
        return FailureReason.STUDY_MISMATCH
    except DuplicateConflict:
        return FailureReason.DUPLICATE_SOP_INSTANCE
    except QuotaExceeded as exc:
        return exc


def _too_large(limit: int) -> TooLarge:
    return TooLarge(
        N_("上传超过本服务器单个请求接受的大小（%(limit)s 字节）；请分几次请求发送检查"),
        limit=limit,
    )


def _part_type(headers: CIMultiDictProxy[str]) -> str:
    return headers.get("Content-Type", "").split(";")[0].strip().lower()


@dataclass(frozen=True, kw_only=True)
class _Part:
    """One received part: in memory, or spooled to a file for `Ingestor.ingest_file`."""

    size: int
    data: bytes = b""
    path: Path | None = None


async def _read_part(part: BodyPartReader, budget: int, ingestor: Ingestor) -> _Part:
    chunks: list[bytes] = []
    size = 0
    spool: BinaryIO | None = None
    path: Path | None = None
    try:
        while True:
            chunk = await part.read_chunk(1024 * 1024)
            if not chunk:
                break
            size += len(chunk)
            if size > budget:
                raise _too_large(budget)
            chunks.append(chunk)
            if spool is None and size > SPOOL_ABOVE_BYTES:
                path = await asyncio.to_thread(ingestor.new_spool_file)
                spool = await asyncio.to_thread(path.open, "wb")
            if spool is not None:
                await asyncio.to_thread(spool.writelines, chunks)
                chunks.clear()
    except BaseException:
        if spool is not None:
            await asyncio.to_thread(spool.close)
        if path is not None:
            await asyncio.to_thread(path.unlink, True)
        raise
    if spool is not None:
        await asyncio.to_thread(spool.close)
        return _Part(size=size, path=path)
    return _Part(size=size, data=b"".join(chunks))


async def _drain(part: BodyPartReader, budget: int) -> int:
    """Read and drop a part that will not be stored, still within the size limit."""
    size = 0
    while chunk := await part.read_chunk(1024 * 1024):
        size += len(chunk)
        if size > budget:
            raise _too_large(budget)
    return size


def add_routes(app: web.Application) -> None:
    app.router.add_post("/dicomweb/studies", stow)
    app.router.add_post("/dicomweb/studies/{study}", stow)
