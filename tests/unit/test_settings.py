from __future__ import annotations

import os
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


def test_dicom_processes_default_to_one_per_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEMED_DICOM_PROCESSES", raising=False)
    cores = len(os.sched_getaffinity(0))
    assert settings_from_env().dicom_processes == min(cores, 64)
    assert Settings(data_dir=Path("var")).dicom_processes == 1  # built in code: one


def test_dicom_security_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert, key, ca = (tmp_path / n for n in ("s.crt", "s.key", "ca.crt"))
    for path in (cert, key, ca):
        path.write_text("-")
    monkeypatch.setenv("TELEMED_DICOM_TLS_CERT", str(cert))
    monkeypatch.setenv("TELEMED_DICOM_TLS_KEY", str(key))
    monkeypatch.setenv("TELEMED_DICOM_TLS_CA", str(ca))
    monkeypatch.setenv("TELEMED_DICOM_TLS_PORT", "2762")
    monkeypatch.setenv("TELEMED_DICOM_ALLOW_UNBOUND", "0")
    monkeypatch.setenv("TELEMED_DICOM_REFUSALS", "3")
    monkeypatch.setenv("TELEMED_DICOM_REFUSAL_BLOCK_S", "12.5")
    monkeypatch.setenv("TELEMED_DICOM_RETRIEVE_MAX", "500")
    s = settings_from_env()
    assert (s.dicom_tls_cert, s.dicom_tls_key, s.dicom_tls_ca) == (cert, key, ca)
    assert s.dicom_tls
    assert s.dicom_tls_port == 2762
    assert not s.dicom_allow_unbound
    assert (s.dicom_refusals, s.dicom_refusal_block_s, s.dicom_retrieve_max) == (3, 12.5, 500)
    assert s.masked()["dicom_tls"] == "port 2762"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dicom_tls_cert": Path("/nonexistent.crt")}, "go together"),
        (
            {"dicom_tls_cert": Path("/nonexistent.crt"), "dicom_tls_key": Path("/x.key")},
            "no such file",
        ),
        ({"dicom_tls_port": 2762}, "needs a certificate"),
        ({"dicom_refusals": 0}, "must be positive"),
        ({"dicom_retrieve_max": 0}, "must be positive"),
    ],
)
def test_bad_dicom_security_settings_are_refused(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings(data_dir=Path("var"), **overrides)  # type: ignore[arg-type]


def test_a_calling_title_bound_to_nothing_is_refused_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TELEMED_DICOM_ALLOW_UNBOUND", raising=False)
    assert settings_from_env().dicom_allow_unbound is False
    monkeypatch.setenv("TELEMED_DICOM_ALLOW_UNBOUND", "1")
    assert settings_from_env().dicom_allow_unbound is True


def test_the_smtp_server_comes_from_the_environment_and_its_password_is_never_shown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text("s3cret-pw\n")
    monkeypatch.setenv("TELEMED_SMTP_HOST", "smtp.hb.example")
    monkeypatch.setenv("TELEMED_SMTP_PORT", "465")
    monkeypatch.setenv("TELEMED_SMTP_TLS", "tls")
    monkeypatch.setenv("TELEMED_SMTP_USER", "telemed")
    monkeypatch.setenv("TELEMED_SMTP_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("TELEMED_SMTP_FROM", "telemed@hb.example")
    found = settings_from_env()
    assert (found.smtp_host, found.smtp_port, found.smtp_tls) == ("smtp.hb.example", 465, "tls")
    assert found.smtp_password == "s3cret-pw"
    assert "s3cret-pw" not in repr(found)
    assert "s3cret-pw" not in str(found.masked())
    assert found.masked()["smtp"] == "smtp.hb.example:465 tls, account set"
    monkeypatch.setenv("TELEMED_SMTP_TLS", "ssl")
    with pytest.raises(ConfigError, match="TELEMED_SMTP_TLS"):
        settings_from_env()
    monkeypatch.setenv("TELEMED_SMTP_TLS", "starttls")
    monkeypatch.delenv("TELEMED_SMTP_PASSWORD_FILE")
    with pytest.raises(ConfigError, match="go together"):
        settings_from_env()
