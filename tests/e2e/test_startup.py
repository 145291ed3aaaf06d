"""What a person sees on the console when they start the service on the embedded defaults:
the URLs and the demo logins, not the embedded PostgreSQL's initdb nor a line per migration."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.harness import free_port


def test_serve_on_the_embedded_defaults_prints_urls_and_logins_only(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "STORAGE_"))}
    env["TELEMED_DATA_DIR"] = str(tmp_path / "var")
    console = tmp_path / "console.txt"
    http_port = free_port()
    command = [
        *(sys.executable, "-m", "teleradiology", "serve", "--demo"),
        *("--http-host", "127.0.0.1", "--http-port", str(http_port)),
        *("--dicom-port", str(free_port())),
    ]
    with console.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while "hb.admin" not in console.read_text("utf-8", errors="replace"):
            assert proc.poll() is None, console.read_text("utf-8", errors="replace")
            assert time.monotonic() < deadline, "the demo logins were not printed in 90 s"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    text = console.read_text("utf-8", errors="replace")
    assert f"http://localhost:{http_port}/" in text
    assert "password: demo-<username>" in text
    for noise in ("initdb", "pg_ctl", "Running commandline", "applied migration", "Traceback"):
        assert noise not in text, f"{noise!r} on the console:\n{text}"
    # what the embedded server said is kept in the data directory
    kept = (tmp_path / "var" / "embedded-postgres.log").read_text("utf-8")
    assert "initdb" in kept
