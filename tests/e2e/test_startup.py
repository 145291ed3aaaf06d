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


def _admin(dsn: str, *statements: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def test_with_migration_as_its_own_step_serving_waits_for_it(
    pg_admin_dsn: str, tmp_path: Path
) -> None:
    """Where `telemed migrate` runs before a rollout, a serving process started on a schema
    it does not know stops at once with what to do, and serves once the step has run."""
    from tests.conftest import _with_database
    from tests.e2e.harness import running_service, service_env, telemed

    drop = "drop database if exists migrate_step with (force)"
    _admin(pg_admin_dsn, drop, "create database migrate_step")
    env = service_env(
        database_url=_with_database(pg_admin_dsn, "migrate_step"),
        storage_url=None,
        data_dir=tmp_path / "var",
    )
    env["TELEMED_MIGRATE_ON_START"] = "0"
    try:
        refused = subprocess.run(
            [sys.executable, "-m", "teleradiology", "serve", "--http-port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert refused.returncode == 2, refused.stderr
        assert "run `telemed migrate` first" in refused.stderr
        telemed("migrate", env=env)
        with running_service(env) as service:
            assert service.base_url
    finally:
        _admin(pg_admin_dsn, drop)
