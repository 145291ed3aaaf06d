"""The workstation side of the resumable upload (``telemed upload``), also used by the forwarder.

The client keeps no state of its own: the server's session is the state. Files are grouped
by study; each study's manifest (SOP Instance UID, size, SHA-256 of each file) is hashed into
the session key, so running the same command again finds the same session, asks what is
still missing, and sends only that. Bodies are gzip-compressed when that saves bytes;
instances larger than the part size go in parts (``Content-Range``), and a resumed upload
sends only the parts the server does not hold.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import random
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import ip_address
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import aiohttp

from teleradiology.core.dicom import instance_identity
from teleradiology.core.errors import SEND_AGAIN
from teleradiology.core.language import N_, Language, Phrase, terminal_language

#: Media Storage Directory (DICOMDIR): an index of a folder, not an instance to send.
DEFAULT_PART_BYTES = 8 * 1024**2
#: Compression is kept only when it saves at least this fraction of the bytes.
_WORTH_COMPRESSING = 0.9
_SEND_CHUNK = 16 * 1024


class ExitCode(IntEnum):
    """``telemed upload`` exit statuses."""

    OK = 0
    #: No DICOM file to send, an unreadable file, or bad options.
    BAD_INPUT = 2
    #: The server could not be reached, or kept failing, within the retry time: run again.
    UNREACHABLE = 3
    #: The server refused something (token, an instance it will not store); see the message.
    REFUSED = 4


#: What the command says of its files and studies.
SKIPPED = N_("跳过了 %(n)s 个不是 DICOM 实例的文件")
STUDY_SENT = N_(
    "检查 %(uid)s：%(n)s 个实例，已发送 %(sent)s 个，服务器上已有 %(there)s 个，%(done)s"
)
REFUSED = N_("telemed upload：服务器拒收了 %(n)s 个实例；其检查未提交")


class UploadError(Exception):
    """Something could not be sent; the message says what and what to do (``phrase``, said
    in the terminal's language; ``str()`` in English)."""

    def __init__(self, message: str | Phrase, code: ExitCode) -> None:
        # a text (the server's own words, already in its reader's language) is said as it is
        self.phrase = (
            message if isinstance(message, Phrase) else Phrase("%(text)s", {"text": message})
        )
        super().__init__(self.phrase.say(Language.EN))
        self.code = code


class Refused(UploadError):
    """The server answered with a 4xx problem that a retry will not fix."""

    def __init__(self, message: str | Phrase, status: int) -> None:
        super().__init__(message, ExitCode.REFUSED)
        self.status = status


@dataclass(frozen=True, kw_only=True)
class LocalInstance:
    path: Path
    sop_instance_uid: str
    size_bytes: int
    sha256: str

    def manifest_line(self) -> dict[str, Any]:
        return {
            "sop_instance_uid": self.sop_instance_uid,
            "size": self.size_bytes,
            "sha256": self.sha256,
        }


@dataclass(frozen=True, kw_only=True)
class LocalStudy:
    study_instance_uid: str
    instances: tuple[LocalInstance, ...]

    @property
    def key(self) -> str:
        """The session key: the same files always give the same key, so a rerun resumes."""
        digest = hashlib.sha256(self.study_instance_uid.encode())
        for inst in sorted(self.instances, key=lambda i: i.sop_instance_uid):
            digest.update(f"\n{inst.sop_instance_uid} {inst.size_bytes} {inst.sha256}".encode())
        return "manifest-sha256:" + digest.hexdigest()

    @property
    def total_bytes(self) -> int:
        return sum(i.size_bytes for i in self.instances)


def check_server_url(url: str, *, allow_http: bool = False) -> None:
    """Refuse a server URL that would send the bearer token in the clear: ``http://`` is
    only for this machine (loopback) unless ``allow_http`` (a link already encrypted, such
    as a VPN, decided by the operator). Raises ValueError saying what to do."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--server {url!r} must be an http(s) URL such as https://county.example")
    if parts.scheme == "https" or allow_http or _loopback(parts.hostname):
        return
    raise ValueError(
        f"--server {url!r}: plain http would send the token and the patients' images in the "
        "clear; use the server's https:// address (or --allow-http on a link that is "
        "already encrypted, such as a VPN)"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def file_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while block := f.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def _walk(paths: Sequence[Path]) -> tuple[list[Path], list[Phrase]]:
    """Files named and files under folders named (sorted); plus problems with named paths."""
    files: list[Path] = []
    problems: list[Phrase] = []
    for path in paths:
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs.sort()
                files.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Phrase(N_("%(path)s：没有这个文件或文件夹"), {"path": path}))
    return files, problems


def scan(paths: Sequence[Path]) -> tuple[list[LocalStudy], list[Path]]:
    """Read every DICOM file under ``paths``, grouped by study; also the files skipped as not
    DICOM instances (DICOMDIR, other files in the folders).

    Raises
    ------
    UploadError
        A named path does not exist or cannot be read, or a named file is not DICOM.
    """
    files, problems = _walk(paths)
    if problems:
        raise UploadError(Phrase("%(problems)s", {"problems": problems}), ExitCode.BAD_INPUT)
    named = {p.resolve() for p in paths if p.is_file()}
    by_study: dict[str, dict[str, LocalInstance]] = {}
    skipped: list[Path] = []
    for path in files:
        try:
            ident = instance_identity(path)
            size, sha = file_sha256(path) if ident else (0, "")
        except OSError as exc:
            raise UploadError(
                Phrase(
                    N_("%(path)s：无法读取（%(reason)s）"), {"path": path, "reason": exc.strerror}
                ),
                ExitCode.BAD_INPUT,
            ) from None
        if ident is None:
            if path.resolve() in named:
                raise UploadError(
                    Phrase(N_("%(path)s 不是 DICOM 实例"), {"path": path}), ExitCode.BAD_INPUT
                )
            skipped.append(path)
            continue
        study = by_study.setdefault(ident.study_instance_uid, {})
        earlier = study.get(ident.sop_instance_uid)
        if earlier is not None and earlier.sha256 != sha:
            raise UploadError(
                Phrase(
                    N_("%(first)s 和 %(second)s 是同一实例 %(sop)s，内容却不同；请移除其中一个"),
                    {"first": earlier.path, "second": path, "sop": ident.sop_instance_uid},
                ),
                ExitCode.BAD_INPUT,
            )
        study[ident.sop_instance_uid] = LocalInstance(
            path=path, sop_instance_uid=ident.sop_instance_uid, size_bytes=size, sha256=sha
        )
    studies = [
        LocalStudy(study_instance_uid=uid, instances=tuple(found.values()))
        for uid, found in sorted(by_study.items())
    ]
    return studies, skipped


def compress(data: bytes) -> bytes | None:
    """gzip of ``data`` when that saves enough to be worth it, else None."""
    packed = gzip.compress(data, compresslevel=6, mtime=0)
    return packed if len(packed) < len(data) * _WORTH_COMPRESSING else None


class RateLimit:
    """A token bucket shared by every request, so a clinic's other traffic keeps a share."""

    def __init__(self, bytes_per_s: float) -> None:
        self._rate = bytes_per_s
        self._allowance = 0.0
        self._last = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self, n: int) -> None:
        async with self._lock:
            now = time.monotonic()
            self._allowance = min(self._rate, self._allowance + (now - self._last) * self._rate)
            self._last = now
            self._allowance -= n
            if self._allowance < 0:
                await asyncio.sleep(-self._allowance / self._rate)


@dataclass
class Progress:
    """What has gone over the wire, drawn as one line on a terminal."""

    stream: TextIO | None
    total_bytes: int = 0
    total_instances: int = 0
    sent_bytes: int = 0
    done_instances: int = 0
    wire_bytes: int = 0
    started: float = field(default_factory=time.monotonic)
    _drawn: float = 0.0
    note: str = ""

    def add(self, sent: int = 0, wire: int = 0, done: int = 0) -> None:
        self.sent_bytes += sent
        self.wire_bytes += wire
        self.done_instances += done
        if done:
            self.note = ""  # an instance went through: the link is up again
        self.draw()

    def draw(self, *, force: bool = False) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        share = self.sent_bytes / self.total_bytes if self.total_bytes else 1.0
        width = 20
        filled = int(width * min(share, 1.0))
        rate = self.wire_bytes / max(now - self.started, 1e-3)
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {share:4.0%} "
            f"{self.done_instances}/{self.total_instances} "
            f"{_mb(self.sent_bytes)}/{_mb(self.total_bytes)} MB {rate / 1024:.0f} KiB/s {self.note}"
        )
        # One terminal line, redrawn in place: never wider than 79 columns.
        self.stream.write("\r" + line[:79].ljust(79))
        self.stream.flush()

    def finish(self) -> None:
        if self.stream is not None:
            self.draw(force=True)
            self.stream.write("\n")
            self.stream.flush()


def _mb(n: int) -> str:
    return f"{n / 1024**2:.1f}"


@dataclass(frozen=True, kw_only=True)
class Retry:
    """Backoff for connection errors, timeouts, 5xx, 429 and "send again": retried until
    ``give_up_s``."""

    give_up_s: float = 600.0
    first_s: float = 0.5
    max_s: float = 30.0

    def delay(self, attempt: int) -> float:
        base = min(self.max_s, self.first_s * 2**attempt)
        return base * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security


class UploadClient:
    """The resumable upload protocol of ``/api/v1/uploads``, with retries and backoff."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str,
        *,
        retry: Retry | None = None,
        rate: RateLimit | None = None,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self._http = session
        self._base = base_url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {token}"}
        self._retry = retry or Retry()
        self._rate = rate
        self._on_retry = on_retry
        #: Bodies this client had accepted (the server answered 2xx to a PUT with a body).
        self.bodies_sent = 0

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: Callable[[], Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One call, retried on connection errors, timeouts, 5xx, 429 and the server's "send
        again"; any other 4xx raises Refused (final)."""
        url = f"{self._base}{path}"
        deadline = time.monotonic() + self._retry.give_up_s
        attempt = 0
        while True:
            reason: str
            try:
                async with self._http.request(
                    method,
                    url,
                    json=json_body,
                    data=body() if body is not None else None,
                    headers={**self._auth, **(headers or {})},
                ) as response:
                    text = await response.text()
                    status = response.status
                    if status < 400:
                        return status, json.loads(text) if text else None
                    detail = _problem_detail(text) or response.reason or ""
                    if status >= 500 or status in (408, 429) or asks_again(text):
                        reason = f"the server answered {status}: {detail}"
                    else:
                        raise Refused(detail or f"the server answered {status}", status)
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                reason = f"connection to {self._base} failed ({type(exc).__name__}: {exc})"
            if time.monotonic() + self._retry.delay(attempt) > deadline:
                raise UploadError(
                    f"gave up after {self._retry.give_up_s:.0f} s: {reason}; "
                    "run the same command again to resume where it stopped",
                    ExitCode.UNREACHABLE,
                )
            if self._on_retry is not None:
                self._on_retry(reason)
            await asyncio.sleep(self._retry.delay(attempt))
            attempt += 1

    async def open(
        self,
        *,
        key: str,
        study_instance_uid: str,
        instances: Iterable[LocalInstance],
        urgency: str = "routine",
        question: str | None = None,
    ) -> dict[str, Any]:
        """Open or resume the session under ``key``; the session with what is missing."""
        _, session = await self._call(
            "POST",
            "/api/v1/uploads",
            json_body={
                "key": key,
                "study_instance_uid": study_instance_uid,
                "urgency": urgency,
                "question": question,
                "instances": [i.manifest_line() for i in instances],
            },
        )
        result: dict[str, Any] = session
        return result

    async def status(self, session_id: str) -> dict[str, Any]:
        _, session = await self._call("GET", f"/api/v1/uploads/{session_id}")
        result: dict[str, Any] = session
        return result

    async def commit(self, session_id: str) -> dict[str, Any]:
        _, session = await self._call("POST", f"/api/v1/uploads/{session_id}/commit")
        result: dict[str, Any] = session
        return result

    async def send_ecg(
        self, files: Sequence[tuple[str, bytes]], *, urgency: str = "routine"
    ) -> tuple[int, dict[str, Any]]:
        """Upload one ECG file (or a WFDB record: its ``.hea`` and signal files), as named,
        to ``POST /api/v1/ecg``: the status (201 stored, 200 the same file sent before) and
        the answer. Retried as every call is; Refused when the server will not take it."""

        def form() -> aiohttp.FormData:
            body = aiohttp.FormData()
            body.add_field("urgency", urgency)
            for name, data in files:
                body.add_field("file", data, filename=name, content_type="application/octet-stream")
            return body

        status, answer = await self._call("POST", "/api/v1/ecg", body=form)
        return status, dict(answer or {})

    async def remove(self, session_id: str, sop_instance_uid: str) -> None:
        """Take an instance that will not be sent out of the session's manifest."""
        await self._call("DELETE", f"/api/v1/uploads/{session_id}/instances/{sop_instance_uid}")

    async def send(
        self,
        session_id: str,
        instance: LocalInstance,
        *,
        received: Sequence[Sequence[int]] = (),
        part_bytes: int = DEFAULT_PART_BYTES,
        progress: Progress | None = None,
        read: Callable[[Path], bytes] | None = None,
    ) -> str:
        """Send one instance (in parts when large, skipping parts the server holds); returns
        the server's outcome (``stored``, ``duplicate``, ``already stored``)."""
        data = await asyncio.to_thread(read or Path.read_bytes, instance.path)
        if len(data) != instance.size_bytes or hashlib.sha256(data).hexdigest() != instance.sha256:
            raise UploadError(
                Phrase(N_("%(path)s 在发送过程中被改动；请重新上传"), {"path": instance.path}),
                ExitCode.BAD_INPUT,
            )
        path = f"/api/v1/uploads/{session_id}/instances/{instance.sop_instance_uid}"
        if len(data) <= part_bytes:
            outcome = await self._put(path, data, None, progress)
        else:
            outcome = "partial"
            for start in range(0, len(data), part_bytes):
                end = min(start + part_bytes, len(data))
                if any(a <= start and end <= b for a, b in received):
                    if progress is not None:
                        progress.add(sent=end - start)
                    continue
                outcome = await self._put(path, data[start:end], (start, end, len(data)), progress)
            for _ in range(3):
                if outcome != "partial":
                    break
                # Not assembled yet: every part was there already, or one was lost on the
                # server. Send what it lacks; the last part sent assembles the instance.
                held = await self._held(session_id, instance.sop_instance_uid)
                gaps = _gaps(held, len(data)) or [(len(data) - 1, len(data))]
                for start, end in gaps:
                    part = (start, end, len(data))
                    outcome = await self._put(path, data[start:end], part, None)
        if progress is not None:
            progress.add(done=1)
        return outcome

    async def _held(self, session_id: str, sop_instance_uid: str) -> list[list[int]]:
        status = await self.status(session_id)
        for item in status["missing"]:
            if item["sop_instance_uid"] == sop_instance_uid:
                received: list[list[int]] = item.get("received", [])
                return received
        return [[0, 2**62]]  # not missing: stored

    async def _put(
        self, path: str, data: bytes, part: tuple[int, int, int] | None, progress: Progress | None
    ) -> str:
        packed = await asyncio.to_thread(compress, data)
        wire = packed if packed is not None else data
        headers = {"Content-Type": "application/dicom"}
        if packed is not None:
            headers["Content-Encoding"] = "gzip"
        if part is not None:
            start, end, total = part
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{total}"
        sent = 0

        def body() -> Any:
            nonlocal sent
            if progress is not None and sent:
                progress.add(sent=-sent)  # a retry starts the body again
            sent = 0
            return self._stream(wire, len(data), progress, lambda n: _add(n))

        def _add(n: int) -> None:
            nonlocal sent
            sent += n

        _, answer = await self._call("PUT", path, body=body, headers=headers)
        self.bodies_sent += 1
        outcome: str = (answer or {}).get("outcome", "stored")
        return outcome

    async def _stream(
        self, wire: bytes, raw_len: int, progress: Progress | None, count: Callable[[int], None]
    ) -> AsyncIterator[bytes]:
        scale = raw_len / max(len(wire), 1)
        for offset in range(0, len(wire), _SEND_CHUNK):
            chunk = wire[offset : offset + _SEND_CHUNK]
            if self._rate is not None:
                await self._rate.take(len(chunk))
            raw = round(len(chunk) * scale)
            count(raw)
            if progress is not None:
                progress.add(sent=raw, wire=len(chunk))
            yield chunk


def _gaps(held: Sequence[Sequence[int]], size: int) -> list[tuple[int, int]]:
    """The byte ranges of [0, size) not covered by ``held`` ([start, end) pairs)."""
    gaps: list[tuple[int, int]] = []
    at = 0
    for start, end in sorted((a, b) for a, b in held):
        if start > at:
            gaps.append((at, min(start, size)))
        at = max(at, end)
    if at < size:
        gaps.append((at, size))
    return gaps


def asks_again(text: str) -> bool:
    """Whether a refusal is the server's "send the same request again" (a cut transfer)."""
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("type") == SEND_AGAIN


def _problem_detail(text: str) -> str | None:
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:300] or None
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title")
        return str(detail) if detail else None
    return None


@dataclass
class StudyResult:
    study_instance_uid: str
    instances: int
    sent: int = 0
    already_there: int = 0
    committed: bool = False
    refused: list[str] = field(default_factory=list)


async def upload_study(
    client: UploadClient,
    study: LocalStudy,
    *,
    urgency: str,
    question: str | None,
    concurrency: int,
    part_bytes: int,
    progress: Progress | None,
) -> StudyResult:
    """Open or resume the study's session, send what is missing, commit."""
    result = StudyResult(
        study_instance_uid=study.study_instance_uid, instances=len(study.instances)
    )
    session = await client.open(
        key=study.key,
        study_instance_uid=study.study_instance_uid,
        instances=study.instances,
        urgency=urgency,
        question=question,
    )
    missing = {m["sop_instance_uid"]: m for m in session["missing"]}
    by_sop = {i.sop_instance_uid: i for i in study.instances}
    todo = [by_sop[sop] for sop in sorted(missing) if sop in by_sop]
    result.already_there = len(study.instances) - len(todo)
    if progress is not None:
        progress.add(
            sent=sum(i.size_bytes for i in study.instances if i.sop_instance_uid not in missing),
            done=result.already_there,
        )
    if session["state"] == "committed":
        result.committed = True
        return result
    await _send_missing(
        client, session["id"], todo, missing, result, concurrency, part_bytes, progress
    )
    if result.refused:
        return result
    await client.commit(session["id"])
    result.committed = True
    return result


async def _send_missing(
    client: UploadClient,
    session_id: str,
    todo: list[LocalInstance],
    missing: dict[str, dict[str, Any]],
    result: StudyResult,
    concurrency: int,
    part_bytes: int,
    progress: Progress | None,
) -> None:
    """Send the instances the server lacks, ``concurrency`` at a time; refusals are noted."""
    queue: asyncio.Queue[LocalInstance] = asyncio.Queue()
    for inst in todo:
        queue.put_nowait(inst)

    async def worker() -> None:
        while not queue.empty():
            inst = queue.get_nowait()
            try:
                received = missing[inst.sop_instance_uid].get("received", [])
                await client.send(
                    session_id, inst, received=received, part_bytes=part_bytes, progress=progress
                )
                result.sent += 1
            except Refused as exc:
                result.refused.append(f"{inst.path}: {exc}")

    workers = [asyncio.create_task(worker()) for _ in range(max(1, concurrency))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()


@dataclass(frozen=True, kw_only=True)
class _Request:
    """What each study is sent with."""

    urgency: str
    question: str | None
    concurrency: int
    part_bytes: int


async def upload_paths(
    paths: Sequence[Path],
    *,
    server: str,
    token: str,
    urgency: str = "routine",
    question: str | None = None,
    concurrency: int = 3,
    part_bytes: int = DEFAULT_PART_BYTES,
    limit_rate: float | None = None,
    retry: Retry | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    show_progress: bool | None = None,
    allow_http: bool = False,
) -> ExitCode:
    """``telemed upload``: send every DICOM file under ``paths``; the exit status."""
    language = terminal_language(os.environ)
    try:
        check_server_url(server, allow_http=allow_http)
    except ValueError as exc:
        print(f"telemed upload: {exc}", file=err)
        return ExitCode.BAD_INPUT
    try:
        studies, skipped = await asyncio.to_thread(scan, paths)
    except UploadError as exc:
        print(f"telemed upload: {exc.phrase.say(language)}", file=err)
        return exc.code
    if not studies:
        print(Phrase(N_("telemed upload：所给路径中没有找到 DICOM 实例")).say(language), file=err)
        return ExitCode.BAD_INPUT
    if skipped:
        print(Phrase(SKIPPED, {"n": len(skipped)}).say(language), file=err)
    show = err.isatty() if show_progress is None else show_progress
    progress = Progress(
        stream=err if show else None,
        total_bytes=sum(s.total_bytes for s in studies),
        total_instances=sum(len(s.instances) for s in studies),
    )

    def on_retry(reason: str) -> None:
        progress.note = "(link down, retrying)"
        if not show:
            print(f"retrying: {reason}", file=err)

    timeout = aiohttp.ClientTimeout(total=None, connect=20, sock_read=120)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        client = UploadClient(
            http,
            server,
            token,
            retry=retry,
            rate=RateLimit(limit_rate) if limit_rate else None,
            on_retry=on_retry,
        )
        sending = _Request(
            urgency=urgency, question=question, concurrency=concurrency, part_bytes=part_bytes
        )
        exit_code, failures = await _upload_all(
            client, studies, sending, progress, (out, err, language)
        )
    if failures is None:  # the upload stopped: its reason is printed
        return exit_code
    progress.finish()
    _report_refused(failures, err, language)
    return exit_code


async def _upload_all(
    client: UploadClient,
    studies: list[LocalStudy],
    sending: _Request,
    progress: Progress,
    said_to: tuple[TextIO, TextIO, Language],
) -> tuple[ExitCode, list[str] | None]:
    """Send the studies one after the other, a line per study (to ``out``, errors to
    ``err``, in ``language``); the exit status and the instances the server refused (None:
    the upload stopped with an error)."""
    out, err, language = said_to
    failures: list[str] = []
    exit_code = ExitCode.OK
    for study in studies:
        try:
            result = await upload_study(
                client,
                study,
                urgency=sending.urgency,
                question=sending.question,
                concurrency=sending.concurrency,
                part_bytes=sending.part_bytes,
                progress=progress,
            )
        except UploadError as exc:
            progress.finish()
            study_failed = Phrase(
                N_("telemed upload：检查 %(uid)s：%(reason)s"),
                {"uid": study.study_instance_uid, "reason": exc.phrase},
            )
            print(study_failed.say(language), file=err)
            return exc.code, None
        progress.note = ""
        if result.refused:
            exit_code = ExitCode.REFUSED
            failures.extend(result.refused)
        sent = Phrase(
            STUDY_SENT,
            {
                "uid": result.study_instance_uid,
                "n": result.instances,
                "sent": result.sent,
                "there": result.already_there,
                "done": Phrase(N_("已提交") if result.committed else N_("未提交")),
            },
        )
        print(sent.say(language), file=out)
    return exit_code, failures


def _report_refused(failures: list[str], err: TextIO, language: Language) -> None:
    if not failures:
        return
    for line in failures[:20]:
        print("  " + Phrase(N_("被拒：%(line)s"), {"line": line}).say(language), file=err)
    print(Phrase(REFUSED, {"n": len(failures)}).say(language), file=err)
