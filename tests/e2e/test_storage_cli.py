"""``telemed storage collect``: an operator clears the objects no row refers to."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from tests.e2e.harness import DEMO_NETWORK, service_env, telemed


def test_storage_collect_deletes_old_orphans_and_says_what_it_did(
    database_url: str, tmp_path: Path
) -> None:
    env = service_env(database_url=database_url, storage_url=None, data_dir=tmp_path / "var")
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    data = b"an instance whose index commit never came"
    key = hashlib.sha256(data).hexdigest()
    path = tmp_path / "var" / "objects" / key[:2] / key[2:4] / key
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    young = telemed("storage", "collect", "--grace-hours", "1", env=env)
    assert "collected 0" in young.stdout, young.stdout
    assert path.exists()
    then = time.time() - 2 * 3600
    os.utime(path, (then, then))
    old = telemed("storage", "collect", "--grace-hours", "1", env=env)
    assert "looked at 1 object(s) older than 1 h: collected 1" in old.stdout, old.stdout
    assert not path.exists()
