"""Run the real service as a subprocess, the way an operator runs it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEMO_NETWORK = REPO / "deploy" / "demo-network.toml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def telemed(
    *args: str, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run one ``telemed`` command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "teleradiology", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


@dataclass
class Service:
    base_url: str
    dicom_port: int
    env: dict[str, str]
    log_path: Path
    #: The ``telemed serve`` process (to signal it).
    proc: subprocess.Popen[bytes] | None = None

    def token(self, username: str) -> str:
        return telemed("token", "create", username, env=self.env).stdout.strip()

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")


def service_env(*, database_url: str, storage_url: str | None, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "STORAGE_"))}
    env["DATABASE_URL"] = database_url
    env["TELEMED_DATA_DIR"] = str(data_dir)
    env["TELEMED_NATIONAL_ID_KEY"] = bytes(range(32)).hex()
    if storage_url:
        env["STORAGE_URL"] = storage_url
    return env


@contextlib.contextmanager
def running_service(
    env: dict[str, str],
    *extra: str,
    timeout_s: float = 60,
    name: str = "serve",
    http_port: int | None = None,
    demo: bool = True,
    https_ca: str | None = None,
) -> Iterator[Service]:
    """``telemed serve`` on free loopback ports, ready before the block runs, stopped after
    (its log is ``<data dir>/<name>.log``), on ``http_port`` when given (a restart where
    clients already are). Without the DICOM role (``--role`` given without
    ``dicom``) only its HTTP side is waited for. The tests run over the demo network, whose
    passwords are public: ``--demo`` unless ``demo`` is false (the service refuses to start
    with them otherwise). With ``https_ca`` the service speaks HTTPS (its certificate in
    ``env``), checked against that CA bundle."""
    http_port, dicom_port = http_port or free_port(), free_port()
    # One listener process unless a test asks for more (the default is one per core).
    env = {"TELEMED_DICOM_PROCESSES": "1", **env}
    log_path = Path(env["TELEMED_DATA_DIR"]) / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "teleradiology",
                "serve",
                "--http-host",
                "127.0.0.1",
                "--http-port",
                str(http_port),
                "--dicom-port",
                str(dicom_port),
                *(["--demo"] if demo else []),
                *extra,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    service = Service(
        base_url=f"{'https://localhost' if https_ca else 'http://127.0.0.1'}:{http_port}",
        dicom_port=dicom_port,
        env=env,
        log_path=log_path,
        proc=proc,
    )
    roles = [extra[i + 1] for i, arg in enumerate(extra[:-1]) if arg == "--role"]
    try:
        tls = ssl.create_default_context(cafile=https_ca) if https_ca else None
        _wait_ready(service, proc, timeout_s, dicom=not roles or "dicom" in roles, tls=tls)
        yield service
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(
    service: Service,
    proc: subprocess.Popen[bytes],
    timeout_s: float,
    *,
    dicom: bool = True,
    tls: ssl.SSLContext | None = None,
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"telemed serve exited with {proc.returncode}:\n{service.log()}")
        try:
            ready = f"{service.base_url}/readyz"
            with urllib.request.urlopen(ready, timeout=2, context=tls) as response:
                if response.status == 200 and (not dicom or _dicom_open(service.dicom_port)):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"telemed serve not ready in {timeout_s} s:\n{service.log()}")


def _dicom_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def http(
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One HTTP call; returns status, headers and the decoded JSON body (or raw text)."""
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        data = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            status, got = response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        status, got = exc.code, dict(exc.headers)
    text = raw.decode("utf-8", errors="replace")
    try:
        return status, got, json.loads(text) if text else None
    except json.JSONDecodeError:
        return status, got, text


def wait_for(predicate: Any, *, timeout_s: float = 30, interval_s: float = 0.2) -> Any:
    """Poll until ``predicate()`` returns something truthy; return it."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout_s} s")
        time.sleep(interval_s)
