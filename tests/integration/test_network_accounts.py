"""The network file and the demo's credentials, over the real PostgreSQL: users imported with
a hash or with no password (who then set one with the link the import made), ``active`` kept
as the file says, and a service outside ``--demo`` that refuses to start while demo
passwords, demo tokens or example secrets are present."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import asyncpg

from storage import accounts, network
from teleradiology.core.credentials import EXAMPLE_SECRETS
from teleradiology.core.network_file import parse_network
from teleradiology.core.passwords import hash_password
from teleradiology.services import accounts as account_service
from teleradiology.services import administration
from teleradiology.services.signin import Throttle, check_credentials
from tests.e2e.harness import DEMO_NETWORK, free_port
from tests.integration.conftest import _demo_network

NETWORK = """
[[facility]]
code = "K"
name = "淮滨县人民医院"
tier = "county"

[[user]]
username = "k.admin"
role = "admin"
facility = "K"
password_hash = "{hash}"

[[user]]
username = "k.clinic"
role = "clinic"
facility = "K"
"""


async def _signs_in(pool: asyncpg.Pool, username: str, password: str) -> bool:
    return await check_credentials(pool, Throttle(), username, password, address=None) is not None


async def test_a_hash_signs_in_and_a_user_without_password_gets_a_one_time_link(
    pool: asyncpg.Pool,
) -> None:
    text = NETWORK.format(hash=hash_password("k-admin-password"))
    done = await administration.import_network(pool, *parse_network(text))
    assert (done.facilities, done.users) == (1, 2)
    assert set(done.first_links) == {"k.clinic"}
    assert await _signs_in(pool, "k.admin", "k-admin-password")
    assert await account_service.demo_credentials(pool, {}) == []
    # the clinic user sets their password with the link, once
    link = done.first_links["k.clinic"]
    assert await account_service.set_password_by_link(pool, link, "clinic-chose-it") == "k.clinic"
    assert await _signs_in(pool, "k.clinic", "clinic-chose-it")
    assert await accounts.password_link_user(pool, link) is None
    # importing again keeps the password set, and makes no new link
    again = await administration.import_network(pool, *parse_network(text))
    assert again.first_links == {}
    assert await _signs_in(pool, "k.clinic", "clinic-chose-it")


async def test_imports_keep_active_as_the_file_says(pool: asyncpg.Pool) -> None:
    text = NETWORK.format(hash=hash_password("k-admin-password"))
    await administration.import_network(pool, *parse_network(text))
    user = await network.user_by_username(pool, "k.admin")
    assert user is not None
    token = await network.create_token(pool, user.id)
    off = text.replace('password_hash = "', 'active = false\npassword_hash = "', 1)
    await administration.import_network(pool, *parse_network(off))
    assert await network.user_by_token(pool, token) is None
    assert not await _signs_in(pool, "k.admin", "k-admin-password")
    # a file that says nothing of `active` leaves the user deactivated
    await administration.import_network(pool, *parse_network(text))
    found = await network.user_by_username(pool, "k.admin")
    assert found is not None
    assert not found.active
    on = text.replace('password_hash = "', 'active = true\npassword_hash = "', 1)
    await administration.import_network(pool, *parse_network(on))
    assert await _signs_in(pool, "k.admin", "k-admin-password")


async def test_a_hash_of_the_demo_password_is_found_out(pool: asyncpg.Pool) -> None:
    text = NETWORK.format(hash=hash_password("demo-k.admin"))
    await administration.import_network(pool, *parse_network(text))
    found = await account_service.demo_credentials(pool, {})
    assert len(found) == 1
    assert "k.admin" in found[0]
    # the user changes it: nothing demo is left
    user = await network.user_by_username(pool, "k.admin")
    assert user is not None
    await account_service.change_password(
        pool, Throttle(), user, "demo-k.admin", "a-real-one-now", token=None
    )
    assert await account_service.demo_credentials(pool, {}) == []


async def test_demo_passwords_imported_before_the_check_are_found_at_the_first_start(
    pool: asyncpg.Pool,
) -> None:
    facilities, users = _demo_network(DEMO_NETWORK)
    await administration.import_network(pool, facilities, users)
    # as an older release left them: hashed, never checked against the demo password
    await pool.execute("update app_user set demo_password = false, demo_checked = false")
    await pool.execute(
        "update app_user set password_hash = $1 where username = 'hb.admin'",
        hash_password("not-the-demo-one"),
    )
    (found,) = await account_service.demo_credentials(pool, {})
    assert found.startswith(f"{len(users) - 1} user(s) with the public demo password")
    assert "hb.admin" not in found
    assert await pool.fetchval("select bool_and(demo_checked) from app_user") is True


async def test_demo_tokens_and_example_secrets_are_found_out(pool: asyncpg.Pool) -> None:
    text = NETWORK.format(hash=hash_password("k-admin-password"))
    await administration.import_network(pool, *parse_network(text))
    await administration.issue_demo_tokens(pool)
    secret = sorted(EXAMPLE_SECRETS)[0]
    env = {"STORAGE_URL": f"s3://key:{secret}@s3:9000/b", "PATH": "/usr/bin"}
    found = await account_service.demo_credentials(pool, env)
    assert found == [
        "2 demo token(s) printed by 'serve --demo' still work",
        "STORAGE_URL holds the public example value of deploy/",
    ]
    await accounts.revoke_demo_tokens(pool)
    assert await account_service.demo_credentials(pool, {"PATH": "/usr/bin"}) == []


async def _serve(database_url: str, data_dir: Path, *extra: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "STORAGE_"))}
    env |= {"DATABASE_URL": database_url, "TELEMED_DATA_DIR": str(data_dir)}
    env["MINIO_KMS_SECRET_KEY"] = "telemed-key:iIMUMsq11ouPDlJy6NG//CevMg88tn+QH1YMRtV0/2k="
    command = [sys.executable, "-m", "teleradiology", "serve", "--http-host", "127.0.0.1"]
    command += ["--http-port", str(free_port()), "--dicom-port", str(free_port()), *extra]
    done = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stdout + done.stderr


async def test_the_service_refuses_to_start_with_demo_credentials_outside_the_demo(
    pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    facilities, users = _demo_network(DEMO_NETWORK)
    await administration.import_network(pool, facilities, users)
    status, said = await _serve(database_url, tmp_path / "var", "--role", "api")
    assert status == 2, said
    assert "refusing to start outside --demo" in said
    assert f"{len(users)} user(s) with the public demo password: " in said
    assert "MINIO_KMS_SECRET_KEY holds the public example value" in said
    assert "iIMUMsq11" not in said  # the names, never the values
    assert "Traceback" not in said, said


def _telemed(database_url: str, data_dir: Path, *args: str, stdin: str = "") -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "STORAGE_"))}
    env |= {"DATABASE_URL": database_url, "TELEMED_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "teleradiology", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr


async def test_the_command_line_hashes_imports_with_links_and_makes_expiring_tokens(
    pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "var"
    status, hashed = await asyncio.to_thread(
        _telemed, database_url, data_dir, "password", "hash", stdin="k-admin-password\n"
    )
    assert status == 0, hashed
    network_file = tmp_path / "network.toml"
    network_file.write_text(NETWORK.format(hash=hashed.strip()), "utf-8")
    status, said = await asyncio.to_thread(
        _telemed, database_url, data_dir, "network", "import", str(network_file)
    )
    assert status == 0, said
    (line,) = [x for x in said.splitlines() if "/password#" in x]
    assert line.split()[0] == "k.clinic"
    assert await _signs_in(pool, "k.admin", "k-admin-password")
    status, said = await asyncio.to_thread(
        _telemed, database_url, data_dir, "token", "create", "k.admin", "--days", "2"
    )
    assert status == 0, said
    token = said.splitlines()[0]
    assert await network.user_by_token(pool, token) is not None
    expires = await pool.fetchval(
        "select expires_at - created_at from api_token where kind = 'cli' order by id desc limit 1"
    )
    assert timedelta(days=1.99) < expires <= timedelta(days=2)
    plain = tmp_path / "plain.toml"
    plain.write_text(
        NETWORK.format(hash="x").replace('password_hash = "x"', 'password = "p-1234567"')
    )
    status, said = await asyncio.to_thread(
        _telemed, database_url, data_dir, "network", "import", str(plain)
    )
    assert status == 2
    assert "carries no plaintext 'password'" in said
