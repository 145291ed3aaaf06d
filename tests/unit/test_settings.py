from __future__ import annotations

from pathlib import Path

import pytest

from teleradiology.core.errors import ConfigError
from teleradiology.settings import Role, Settings, settings_from_env


def test_defaults_follow_the_public_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TELEMED_DATA_DIR", "DATABASE_URL", "STORAGE_URL", "TELEMED_DICOM_AET"):
        monkeypatch.delenv(name, raising=False)
    settings = settings_from_env()
    assert settings.data_dir == Path("./var")
    assert settings.http_port == 8080
    assert settings.dicom_port == 11112
    assert settings.dicom_aet == "TELEMED"
    assert settings.roles == frozenset(Role)
    assert settings.objects_url.startswith("file:///")
    assert settings.objects_url.endswith("/var/objects")


def test_options_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEMED_DATA_DIR", "/srv/telemed")
    monkeypatch.setenv("STORAGE_URL", "s3://key:very-secret@minio:9000/telemed")
    settings = settings_from_env(http_port=9000, roles=frozenset({Role.WORKER}))
    assert settings.data_dir == Path("/srv/telemed")
    assert settings.http_port == 9000
    assert settings.roles == {Role.WORKER}
    assert "very-secret" not in str(settings.masked())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dicom_aet": "WAY_TOO_LONG_AE_TITLE"}, "dicom-aet"),
        ({"http_port": 70000}, "not a TCP port"),
        ({"stable_age_s": 0.0}, "positive"),
        ({"roles": frozenset()}, "at least one role"),
    ],
)
def test_invalid_settings_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_env(**overrides)


def test_dicom_processes_from_the_environment_and_their_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TELEMED_DICOM_PROCESSES", "3")
    assert settings_from_env().dicom_processes == 3
    monkeypatch.setenv("TELEMED_DICOM_PROCESSES", "three")
    with pytest.raises(ConfigError, match="TELEMED_DICOM_PROCESSES"):
        settings_from_env()
    monkeypatch.delenv("TELEMED_DICOM_PROCESSES")
    for wrong in (0, 65):
        with pytest.raises(ConfigError, match="--dicom-processes"):
            Settings(data_dir=Path("var"), dicom_processes=wrong)
