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

from aiohttp import web

from storage.records import Priority
from teleradiology.core import uploads as rules
from teleradiology.core.errors import UnsupportedMediaType
from teleradiology.core.language import N_, Phrase
from teleradiology.http.api.endpoints import Routes, reply
from teleradiology.http.api.models.ecg import (
    InstancePath,
    InstanceReceived,
    SessionOut,
    SessionPath,
    UploadIn,
    UploadListed,
    UploadsOut,
    UploadsQuery,
)
from teleradiology.http.context import INGESTOR, OBJECTS, POOL, SETTINGS, current_user
from teleradiology.http.params import body_of, path_of, query_of
from teleradiology.http.problems import caller_language, problem
from teleradiology.services import uploads
from teleradiology.services.intake import sending_facility
from teleradiology.services.uploads import Outcome, Received, UploadRequest

_ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})
_DICOM_BODY = {"application/dicom": {"schema": {"type": "string", "format": "binary"}}}

routes = Routes(tag="upload")


def _upload_request(body: UploadIn, max_size: int) -> UploadRequest:
    sent = body.model_dump(mode="json")
    study = rules.study_uid(sent["study_instance_uid"])
    items = rules.manifest(sent["instances"], max_size)
    return UploadRequest(
        study_instance_uid=study,
        items=items,
        key=rules.resume_key(sent["key"], study, items),
        priority=Priority.HIGH if body.urgency == "urgent" else Priority.MEDIUM,
        question=rules.question(sent["question"]),
    )


@routes.post(
    "/api/v1/uploads",
    body=UploadIn,
    answer=SessionOut,
    status=201,
    also=(200,),
    problems=(400, 401, 403, 404, 409, 413),
    summary="Open a session for one study with its manifest (201), or resume the one opened "
    "with the same key (200), adding manifest lines it lacks",
)
async def open_upload(request: web.Request) -> web.Response:
    """Open a session for one study, or resume the one opened with the same key."""
    user = current_user(request)
    pool = request.app[POOL]
    facility = await sending_facility(pool, user)
    body = await body_of(request, UploadIn)
    asked = _upload_request(body, request.app[SETTINGS].max_instance_bytes)
    opened, created = await uploads.open_upload(pool, facility, user, asked)
    answer = SessionOut.of(opened)
    return reply(answer, status=201 if created else 200, headers={"Location": answer.links.self})


@routes.get(
    "/api/v1/uploads",
    query=UploadsQuery,
    answer=UploadsOut,
    summary="The facility's upload sessions (?state=open|committed)",
)
async def list_uploads(request: web.Request) -> web.Response:
    """The facility's recent sessions (``?state=open`` for unfinished ones)."""
    user = current_user(request)
    await sending_facility(request.app[POOL], user)
    state = query_of(request, UploadsQuery).state
    found = await uploads.recent(request.app[POOL], user, state)
    return reply(
        UploadsOut(
            uploads=[
                UploadListed(
                    id=str(s.public_id),
                    key=s.client_key,
                    study_instance_uid=s.study_instance_uid,
                    state=s.state,
                    updated_at=s.updated_at,
                )
                for s in found
            ]
        )
    )


@routes.get(
    "/api/v1/uploads/{id}",
    path=SessionPath,
    answer=SessionOut,
    summary="A session: its state and the instances still missing (with the byte ranges held "
    "of those sent in parts)",
)
async def get_upload(request: web.Request) -> web.Response:
    user = current_user(request)
    pool = request.app[POOL]
    await sending_facility(pool, user)
    return reply(SessionOut.of(await uploads.view(pool, user, _id(request))))


def _id(request: web.Request) -> str:
    return path_of(request, SessionPath).id


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The decompressed body, refused with 413 as soon as it grows past ``limit``.

    aiohttp inflates a gzip body a bounded piece at a time as it is read, so a gzip bomb costs
    no more than ``limit`` bytes of memory before it is refused.
    """
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in _ENCODINGS:
        raise UnsupportedMediaType(
            N_("不接受 Content-Encoding %(encoding)r；请用 gzip 或不编码"), encoding=encoding
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
        raise _BrokenBody(" ".join(str(exc).split())) from None
    return bytes(buffer)


class _BrokenBody(Exception):
    """The request body cannot be read to its end; the connection cannot be reused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: A body that cannot be read to its end, and what to send instead.
BROKEN_BODY = N_(
    "正文无法读取（%(reason)s）：请重发，仅在声明 Content-Encoding: gzip 时才用 gzip 压缩"
)


@routes.put(
    "/api/v1/uploads/{id}/instances/{sop}",
    path=InstancePath,
    body_media=_DICOM_BODY,
    answer=InstanceReceived,
    status=201,
    also=(200,),
    problems=(400, 401, 403, 404, 409, 413, 415),
    summary="Send one instance (201 stored, 200 already stored or a part held); idempotent. "
    "Content-Range: bytes a-b/size sends a byte range of the file (larger than 64 MB: "
    "required); Content-Encoding: gzip is accepted",
)
async def put_instance(request: web.Request) -> web.Response:
    """Receive one instance, or one byte range of it; idempotent."""
    try:
        return await _put_instance(request)
    except _BrokenBody as exc:
        said = Phrase(BROKEN_BODY, {"reason": exc.reason}).say(await caller_language(request))
        response = problem(400, said)
        response.force_close()
        return response


async def _put_instance(request: web.Request) -> web.Response:
    user = current_user(request)
    pool = request.app[POOL]
    facility = await sending_facility(pool, user)
    session = await uploads.session(pool, user, _id(request))
    sop = path_of(request, InstancePath).sop

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
    status = 201 if received.outcome is Outcome.STORED else 200
    return reply(InstanceReceived.of(sop, received), status=status, exclude_none=True)


@routes.delete(
    "/api/v1/uploads/{id}/instances/{sop}",
    path=InstancePath,
    answer=SessionOut,
    summary="Take an unsent instance out of the manifest",
)
async def delete_instance(request: web.Request) -> web.Response:
    """Take an instance that will not be sent out of the manifest (it was refused, say)."""
    user = current_user(request)
    pool = request.app[POOL]
    await sending_facility(pool, user)
    session = await uploads.session(pool, user, _id(request))
    sop = path_of(request, InstancePath).sop
    found = await uploads.remove(pool, request.app[OBJECTS], session, sop)
    return reply(SessionOut.of(found))


@routes.post(
    "/api/v1/uploads/{id}/commit",
    path=SessionPath,
    answer=SessionOut,
    summary="Every manifest instance stored: the study is complete now (409 lists what is "
    "missing); idempotent",
)
async def commit_upload(request: web.Request) -> web.Response:
    """Every manifest instance stored: the study is complete now. Idempotent."""
    user = current_user(request)
    pool = request.app[POOL]
    facility = await sending_facility(pool, user)
    session = await uploads.session(pool, user, _id(request))
    return reply(SessionOut.of(await uploads.commit(pool, facility, session)))


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
