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

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from storage.records import Priority, UploadState
from teleradiology.core import uploads as rules
from teleradiology.core.errors import BadRequest
from teleradiology.core.uploads import MAX_QUESTION_CHARS
from teleradiology.http.context import INGESTOR, OBJECTS, POOL, SETTINGS, current_user
from teleradiology.http.problems import problem
from teleradiology.services import uploads
from teleradiology.services.intake import sending_facility
from teleradiology.services.uploads import Outcome, Received, SessionView, UploadRequest

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


def _session_json(found: SessionView) -> dict[str, Any]:
    session, done = found.session, found.progress
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


def _upload_request(body: dict[str, Any], max_size: int) -> UploadRequest:
    study = rules.study_uid(body.get("study_instance_uid"))
    items = rules.manifest(body.get("instances"), max_size)
    question = rules.question(body.get("question"))
    return UploadRequest(
        study_instance_uid=study,
        items=items,
        key=rules.resume_key(body.get("key"), study, items),
        priority=_urgency(body.get("urgency")),
        question=question,
    )


async def open_upload(request: web.Request) -> web.Response:
    """Open a session for one study, or resume the one opened with the same key."""
    user = current_user(request)
    pool = request.app[POOL]
    facility = await sending_facility(pool, user)
    body = await _json_object(request)
    asked = _upload_request(body, request.app[SETTINGS].max_upload_bytes)
    opened, created = await uploads.open_upload(pool, facility, user, asked)
    payload = _session_json(opened)
    return web.json_response(
        payload, status=201 if created else 200, headers={"Location": payload["links"]["self"]}
    )


async def list_uploads(request: web.Request) -> web.Response:
    """The facility's recent sessions (``?state=open`` for unfinished ones)."""
    user = current_user(request)
    await sending_facility(request.app[POOL], user)
    state_text = request.query.get("state")
    try:
        state = UploadState(state_text) if state_text else None
    except ValueError:
        raise BadRequest("state must be 'open' or 'committed'") from None
    found = await uploads.recent(request.app[POOL], user, state)
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
    user = current_user(request)
    pool = request.app[POOL]
    await sending_facility(pool, user)
    return web.json_response(_session_json(await uploads.view(pool, user, _id(request))))


def _id(request: web.Request) -> str:
    return request.match_info["id"]


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
        raise rules.too_large(request.content_length or 0, limit)
    buffer = bytearray()
    try:
        while chunk := await request.content.readany():
            buffer += chunk
            if len(buffer) > limit:
                raise rules.too_large(len(buffer), limit)
    except web.RequestPayloadError as exc:
        # A body that is not the gzip it says it is (or a connection cut mid-body).
        raise _BrokenBody(
            f"the body could not be read ({' '.join(str(exc).split())}): send it again, "
            "gzip-compressed only when it says Content-Encoding: gzip"
        ) from None
    return bytes(buffer)


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
    user = current_user(request)
    pool = request.app[POOL]
    facility = await sending_facility(pool, user)
    session = await uploads.session(pool, user, _id(request))
    sop = request.match_info["sop"]

    async def read(limit: int) -> bytes:
        return await _read_body(request, limit)

    received = await uploads.receive(
        pool,
        request.app[INGESTOR],
        request.app[OBJECTS],
        session,
        facility,
        sop,
        content_range=request.headers.get("Content-Range"),
        read=read,
    )
    return _answer(sop, received)


def _answer(sop: str, received: Received) -> web.Response:
    body: dict[str, Any] = {"sop_instance_uid": sop, "outcome": received.outcome.value}
    if received.outcome is Outcome.PARTIAL:
        body["received"] = [list(r) for r in received.held]
    return web.json_response(body, status=201 if received.outcome is Outcome.STORED else 200)


async def delete_instance(request: web.Request) -> web.Response:
    """Take an instance that will not be sent out of the manifest (it was refused, say)."""
    user = current_user(request)
    pool = request.app[POOL]
    await sending_facility(pool, user)
    session = await uploads.session(pool, user, _id(request))
    found = await uploads.remove(pool, request.app[OBJECTS], session, request.match_info["sop"])
    return web.json_response(_session_json(found))


async def commit_upload(request: web.Request) -> web.Response:
    """Every manifest instance stored: the study is complete now. Idempotent."""
    user = current_user(request)
    pool = request.app[POOL]
    facility = await sending_facility(pool, user)
    session = await uploads.session(pool, user, _id(request))
    return web.json_response(_session_json(await uploads.commit(pool, facility, session)))


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
