"""The resumable upload under /api/v1/uploads: a manifest, instances sent until none is
missing, and a commit that completes the study at once.

- ``POST /api/v1/uploads`` opens a session for one study with its manifest (SOP Instance UID,
  size and SHA-256 of each file as sent) and the clinical request (urgency, question). Opening
  again with the same ``key`` resumes that session (adding manifest lines it lacks); without a
  key, the key is the SHA-256 of the manifest.
- ``PUT /api/v1/uploads/{id}/instances/{sop}`` sends one instance: the whole file, or a byte
  range of it (``Content-Range: bytes a-b/size``, ranges of the file as in the manifest).
  Bodies may be gzip-compressed (``Content-Encoding: gzip``). The bytes are checked against
  the manifest, then take the one ingest path. Re-sending a stored instance answers success.
- ``GET /api/v1/uploads/{id}`` tells what is still missing (with the byte ranges held of an
  instance sent in parts); ``DELETE …/instances/{sop}`` takes an unsent instance out.
- ``POST /api/v1/uploads/{id}/commit`` checks every manifest instance is stored and marks the
  study ready: it is complete and routed at the next sweep, without waiting for a stable age.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from aiohttp import web

from storage import index, network, uploads
from storage.errors import ObjectNotFound
from storage.index import IndexOutcome
from storage.objects import ObjectStore
from storage.records import Facility, Priority, ReceivedVia, Role, User
from storage.uploads import ManifestItem, UploadSession, UploadState
from teleradiology.core.access import require_role
from teleradiology.core.dicom import instance_identity
from teleradiology.core.errors import BadRequest, NotFound
from teleradiology.http.context import INGESTOR, OBJECTS, POOL, SETTINGS, current_user
from teleradiology.http.problems import problem
from teleradiology.services.intake import Ingestor

log = logging.getLogger(__name__)

#: One request body (a whole instance or one part), decompressed: larger instances go in parts.
MAX_BODY_BYTES = 64 * 1024**2
MAX_MANIFEST_ITEMS = 50_000
MAX_QUESTION_CHARS = 2000
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _urgency(value: Any) -> Priority:
    if value in (None, "", "routine"):
        return Priority.MEDIUM
    if value == "urgent":
        return Priority.HIGH
    raise BadRequest(f"urgency must be 'routine' or 'urgent', not {value!r}")


def _urgency_name(priority: Priority) -> str:
    return "urgent" if priority is Priority.HIGH else "routine"


def _uid(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) > 64 or not _UID.fullmatch(value):
        raise BadRequest(f"{what} must be a DICOM UID (digits and dots, at most 64 characters)")
    return value


def _manifest(value: Any, max_size: int) -> list[ManifestItem]:
    if not isinstance(value, list) or not value:
        raise BadRequest(
            "'instances' must list each instance to send: "
            '[{"sop_instance_uid": …, "size": bytes, "sha256": hex}, …]'
        )
    if len(value) > MAX_MANIFEST_ITEMS:
        raise BadRequest(
            f"a manifest may list at most {MAX_MANIFEST_ITEMS} instances; split the study"
        )
    items: dict[str, ManifestItem] = {}
    for n, line in enumerate(value):
        if not isinstance(line, dict):
            raise BadRequest(f"instances[{n}] must be an object")
        size = line.get("size")
        if not isinstance(size, int) or isinstance(size, bool):
            raise BadRequest(f"instances[{n}].size must be the file's size in bytes")
        if size > max_size:
            raise web.HTTPRequestEntityTooLarge(
                max_size=max_size,
                actual_size=size,
                text=f"instances[{n}] is {size} bytes; an instance may be at most {max_size}",
            )
        try:
            item = ManifestItem(
                sop_instance_uid=str(line.get("sop_instance_uid", "")),
                size_bytes=size,
                sha256=str(line.get("sha256", "")).lower(),
            )
        except ValueError as exc:
            raise BadRequest(f"instances[{n}]: {exc}") from None
        earlier = items.get(item.sop_instance_uid)
        if earlier is not None and earlier != item:
            raise BadRequest(
                f"instance {item.sop_instance_uid} is listed twice with different files"
            )
        items[item.sop_instance_uid] = item
    return list(items.values())


def _manifest_key(study_uid: str, items: list[ManifestItem]) -> str:
    digest = hashlib.sha256(study_uid.encode())
    for i in sorted(items, key=lambda i: i.sop_instance_uid):
        digest.update(f"\n{i.sop_instance_uid} {i.size_bytes} {i.sha256}".encode())
    return "manifest-sha256:" + digest.hexdigest()


async def _clinic(request: web.Request) -> tuple[User, Facility]:
    user = current_user(request)
    require_role(user, Role.CLINIC)
    facility = await network.facility_by_id(request.app[POOL], user.facility_id)
    if facility is None:
        raise NotFound("your facility is no longer in the network")
    return user, facility


async def _session(request: web.Request, user: User) -> UploadSession:
    text = request.match_info["id"]
    try:
        public_id = UUID(text)
    except ValueError:
        raise NotFound(f"upload {text} not found") from None
    found = await uploads.session_by_id(request.app[POOL], public_id, user.facility_id)
    if found is None:
        raise NotFound(f"upload {text} not found; open a new one with POST /api/v1/uploads")
    return found


async def _session_json(request: web.Request, session: UploadSession) -> dict[str, Any]:
    done = await uploads.progress(request.app[POOL], session.id)
    base = f"/api/v1/uploads/{session.public_id}"
    return {
        "id": str(session.public_id),
        "key": session.client_key,
        "study_instance_uid": session.study_instance_uid,
        "state": session.state.value,
        "urgency": _urgency_name(session.priority),
        "question": session.clinical_question,
        "instances": done.total,
        "stored": done.stored,
        "total_bytes": done.total_bytes,
        "bodies_received": done.bodies_received,
        "missing": [
            {
                "sop_instance_uid": m.sop_instance_uid,
                "size": m.size_bytes,
                "sha256": m.sha256,
                "received": [list(r) for r in m.received],
            }
            for m in done.missing
        ],
        "created_at": _iso(session.created_at),
        "updated_at": _iso(session.updated_at),
        "committed_at": _iso(session.committed_at),
        "links": {
            "self": base,
            "instances": f"{base}/instances/{{sop_instance_uid}}",
            "commit": f"{base}/commit",
        },
    }


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


async def open_upload(request: web.Request) -> web.Response:
    """Open a session for one study, or resume the one opened with the same key."""
    user, facility = await _clinic(request)
    body = await _json_object(request)
    study_uid = _uid(body.get("study_instance_uid"), "study_instance_uid")
    items = _manifest(body.get("instances"), request.app[SETTINGS].max_upload_bytes)
    question = body.get("question")
    if question is not None and not isinstance(question, str):
        raise BadRequest("question must be text")
    if question is not None and len(question) > MAX_QUESTION_CHARS:
        raise BadRequest(f"the question may be at most {MAX_QUESTION_CHARS} characters")
    key = body.get("key") or _manifest_key(study_uid, items)
    if not isinstance(key, str) or len(key) > 200:
        raise BadRequest("key must be text of at most 200 characters")
    opened = await uploads.open_session(
        request.app[POOL],
        facility_id=facility.id,
        user_id=user.id,
        client_key=key,
        study_instance_uid=study_uid,
        priority=_urgency(body.get("urgency")),
        clinical_question=question or None,
        items=items,
    )
    if opened.created:
        log.info(
            "upload %s opened by %s (%d instances)",
            opened.session.public_id,
            facility.code,
            len(items),
        )
    payload = await _session_json(request, opened.session)
    return web.json_response(
        payload,
        status=201 if opened.created else 200,
        headers={"Location": payload["links"]["self"]},
    )


async def list_uploads(request: web.Request) -> web.Response:
    """The facility's recent sessions (``?state=open`` for unfinished ones)."""
    user, _ = await _clinic(request)
    state_text = request.query.get("state")
    try:
        state = UploadState(state_text) if state_text else None
    except ValueError:
        raise BadRequest("state must be 'open' or 'committed'") from None
    found = await uploads.sessions_of_facility(
        request.app[POOL], user.facility_id, state=state, limit=100
    )
    return web.json_response(
        {
            "uploads": [
                {
                    "id": str(s.public_id),
                    "key": s.client_key,
                    "study_instance_uid": s.study_instance_uid,
                    "state": s.state.value,
                    "updated_at": _iso(s.updated_at),
                }
                for s in found
            ]
        }
    )


async def get_upload(request: web.Request) -> web.Response:
    user, _ = await _clinic(request)
    session = await _session(request, user)
    return web.json_response(await _session_json(request, session))


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The decompressed body, refused with 413 as soon as it grows past ``limit``.

    aiohttp inflates a gzip body a bounded piece at a time as it is read, so a gzip bomb costs
    no more than ``limit`` bytes of memory before it is refused.
    """
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in _ENCODINGS:
        raise web.HTTPUnsupportedMediaType(
            text=f"Content-Encoding {encoding!r} is not accepted; send gzip or no encoding"
        )
    if encoding in ("", "identity") and (request.content_length or 0) > limit:
        raise _too_large(request.content_length or 0, limit)
    buffer = bytearray()
    try:
        while chunk := await request.content.readany():
            buffer += chunk
            if len(buffer) > limit:
                raise _too_large(len(buffer), limit)
    except web.RequestPayloadError as exc:
        # A body that is not the gzip it says it is (or a connection cut mid-body).
        raise _BrokenBody(
            f"the body could not be read ({' '.join(str(exc).split())}): send it again, "
            "gzip-compressed only when it says Content-Encoding: gzip"
        ) from None
    return bytes(buffer)


def _too_large(size: int, limit: int) -> web.HTTPRequestEntityTooLarge:
    return web.HTTPRequestEntityTooLarge(
        max_size=limit,
        actual_size=size,
        text=(
            f"the body decodes to more than {limit} bytes, more than the manifest or this "
            "request allows; send the file as listed in the manifest (larger instances in "
            f"parts of at most {MAX_BODY_BYTES} bytes with Content-Range)"
        ),
    )


def _content_range(header: str, size: int) -> tuple[int, int]:
    match = _CONTENT_RANGE.fullmatch(header.strip())
    if match is None:
        raise BadRequest(f"Content-Range {header!r} must look like 'bytes 0-1048575/{size}'")
    start, last, total = (int(g) for g in match.groups())
    if total != size:
        raise BadRequest(f"Content-Range says the file has {total} bytes, the manifest {size}")
    if not start <= last < size:
        raise BadRequest(f"Content-Range {header!r} is outside the file's {size} bytes")
    if last - start + 1 > MAX_BODY_BYTES:
        raise _too_large(last - start + 1, MAX_BODY_BYTES)
    return start, last + 1


class _BrokenBody(Exception):
    """The request body cannot be read to its end; the connection cannot be reused."""


async def put_instance(request: web.Request) -> web.Response:
    """Receive one instance, or one byte range of it; idempotent."""
    try:
        return await _put_instance(request)
    except _BrokenBody as exc:
        response = problem(400, str(exc))
        response.force_close()
        return response


async def _put_instance(request: web.Request) -> web.Response:
    user, facility = await _clinic(request)
    session = await _session(request, user)
    sop = request.match_info["sop"]
    pool = request.app[POOL]
    item = await uploads.item(pool, session.id, sop)
    if item is None:
        raise NotFound(
            f"instance {sop} is not in the manifest of upload {session.public_id}; "
            "add it by opening the upload again with the same key"
        )
    if item.stored:
        # Sent before (the answer was lost on the way back): success, stored once.
        return await _answer(request, session, sop, "already stored", 200)
    header = request.headers.get("Content-Range")
    if header is None:
        data = await _read_body(request, min(item.size_bytes, MAX_BODY_BYTES))
        _check_file(data, item.size_bytes, item.sha256, sop)
        response = await _ingest(request, session, facility, sop, data)
        await _collect(pool, request.app[OBJECTS], await uploads.drop_parts(pool, session.id, sop))
        return response
    start, end = _content_range(header, item.size_bytes)
    chunk = await _read_body(request, end - start)
    if len(chunk) != end - start:
        raise BadRequest(
            f"received {len(chunk)} bytes for the range {start}-{end - 1} "
            f"({end - start} bytes); the transfer was cut: send this part again"
        )
    objects = request.app[OBJECTS]
    key = await objects.put(chunk)  # durable before the part is acknowledged
    replaced = await uploads.add_part(
        pool, session.id, sop, start_byte=start, object_key=key, length_bytes=end - start
    )
    if replaced is not None:
        await _collect(pool, objects, [replaced])
    held = await uploads.parts(pool, session.id, sop)
    assembled = await _assemble(pool, session.id, sop, objects, held, item.size_bytes)
    if assembled is None:
        return await _answer(request, session, sop, "partial", 200)
    data = assembled
    try:
        _check_file(data, item.size_bytes, item.sha256, sop)
    except BadRequest:
        await _collect(pool, objects, await uploads.drop_parts(pool, session.id, sop))
        raise BadRequest(
            f"the parts of instance {sop} do not add up to the file in the manifest "
            "(size or SHA-256 differ); they were discarded: send the instance again"
        ) from None
    response = await _ingest(request, session, facility, sop, data)
    await _collect(pool, objects, await uploads.drop_parts(pool, session.id, sop))
    return response


async def _assemble(
    pool: Any, session_id: int, sop: str, objects: ObjectStore, held: list[uploads.Part], size: int
) -> bytes | None:
    """The whole file when the parts cover it, else None."""
    covered = 0
    for part in held:
        if part.start_byte > covered:
            return None
        covered = max(covered, part.end_byte)
    if covered < size:
        return None
    out = bytearray(size)
    for part in held:
        try:
            piece = await objects.get(part.object_key)
        except ObjectNotFound:
            # Collected by a concurrent upload of the same bytes: that part must come again.
            await uploads.forget_part(pool, session_id, sop, part.start_byte)
            return None
        out[part.start_byte : part.end_byte] = piece[: part.length_bytes]
    return bytes(out)


async def _collect(pool: Any, objects: ObjectStore, keys: list[str]) -> None:
    for key in set(keys):
        if not await uploads.part_key_referenced(pool, key):
            await objects.delete(key)


def _check_file(data: bytes, size: int, sha256: str, sop: str) -> None:
    if len(data) != size:
        raise BadRequest(
            f"instance {sop}: received {len(data)} bytes, the manifest says {size}; the "
            "transfer was cut or the file changed: send it again"
        )
    if hashlib.sha256(data).hexdigest() != sha256:
        raise BadRequest(
            f"instance {sop}: the SHA-256 of what arrived differs from the manifest; the file "
            "changed since the manifest was made: open a new upload"
        )


async def _ingest(
    request: web.Request, session: UploadSession, facility: Facility, sop: str, data: bytes
) -> web.Response:
    ident = await asyncio.to_thread(instance_identity, data)
    if ident is None:
        raise BadRequest(f"instance {sop}: the file is not a DICOM instance")
    if ident.sop_instance_uid != sop:
        raise BadRequest(
            f"the file sent as {sop} is instance {ident.sop_instance_uid}; "
            "send each file to its own SOP Instance UID"
        )
    if ident.study_instance_uid != session.study_instance_uid:
        raise BadRequest(
            f"instance {sop} belongs to study {ident.study_instance_uid}, this upload to "
            f"{session.study_instance_uid}: open one upload per study"
        )
    ingestor: Ingestor = request.app[INGESTOR]
    stored = await ingestor.ingest(
        data,
        facility=facility,
        via=ReceivedVia.UPLOAD,
        priority=session.priority,
        clinical_question=session.clinical_question,
    )
    duplicate = stored.outcome is IndexOutcome.DUPLICATE
    await uploads.mark_item_stored(request.app[POOL], session.id, sop, duplicate=duplicate)
    return await _answer(
        request, session, sop, "duplicate" if duplicate else "stored", 200 if duplicate else 201
    )


async def _answer(
    request: web.Request, session: UploadSession, sop: str, outcome: str, status: int
) -> web.Response:
    body: dict[str, Any] = {"sop_instance_uid": sop, "outcome": outcome}
    if outcome == "partial":
        done = await uploads.progress(request.app[POOL], session.id)
        held = next((m.received for m in done.missing if m.sop_instance_uid == sop), ())
        body["received"] = [list(r) for r in held]
    return web.json_response(body, status=status)


async def delete_instance(request: web.Request) -> web.Response:
    """Take an instance that will not be sent out of the manifest (it was refused, say)."""
    user, _ = await _clinic(request)
    session = await _session(request, user)
    if session.state is UploadState.COMMITTED:
        raise web.HTTPConflict(text=f"upload {session.public_id} is committed; nothing to remove")
    keys = await uploads.remove_item(request.app[POOL], session.id, request.match_info["sop"])
    await _collect(request.app[POOL], request.app[OBJECTS], keys)
    return web.json_response(await _session_json(request, session))


async def commit_upload(request: web.Request) -> web.Response:
    """Every manifest instance stored: the study is complete now. Idempotent."""
    user, facility = await _clinic(request)
    session = await _session(request, user)
    pool = request.app[POOL]
    if session.state is UploadState.OPEN:
        done = await uploads.progress(pool, session.id)
        if done.missing:
            raise web.HTTPConflict(
                text=(
                    f"{len(done.missing)} of {done.total} instances are still missing (first: "
                    f"{done.missing[0].sop_instance_uid}); send them "
                    f"(GET /api/v1/uploads/{session.public_id} lists them) and commit again"
                )
            )
        # Ready first, then committed: a retry after a failure in between does both again.
        await index.mark_study_ready(pool, session.study_instance_uid, facility.id)
        if await uploads.commit(pool, session.id) is None:
            raise web.HTTPConflict(text="instances were added while committing; commit again")
        log.info("upload %s committed by %s", session.public_id, facility.code)
        refreshed = await uploads.session_by_id(pool, session.public_id, facility.id)
        session = refreshed or session
    return web.json_response(await _session_json(request, session))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/uploads", open_upload)
    r.add_get("/api/v1/uploads", list_uploads)
    r.add_get("/api/v1/uploads/{id}", get_upload)
    r.add_post("/api/v1/uploads/{id}/commit", commit_upload)
    r.add_put("/api/v1/uploads/{id}/instances/{sop}", put_instance)
    r.add_delete("/api/v1/uploads/{id}/instances/{sop}", delete_instance)


def _upload_op(summary: str, ok: str, *, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    problem = {"$ref": "#/components/responses/Problem"}
    responses: dict[str, Any] = {
        ok: {"description": "success", "content": {"application/json": {}}},
        **{code: problem for code in ("400", "401", "403", "404", "409", *extra)},
    }
    return {"summary": summary, "tags": ["upload"], "responses": responses}


def openapi_paths() -> dict[str, Any]:
    """The resumable upload's part of the OpenAPI document."""
    session_id = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    sop = {"name": "sop", "in": "path", "required": True, "schema": {"type": "string"}}
    put = _upload_op(
        "Send one instance (201 stored, 200 already stored or a part held); idempotent. "
        "Content-Range: bytes a-b/size sends a byte range of the file (larger than 64 MB: "
        "required); Content-Encoding: gzip is accepted",
        "201",
        extra=("413", "415"),
    )
    put["parameters"] = [sop]
    put["requestBody"] = {
        "required": True,
        "content": {"application/dicom": {"schema": {"type": "string", "format": "binary"}}},
    }
    return {
        "/api/v1/uploads": {
            "post": {
                **_upload_op(
                    "Open a session for one study with its manifest (201), or resume the one "
                    "opened with the same key (200), adding manifest lines it lacks",
                    "201",
                    extra=("413",),
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/UploadIn"}}
                    },
                },
            },
            "get": _upload_op("The facility's upload sessions (?state=open|committed)", "200"),
        },
        "/api/v1/uploads/{id}": {
            "parameters": session_id,
            "get": _upload_op(
                "A session: its state and the instances still missing (with the byte ranges "
                "held of those sent in parts)",
                "200",
            ),
        },
        "/api/v1/uploads/{id}/instances/{sop}": {
            "parameters": session_id,
            "put": put,
            "delete": {
                **_upload_op("Take an unsent instance out of the manifest", "200"),
                "parameters": [sop],
            },
        },
        "/api/v1/uploads/{id}/commit": {
            "parameters": session_id,
            "post": _upload_op(
                "Every manifest instance stored: the study is complete now (409 lists what is "
                "missing); idempotent",
                "200",
            ),
        },
    }


def openapi_schemas() -> dict[str, Any]:
    return {
        "UploadIn": {
            "type": "object",
            "required": ["study_instance_uid", "instances"],
            "properties": {
                "key": {
                    "type": "string",
                    "maxLength": 200,
                    "description": "resume key; default: the SHA-256 of the manifest",
                },
                "study_instance_uid": {"type": "string"},
                "urgency": {"enum": ["routine", "urgent"], "default": "routine"},
                "question": {"type": "string", "maxLength": MAX_QUESTION_CHARS},
                "instances": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["sop_instance_uid", "size", "sha256"],
                        "properties": {
                            "sop_instance_uid": {"type": "string"},
                            "size": {"type": "integer", "description": "bytes of the file"},
                            "sha256": {"type": "string", "description": "of the file as sent"},
                        },
                    },
                },
            },
        }
    }
