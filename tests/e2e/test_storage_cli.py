"""``telemed storage collect`` and ``verify``: an operator clears the objects no row refers
to, and checks after a restore that every object a row refers to is there."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from tests.e2e.conftest import FAST
from tests.e2e.harness import DEMO_NETWORK, http, running_service, service_env, telemed
from tests.factory import make_study
from tests.integration.test_ingest import BOUNDARY, multipart


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


def test_storage_verify_finds_every_referenced_object_and_names_a_missing_one(
    database_url: str, tmp_path: Path
) -> None:
    env = service_env(database_url=database_url, storage_url=None, data_dir=tmp_path / "var")
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    with running_service(env, *FAST, "--role", "api") as service:
        status, _, answer = http(
            "POST",
            f"{service.base_url}/dicomweb/studies",
            token=service.token("xlwd.clinic"),
            data=multipart(*make_study(modality="CR", count=2)),
            headers={
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
            },
        )
        assert status == 200, answer
    whole = telemed("storage", "verify", "--read", env=env)
    assert "checked 2 object(s) rows refer to: 0 missing, 0 damaged" in whole.stdout, whole.stdout
    objects = sorted((tmp_path / "var" / "objects").glob("??/??/*"))
    assert len(objects) == 2
    objects[0].unlink()
    broken = telemed("storage", "verify", env=env, check=False)
    assert broken.returncode == 1
    assert f"missing: {objects[0].name} (instance)" in broken.stdout, broken.stdout
