"""The service's own log, as an operator reads it, carries no patient data: a QIDO by patient
ID and name is logged as its route and answer, never its query string."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from tests.e2e.conftest import FAST
from tests.e2e.harness import DEMO_NETWORK, http, running_service, service_env, telemed

SECRET_ID = "HB-SECRET-7781"
SECRET_NAME = "保密^患者"


def test_a_qido_by_patient_leaves_its_route_in_the_log_and_not_the_patient(
    database_url: str, tmp_path: Path
) -> None:
    env = service_env(database_url=database_url, storage_url=None, data_dir=tmp_path / "var")
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    with running_service(env, *FAST) as service:
        token = service.token("xlwd.clinic")
        query = urllib.parse.urlencode({"PatientID": SECRET_ID, "PatientName": SECRET_NAME})
        status, _, _ = http("GET", f"{service.base_url}/dicomweb/studies?{query}", token=token)
        assert status in (200, 204)
        status, _, _ = http("GET", f"{service.base_url}/dicomweb/series?{query}", token="wrong")
        assert status == 401
    log = service.log()
    assert '"GET /dicomweb/studies" ' in log
    assert '"GET /dicomweb/series" 401' in log
    for secret in (SECRET_ID, SECRET_NAME, urllib.parse.quote(SECRET_NAME), "PatientID="):
        assert secret not in log
