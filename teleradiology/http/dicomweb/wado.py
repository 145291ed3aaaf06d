"""WADO-RS (PS3.18 10.4): retrieve instances, metadata, frames, bulk data, rendered images.

Every request is scoped like the rest of the API (a study outside the caller's scope does not
exist: 404): services/studies.py opens the study, lists its objects and audits the access.
Metadata comes from the DICOM JSON each instance keeps in PostgreSQL, and a series' whole
metadata is kept as one compressed row (series_metadata) once built, so a 600-instance series
is served without opening an object. Decoding and rendering (pydicom with the pylibjpeg /
pyjpegls plugins, opencv) run in a process pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from aiohttp import web
from pydicom.uid import UID, ExplicitVRLittleEndian

from storage import qido
from storage.errors import ObjectNotFound
from storage.qido import StoredObject
from storage.records import AuditAction, StudyId, User
from teleradiology.core import rendering
from teleradiology.core.dicom import BULK_DATA_THRESHOLD, metadata_json
from teleradiology.core.dicomweb import (
    DICOM_JSON,
    Choice,
    Offer,
    closing,
    multipart_content_type,
    new_boundary,
    part_header,
    part_separator,
)
from teleradiology.core.errors import (
    BadRequest,
    NotAcceptable,
    NotFound,
    ServiceError,
    Unprocessable,
    WorkLost,
)
from teleradiology.core.language import N_, Phrase
from teleradiology.core.pixel_limits import DecodeTooLarge
from teleradiology.core.query import BULK_PLACEHOLDER
from teleradiology.http.context import (
    OBJECTS,
    POOL,
    SETTINGS,
    STUDIES,
    WORK_POOL,
    current_user,
)
from teleradiology.http.dicomweb.common import base_url, multipart_body, negotiate
from teleradiology.http.problems import known_language
from teleradiology.services.work_pool import WorkPool

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

ELE = str(ExplicitVRLittleEndian)
DICOM = "application/dicom"
OCTETS = "application/octet-stream"
#: Compressed transfer syntaxes and the image media type of their frames (PS3.18 8.7.3.5).
_FRAME_MEDIA = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}
_IMAGE_OFFERS = (Offer("image/jpeg"), Offer("image/png"))
_METADATA_OFFERS = (Offer(DICOM_JSON), Offer("application/json"))
THUMBNAIL_SIZE = 128
#: Longest any one decode, render or transcode may take before the request gives up.
WORK_TIMEOUT_S = 60.0
#: Stored pixels that could not be decoded or rendered, and why.
NOT_DECODED = N_("已存储的像素数据无法解码或渲染：%(reason)s")
#: An instance asked for in a transfer syntax it is not sent in, and what to ask instead.
NOT_IN_SYNTAX = N_(
    "实例以 %(stored)s 存储，不能以 %(asked)s 发送；请用 transfer-syntax=*（原样）或 %(ele)s"
)

# --- scope and lookup ------------------------------------------------------------------------

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def _uid(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if len(value) > 64 or not _UID.match(value):
        raise BadRequest(N_("%(value)r 不是 UID（由数字和点组成，至多 64 个字符）"), value=value)
    return value


async def _study(request: web.Request, action: AuditAction) -> tuple[User, StudyId]:
    """The caller and the study of the path, when in scope; 404 otherwise. Audited."""
    user = current_user(request)
    study_id = await request.app[STUDIES].open_study(user, _uid(request, "study"), action)
    return user, study_id


async def _objects(
    request: web.Request, *, with_metadata: bool = False, action: AuditAction = AuditAction.WADO
) -> list[StoredObject]:
    _, study_id = await _study(request, action)
    series = _uid(request, "series") if "series" in request.match_info else None
    sop = _uid(request, "instance") if "instance" in request.match_info else None
    return await request.app[STUDIES].objects(
        study_id,
        request.match_info["study"],
        series_uid=series,
        sop_uid=sop,
        with_metadata=with_metadata,
    )


async def _read(request: web.Request, obj: StoredObject) -> bytes:
    try:
        return await request.app[OBJECTS].get(obj.object_key)
    except ObjectNotFound:
        log.error("indexed object %s is missing from the object store", obj.object_key)
        unreachable = Phrase(N_("此实例已存储的文件暂时无法读取；请稍后再试"))
        raise web.HTTPServiceUnavailable(text=unreachable.say(known_language(request))) from None


async def _in_pool(
    request: web.Request, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
) -> _T:
    """Run CPU-heavy work (decoding, rendering) in the process pool, with clear 4xx errors."""
    pool = request.app[WORK_POOL]
    return await _answering(fn, pool.run(fn, *args, **kwargs))


async def _in_thread(fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Run light parsing (no decoding) in a thread, with the same errors as the pool."""

    async def limited() -> _T:
        async with asyncio.timeout(WORK_TIMEOUT_S):
            return await asyncio.to_thread(fn, *args, **kwargs)

    return await _answering(fn, limited())


async def _answering(fn: Callable[..., _T], work: Awaitable[_T]) -> _T:
    try:
        return await work
    except TimeoutError:
        log.error("%s took longer than %s s", getattr(fn, "__name__", "work"), WORK_TIMEOUT_S)
        raise WorkLost(N_("解码此图像耗时过长；请稍后再试")) from None
    except MemoryError:
        raise Unprocessable(N_("解码已存储的像素数据所需内存超出本服务器的限制")) from None
    except rendering.FrameOutOfRange as exc:
        raise NotFound(
            N_("第 %(number)s 帧不存在：该实例有 %(count)s 帧"), number=exc.number, count=exc.count
        ) from None
    except rendering.NoPixels:
        raise NotFound(N_("该实例没有像素数据，因此没有帧")) from None
    except DecodeTooLarge as exc:
        raise Unprocessable(NOT_DECODED, reason=exc.phrase) from None
    except (ValueError, NotImplementedError, RuntimeError) as exc:
        raise Unprocessable(NOT_DECODED, reason=str(exc)) from None


def _instance_url(base: str, request: web.Request, obj: StoredObject) -> str:
    study = request.match_info["study"]
    return (
        f"{base}/dicomweb/studies/{study}/series/{obj.series_instance_uid}"
        f"/instances/{obj.sop_instance_uid}"
    )


# --- retrieve --------------------------------------------------------------------------------


def _target_syntax(choice: Choice, stored: str) -> str:
    """The transfer syntax to send an instance in; PS3.18's default is Explicit VR LE."""
    asked = choice.transfer_syntax
    if asked == "*" or asked == stored:
        return stored
    if asked is None or asked == ELE:
        return ELE
    raise NotAcceptable(
        NOT_IN_SYNTAX,
        stored=stored,
        asked=asked,
        ele=ELE,
    )


async def retrieve(request: web.Request) -> web.StreamResponse:
    """Study, series or instance retrieve: multipart/related; type="application/dicom"."""
    objects = await _objects(request, action=AuditAction.RETRIEVE)
    stored = tuple(sorted({o.transfer_syntax_uid for o in objects}))
    choice = negotiate(request, (Offer("multipart/related", DICOM, ("*", ELE, *stored)),))
    targets = [_target_syntax(choice, o.transfer_syntax_uid) for o in objects]
    boundary = new_boundary()
    response = web.StreamResponse(headers={"Content-Type": multipart_content_type(DICOM, boundary)})
    await response.prepare(request)
    try:
        await _stream_parts(request, response, boundary, objects, targets)
    except (web.HTTPException, ServiceError, OSError) as exc:
        # The status line is gone: the only honest signal left is a cut connection, so the
        # client sees an incomplete multipart body, not a problem document inside it.
        log.warning("retrieve stopped after the response started: %s", exc)
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write(closing(boundary))
    await response.write_eof()
    return response


async def _stream_parts(
    request: web.Request,
    response: web.StreamResponse,
    boundary: str,
    objects: list[StoredObject],
    targets: list[str],
) -> None:
    base = base_url(request)
    # Read one object ahead while the previous one is written.
    pending = asyncio.ensure_future(_read(request, objects[0]))
    try:
        for i, (obj, target) in enumerate(zip(objects, targets, strict=True)):
            data = await pending
            if i + 1 < len(objects):
                pending = asyncio.ensure_future(_read(request, objects[i + 1]))
            if target != obj.transfer_syntax_uid:
                data = await _in_pool(request, rendering.transcode_to_explicit_le, data)
            ctype = f"{DICOM}; transfer-syntax={target}"
            await response.write(
                part_header(boundary, ctype, _instance_url(base, request, obj))
                + data
                + part_separator()
            )
    finally:
        if not pending.done():
            pending.cancel()


# --- metadata --------------------------------------------------------------------------------

_BULK = BULK_PLACEHOLDER.encode()


def _series_body(instances: list[tuple[str, bytes]]) -> bytes:
    """A series' metadata (JSON array, zlib) from its instances' stored DICOM JSON.

    Each bulk placeholder ``bulk:GGGGEEEE`` becomes ``bulk:{SOP UID}/bulk/GGGGEEEE``, so one
    replacement at serving time makes every BulkDataURI absolute.
    """
    parts = []
    for sop, blob in instances:
        text = zlib.decompress(blob)
        parts.append(text.replace(_BULK, _BULK + sop.encode() + b"/bulk/"))
    return zlib.compress(b"[" + b",".join(parts) + b"]", 6)


def _serve_body(body_zlib: bytes, prefix: str) -> bytes:
    return zlib.decompress(body_zlib).replace(_BULK, f'"BulkDataURI": "{prefix}'.encode())


def _metadata_of_object(data: bytes) -> bytes:
    """DICOM JSON (zlib) of an instance whose metadata was not kept at ingest.

    Clinics' files can hold values pydicom cannot write as JSON (an IS of '1A'): those
    elements are left out, one by one, rather than the whole instance.
    """
    ds = rendering.read(data)
    blob = metadata_json(ds)
    if blob is not None:
        return blob
    out: dict[str, Any] = {}
    for elem in ds:
        try:
            out[f"{elem.tag:08X}"] = elem.to_json_dict(
                bulk_data_element_handler=lambda e: f"bulk:{e.tag:08X}",
                bulk_data_threshold=BULK_DATA_THRESHOLD,
            )
        except Exception:  # noqa: S112 - a value JSON cannot carry is left out
            continue
    return zlib.compress(json.dumps(out, ensure_ascii=False).encode(), 6)


async def _series_metadata(
    request: web.Request, study_id: StudyId, series_uid: str
) -> bytes | None:
    """The kept (or freshly built and kept) metadata body of one series; None if absent."""
    pool = request.app[POOL]
    cached = await qido.cached_series_metadata(pool, study_id, series_uid)
    if cached is not None:
        return cached
    source = await qido.series_metadata_source(pool, study_id, series_uid)
    if source is None:
        return None
    instances: list[tuple[str, bytes]] = []
    for sop, blob, key in source.instances:
        if blob is None:
            data = await request.app[OBJECTS].get(key)
            blob = await _in_pool(request, _metadata_of_object, data)
        instances.append((sop, blob))
    body = await asyncio.to_thread(_series_body, instances)
    await qido.keep_series_metadata(pool, source.series_id, source.num_instances, body)
    return body


async def metadata(request: web.Request) -> web.Response:
    """Study, series or instance metadata: DICOM JSON with absolute BulkDataURIs."""
    negotiate(request, _METADATA_OFFERS)
    user, study_id = await _study(request, AuditAction.METADATA)
    study_uid = request.match_info["study"]
    base = f"{base_url(request)}/dicomweb/studies/{study_uid}/series/"
    if "instance" in request.match_info:
        objects = await _objects(request, with_metadata=True, action=AuditAction.METADATA)
        obj = objects[0]
        blob = obj.metadata_zlib
        if blob is None:
            blob = await _in_pool(request, _metadata_of_object, await _read(request, obj))
        body = _series_body([(obj.sop_instance_uid, blob)])
        text = _serve_body(body, f"{base}{obj.series_instance_uid}/instances/")
        return _json_bytes(request, text)
    if "series" in request.match_info:
        series_uids = [_uid(request, "series")]
    else:
        series_uids = await request.app[STUDIES].series_of(user, study_uid)
    pieces: list[bytes] = []
    for series_uid in series_uids:
        kept = await _series_metadata(request, study_id, series_uid)
        if kept is None:
            raise NotFound(
                N_("检查 %(study)s 中找不到序列 %(uid)s"), uid=series_uid, study=study_uid
            )
        text = await asyncio.to_thread(_serve_body, kept, f"{base}{series_uid}/instances/")
        pieces.append(text[1:-1])
    return _json_bytes(request, b"[" + b",".join(p for p in pieces if p) + b"]")


def _json_bytes(request: web.Request, body: bytes) -> web.Response:
    response = web.Response(body=body, headers={"Content-Type": DICOM_JSON})
    if len(body) > 32 * 1024 and "gzip" in request.headers.get("Accept-Encoding", ""):
        # Village and township links are slow: metadata compresses about tenfold.
        response.enable_compression()
    return response


# --- frames ----------------------------------------------------------------------------------


def _frame_numbers(text: str) -> list[int]:
    numbers = []
    for piece in text.split(","):
        piece = piece.strip()
        if not piece.isdigit() or int(piece) < 1:
            raise BadRequest(N_("帧列表 %(text)r：帧从 1 开始编号，如 1 或 1,2,3"), text=text)
        numbers.append(int(piece))
    if len(numbers) > 1000:
        raise BadRequest(N_("每个请求至多 %(n)s 帧"), n=1000)
    return numbers


def _frame_offers(stored: str) -> tuple[Offer, ...]:
    offers = [
        Offer(
            "multipart/related",
            OCTETS,
            ("*", ELE, stored),
        )
    ]
    media = _FRAME_MEDIA.get(stored)
    if media:
        offers.append(Offer("multipart/related", media, ("*", stored)))
    return tuple(offers)


async def frames(request: web.Request) -> web.Response:
    """Frames (1-based) as stored (``transfer-syntax=*``) or as native little-endian pixels."""
    numbers = _frame_numbers(request.match_info["frames"])
    obj = (await _objects(request))[0]
    stored = obj.transfer_syntax_uid
    choice = negotiate(request, _frame_offers(stored), default_part=OCTETS)
    asked = choice.transfer_syntax
    as_stored = asked == "*" or asked == stored or choice.offer.part != OCTETS
    data = await _read(request, obj)
    if as_stored:
        found = await _in_thread(rendering.stored_frames, data, numbers)
        ts = stored
    else:
        uid = UID(stored)
        if uid.is_compressed or not uid.is_little_endian:
            found = await _in_pool(request, rendering.decoded_frames, data, numbers)
        else:
            found = await _in_thread(rendering.decoded_frames, data, numbers)
        ts = ELE
        found = list(found)
    part_type = choice.offer.part or OCTETS
    ctype = f"{part_type}; transfer-syntax={ts}"
    url = f"{_instance_url(base_url(request), request, obj)}/frames/"
    response = multipart_body(
        [(ctype, frame, f"{url}{n}") for n, frame in zip(numbers, found, strict=True)],
        part_type,
    )
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response


async def bulkdata(request: web.Request) -> web.Response:
    """One bulk data value by its tag (the BulkDataURIs of the metadata point here)."""
    tag_text = request.match_info["tag"]
    if not re.fullmatch(r"[0-9A-Fa-f]{8}", tag_text):
        raise BadRequest(N_("%(text)r 不是标签（8 位十六进制数字，如 7FE00010）"), text=tag_text)
    tag = int(tag_text, 16)
    obj = (await _objects(request))[0]
    negotiate(request, (Offer("multipart/related", OCTETS), Offer(OCTETS)), default_part=OCTETS)
    data = await _read(request, obj)
    url = f"{_instance_url(base_url(request), request, obj)}/bulk/{tag_text}"
    if tag == 0x7FE00010 and UID(obj.transfer_syntax_uid).is_encapsulated:
        # Compressed pixel data: one part per frame, as stored.
        count = await _in_thread(_frame_total, data)
        found = await _in_thread(rendering.stored_frames, data, list(range(1, count + 1)))
        ctype = f"{OCTETS}; transfer-syntax={obj.transfer_syntax_uid}"
        return multipart_body([(ctype, f, url) for f in found], OCTETS)
    try:
        value = await _in_thread(rendering.bulk_value, data, tag)
    except KeyError:
        raise NotFound(
            N_("实例 %(sop)s 没有元素 %(tag)s"), sop=obj.sop_instance_uid, tag=tag_text
        ) from None
    return multipart_body([(OCTETS, value, url)], OCTETS)


def _frame_total(data: bytes) -> int:
    return rendering.frame_count(rendering.read(data))


# --- rendered and thumbnails -----------------------------------------------------------------


def _floats(name: str, text: str, count: tuple[int, ...]) -> list[str]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in count:
        raise BadRequest(
            N_("%(name)s=%(text)r：应为 %(first)s 或 %(second)s 个值"),
            name=name,
            text=text,
            first=count[0],
            second=count[-1],
        )
    return parts


def render_spec(request: web.Request, media_type: str) -> rendering.RenderSpec:
    """The rendering parameters of PS3.18 8.3.5: window, viewport, quality."""
    q = request.query
    window = viewport = None
    try:
        if "window" in q:
            parts = _floats("window", q["window"], (2, 3))
            window = rendering.Window(
                center=float(parts[0]),
                width=float(parts[1]),
                function=parts[2].lower() if len(parts) == 3 else "linear",
            )
        if "viewport" in q:
            parts = _floats("viewport", q["viewport"], (2, 6))
            region = None
            if len(parts) == 6:
                sx, sy, sw, sh = (int(float(p)) for p in parts[2:])
                region = (sx, sy, sw, sh)
            viewport = rendering.Viewport(width=int(parts[0]), height=int(parts[1]), region=region)
        quality = int(q.get("quality", "90"))
    except ValueError as exc:
        raise BadRequest(N_("渲染参数有误：%(reason)s"), reason=str(exc)) from None
    if not 1 <= quality <= 100:
        raise BadRequest(N_("quality 须为 1 到 100，而非 %(quality)s"), quality=quality)
    return rendering.RenderSpec(
        media_type=media_type, window=window, viewport=viewport, quality=quality
    )


def _middle(objects: list[StoredObject]) -> StoredObject:
    first_series = [o for o in objects if o.series_instance_uid == objects[0].series_instance_uid]
    return first_series[len(first_series) // 2]


async def _render_one(
    request: web.Request,
    obj: StoredObject,
    number: int,
    spec: rendering.RenderSpec,
    thumbnail: int | None,
) -> bytes:
    data = await _read(request, obj)
    return await _in_pool(request, rendering.render, data, number, spec, thumbnail=thumbnail)


async def rendered(request: web.Request) -> web.Response:
    """A rendered instance or frame; for a study or series, every instance (multipart)."""
    objects = await _objects(request)
    single = "instance" in request.match_info
    if single:
        media = negotiate(request, _IMAGE_OFFERS).offer.media_type
    else:
        offers = (Offer("multipart/related", "image/jpeg"), Offer("multipart/related", "image/png"))
        media = negotiate(request, offers, default_part="image/jpeg").offer.part or "image/jpeg"
    spec = render_spec(request, media)
    if single:
        numbers = _frame_numbers(request.match_info.get("frames", "1"))
        if len(numbers) != 1:
            raise BadRequest(N_("每次只能渲染一帧"))
        image = await _render_one(request, objects[0], numbers[0], spec, None)
        return web.Response(body=image, headers={"Content-Type": media})
    images = await asyncio.gather(*(_render_one(request, o, 1, spec, None) for o in objects))
    base = base_url(request)
    return multipart_body(
        [
            (media, image, f"{_instance_url(base, request, o)}/rendered")
            for o, image in zip(objects, images, strict=True)
        ],
        media,
    )


async def thumbnail(request: web.Request) -> web.Response:
    """A small rendering of a study or series (its middle image) or an instance."""
    objects = await _objects(request)
    media = negotiate(request, _IMAGE_OFFERS).offer.media_type
    spec = render_spec(request, media)
    obj = objects[0] if "instance" in request.match_info else _middle(objects)
    number = _frame_numbers(request.match_info.get("frames", "1"))[0]
    image = await _render_one(request, obj, number, spec, None if spec.viewport else THUMBNAIL_SIZE)
    return web.Response(
        body=image, headers={"Content-Type": media, "Cache-Control": "private, max-age=3600"}
    )


# --- wiring ----------------------------------------------------------------------------------


def _pool_size() -> int:
    return max(1, min(4, (os.cpu_count() or 2)))


async def _render_pool(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = WorkPool(
        _pool_size(),
        memory_bytes=settings.work_memory_bytes,
        timeout_s=settings.work_timeout_s,
        name="render",
    )
    app[WORK_POOL] = pool
    # Start the workers now (each imports pydicom and opencv, about a second), not on the
    # first thumbnail a reader asks for.
    warming = asyncio.ensure_future(pool.warm())
    try:
        yield
    finally:
        warming.cancel()
        await asyncio.to_thread(pool.shutdown)


def add_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(_render_pool)
    r = app.router
    study = "/dicomweb/studies/{study}"
    series = study + "/series/{series}"
    instance = series + "/instances/{instance}"
    for path in (study, series, instance):
        r.add_get(path, retrieve)
        r.add_get(path + "/metadata", metadata)
        r.add_get(path + "/rendered", rendered)
        r.add_get(path + "/thumbnail", thumbnail)
    r.add_get(instance + "/frames/{frames}", frames)
    r.add_get(instance + "/frames/{frames}/rendered", rendered)
    r.add_get(instance + "/frames/{frames}/thumbnail", thumbnail)
    r.add_get(instance + "/bulk/{tag}", bulkdata)
