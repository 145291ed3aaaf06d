"""One frozen Settings per entry point, read once from options and the environment.

DICOM security (environment variables):

``TELEMED_DICOM_TLS_CERT``, ``TELEMED_DICOM_TLS_KEY``
    PEM certificate (chain) and private key of the listener: with both, the DICOM port speaks
    TLS only (or, with ``TELEMED_DICOM_TLS_PORT``, TLS there and plain TCP on the DICOM port
    for links still being migrated). The same pair is the client certificate when report
    copies go by C-STORE to a destination configured with ``tls = true``.
``TELEMED_DICOM_TLS_CA``
    PEM bundle of the network's certification authority: workstations' client certificates
    are asked for and verified against it, and so are destinations' server certificates
    (default: the system's). Which certificate a title must show is its
    ``certificate_sha256`` in the network file.
``TELEMED_DICOM_ALLOW_UNBOUND``
    ``1`` accepts calling AE titles bound to neither a peer host nor a certificate, where the
    title alone would be the credential: only while a network migrates (the start-up log
    counts such titles). Default ``0``: refused; ``serve --demo`` accepts them (the demo
    network binds none).
``TELEMED_DICOM_REFUSALS``, ``TELEMED_DICOM_REFUSAL_BLOCK_S``
    After this many refused associations from one address within a minute (default 5), that
    address is refused at once for this long (default 30 s), doubling on each further block
    up to 15 minutes; an hour's quiet forgets it.
``TELEMED_DICOM_RETRIEVE_MAX``
    The most instances one C-GET or C-MOVE may send (default 10000); more is refused.

Web security:

``TELEMED_HTTPS_CERT``, ``TELEMED_HTTPS_KEY``
    PEM certificate (chain) and key: the web port speaks HTTPS only, answers carry HSTS and
    the session cookie is Secure.
``TELEMED_TRUSTED_PROXIES``
    Addresses or networks (comma-separated) of the reverse proxies in front of the service:
    only from them are X-Forwarded-For, -Proto and -Host believed (the client's address for
    the audit and the sign-in limits, and whether it came by HTTPS). Default: none.
``TELEMED_NATIONAL_ID_KEY``, ``TELEMED_NATIONAL_ID_KEY_FILE``
    The key (32 bytes or more, hex or base64; ``openssl rand -hex 32``) under which national
    IDs are kept as digests. It lives outside the database, so that a copy of the database
    alone cannot test guessed IDs. Without it, linking by national ID is refused.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from teleradiology.core.dicom import AE_TITLE
from teleradiology.core.errors import ConfigError

#: How the SMTP connection is protected: STARTTLS after the greeting, TLS from the first
#: byte (port 465), or not at all (a relay on the same host).
SMTP_TLS = ("starttls", "tls", "none")


class Role(StrEnum):
    API = "api"
    DICOM = "dicom"
    WORKER = "worker"


@dataclass(frozen=True, kw_only=True)
class Settings:
    data_dir: Path
    database_url: str | None = None
    storage_url: str | None = None
    http_host: str = "0.0.0.0"  # noqa: S104 - a server listens on every interface by default
    http_port: int = 8080
    dicom_host: str = "0.0.0.0"  # noqa: S104
    dicom_port: int = 11112
    dicom_aet: str = "TELEMED"
    roles: frozenset[Role] = field(default_factory=lambda: frozenset(Role))
    #: A study with no new instance for this long is complete (bare C-STORE and STOW-RS).
    stable_age_s: float = 60.0
    #: How often the worker looks for stable studies and expired leases.
    sweep_interval_s: float = 5.0
    lease_minutes: float = 15.0
    public_base_url: str | None = None
    #: The most one STOW-RS request may carry (decompressed): larger studies go in several
    #: requests, or by the resumable upload (`TELEMED_MAX_UPLOAD_BYTES`).
    max_upload_bytes: int = 512 * 1024**2
    #: The largest one instance may be, received by C-STORE or named in an upload manifest
    #: (`TELEMED_MAX_INSTANCE_BYTES`).
    max_instance_bytes: int = 1024**3
    #: What one facility may send in a UTC day, by every way in together; past either,
    #: instances are refused (HTTP 429, C-STORE A700) until the next day. 0: no limit
    #: (`TELEMED_QUOTA_BYTES_PER_DAY`, `TELEMED_QUOTA_INSTANCES_PER_DAY`); a facility's own
    #: limits (`PUT /api/v1/admin/facilities/{code}/quota`) take precedence.
    quota_bytes_per_day: int = 50 * 1024**3
    quota_instances_per_day: int = 200_000
    #: Pixel decoding and ECG parsing run in child processes: each call at most this long,
    #: each child with at most this much address space (`TELEMED_WORK_TIMEOUT`,
    #: `TELEMED_WORK_MEMORY_MB`).
    work_timeout_s: float = 60.0
    work_memory_bytes: int = 3 * 1024**3
    #: Objects no row refers to are deleted once older than this (longer than the backup
    #: window: a database restored from last week's backup still finds its objects).
    collect_grace_hours: float = 7 * 24.0
    #: How often the worker looks for such objects.
    collect_every_s: float = 3600.0
    #: How often the worker anchors the audit chain's head in the object store.
    audit_anchor_every_s: float = 300.0
    #: How long one database command may wait for PostgreSQL before the request answers 503
    #: (A700 over DICOM); a black-holed database costs a request at most twice this.
    database_command_timeout_s: float = 4.0
    #: Open DICOM associations one facility may hold at once; more are refused (transient).
    dicom_max_associations_per_facility: int = 8
    #: Several `--role dicom` processes share the DICOM port (SO_REUSEPORT): one per core.
    dicom_reuse_port: bool = False
    #: DICOM listener processes of this node (`--dicom-processes`): this one and N-1 children
    #: accepting from one shared socket (pynetdicom holds the GIL: one process is one core).
    #: Read from the environment, it defaults to one per core (`default_dicom_processes`).
    dicom_processes: int = 1
    #: Set in those children: the listening socket they inherited (not for operators).
    dicom_listen_fd: int | None = None
    #: DICOM TLS: the listener's PEM certificate and key (both or neither), the network CA's
    #: bundle (clients' certificates are then asked for), and a separate TLS port (None: the
    #: DICOM port itself speaks TLS when a certificate is configured).
    dicom_tls_cert: Path | None = None
    dicom_tls_key: Path | None = None
    dicom_tls_ca: Path | None = None
    dicom_tls_port: int | None = None
    #: Calling AE titles bound to neither a peer host nor a certificate are accepted.
    dicom_allow_unbound: bool = False
    #: Refused associations from one address (within a minute) before it is blocked, and
    #: the first block.
    dicom_refusals: int = 5
    dicom_refusal_block_s: float = 30.0
    #: Most instances one C-GET or C-MOVE sends; more is refused.
    dicom_retrieve_max: int = 10_000
    #: HTTPS: the web port speaks TLS with this PEM certificate (chain) and key (both or
    #: neither); the session cookie is then Secure and answers carry HSTS.
    https_cert: Path | None = None
    https_key: Path | None = None
    #: Reverse proxies whose X-Forwarded-For, -Proto and -Host are believed (addresses or
    #: networks); from anyone else those headers are ignored.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    #: The key of the national-ID digests (kept outside the database, so that a copy of the
    #: database alone cannot test guessed IDs); None: linking by national ID is refused.
    national_id_key: bytes | None = field(default=None, repr=False)
    #: Bring the schema up to date when serving starts. Off where `telemed migrate` runs as
    #: its own step (a Kubernetes Job before a rollout): serving then only checks the schema.
    migrate_on_start: bool = True
    #: The SMTP server notifications are e-mailed through (None: e-mail channels fail and are
    #: listed for administrators), how (``starttls``, ``tls`` from the first byte, or
    #: ``none``), the account (never logged) and the sender's address.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_tls: str = "starttls"
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str = "telemed@localhost"
    #: How long one SMTP conversation or webhook call may take.
    notice_timeout_s: float = 20.0

    def __post_init__(self) -> None:
        if not AE_TITLE.match(self.dicom_aet) or not self.dicom_aet.strip():
            raise ConfigError(f"--dicom-aet {self.dicom_aet!r}: 1 to 16 characters, no backslash")
        for name in ("http_port", "dicom_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ConfigError(f"{name} {port} is not a TCP port (0 to 65535)")
        if self.stable_age_s <= 0 or self.sweep_interval_s <= 0 or self.lease_minutes <= 0:
            raise ConfigError("stable age, sweep interval and lease must be positive")
        if not self.roles:
            raise ConfigError("at least one role (api, dicom, worker) must run")
        if not 1 <= self.dicom_processes <= 64:
            raise ConfigError(f"--dicom-processes {self.dicom_processes}: 1 to 64")
        self._check_dicom_security()
        self._check_limits()
        self._check_https()
        self._check_smtp()

    def _check_smtp(self) -> None:
        if self.smtp_tls not in SMTP_TLS:
            raise ConfigError(f"TELEMED_SMTP_TLS={self.smtp_tls!r}: one of {', '.join(SMTP_TLS)}")
        if not 0 < self.smtp_port <= 65535:
            raise ConfigError(f"TELEMED_SMTP_PORT {self.smtp_port} is not a TCP port")
        if (self.smtp_user is None) != (self.smtp_password is None):
            raise ConfigError("TELEMED_SMTP_USER and TELEMED_SMTP_PASSWORD go together")
        if "@" not in self.smtp_from:
            raise ConfigError(f"TELEMED_SMTP_FROM={self.smtp_from!r} is not an e-mail address")
        if self.notice_timeout_s <= 0:
            raise ConfigError("TELEMED_NOTICE_TIMEOUT must be positive")

    def _check_https(self) -> None:
        if (self.https_cert is None) != (self.https_key is None):
            raise ConfigError("TELEMED_HTTPS_CERT and TELEMED_HTTPS_KEY go together")
        for name in ("https_cert", "https_key"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{name} {path}: no such file")

    @property
    def https(self) -> bool:
        """Whether the web port speaks TLS (a certificate and key are configured)."""
        return self.https_cert is not None

    def _check_dicom_security(self) -> None:
        if (self.dicom_tls_cert is None) != (self.dicom_tls_key is None):
            raise ConfigError("TELEMED_DICOM_TLS_CERT and TELEMED_DICOM_TLS_KEY go together")
        for name in ("dicom_tls_cert", "dicom_tls_key", "dicom_tls_ca"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{name} {path}: no such file")
        if self.dicom_tls_port is not None and (
            self.dicom_tls_cert is None or not 0 <= self.dicom_tls_port <= 65535
        ):
            raise ConfigError("TELEMED_DICOM_TLS_PORT needs a certificate, and is a TCP port")
        if self.dicom_refusals < 1 or self.dicom_refusal_block_s <= 0:
            raise ConfigError("TELEMED_DICOM_REFUSALS and _REFUSAL_BLOCK_S must be positive")
        if self.dicom_retrieve_max < 1:
            raise ConfigError("TELEMED_DICOM_RETRIEVE_MAX must be positive")

    @property
    def dicom_tls(self) -> bool:
        """Whether the listener speaks DICOM TLS (a certificate and key are configured)."""
        return self.dicom_tls_cert is not None

    def _check_limits(self) -> None:
        for name in ("max_upload_bytes", "max_instance_bytes"):
            if getattr(self, name) < 1024:
                raise ConfigError(f"{name} {getattr(self, name)}: at least 1024 bytes")
        for name in ("quota_bytes_per_day", "quota_instances_per_day"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} {getattr(self, name)}: 0 (no limit) or more")
        if self.work_timeout_s <= 0:
            raise ConfigError(f"work timeout {self.work_timeout_s} s must be positive")
        if self.work_memory_bytes < 512 * 1024**2:
            raise ConfigError(
                f"work memory {self.work_memory_bytes // 1024**2} MiB: at least 512 MiB "
                "(a child's libraries take about 500 MiB of address space)"
            )

    @property
    def objects_url(self) -> str:
        """Where objects go: STORAGE_URL, or files under the data directory."""
        return self.storage_url or (self.data_dir / "objects").resolve().as_uri()

    def masked(self) -> dict[str, str]:
        """The effective configuration for the start-up log, secrets masked."""
        return {
            "data_dir": str(self.data_dir),
            "database": _mask(self.database_url) if self.database_url else "embedded",
            "storage": _mask(self.objects_url),
            "http": f"{self.http_host}:{self.http_port}",
            "dicom": f"{self.dicom_aet}@{self.dicom_host}:{self.dicom_port}",
            "dicom_tls": (
                "off"
                if not self.dicom_tls
                else f"port {self.dicom_tls_port}"
                if self.dicom_tls_port is not None
                else "on"
            ),
            "https": "on" if self.https else "off",
            "trusted_proxies": ",".join(map(str, self.trusted_proxies)) or "none",
            "national_id_key": "set" if self.national_id_key else "not set",
            "roles": ",".join(sorted(self.roles)),
            "stable_age_s": str(self.stable_age_s),
            "max_upload_bytes": str(self.max_upload_bytes),
            "max_instance_bytes": str(self.max_instance_bytes),
            "quota_per_day": f"{self.quota_bytes_per_day} bytes, {self.quota_instances_per_day}",
            "smtp": (
                f"{self.smtp_host}:{self.smtp_port} {self.smtp_tls}, "
                + ("account set" if self.smtp_user else "no account")
                if self.smtp_host
                else "not set"
            ),
        }

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _mask(url: str) -> str:
    return re.sub(r"//([^:/@]+):([^@]+)@", r"//\1:***@", url)


def settings_from_env(**overrides: object) -> Settings:
    """Settings from the environment, with command-line values (not None) taking precedence."""
    env = os.environ
    values: dict[str, object] = {
        "data_dir": Path(env.get("TELEMED_DATA_DIR", "./var")),
        "dicom_processes": default_dicom_processes(),
    }
    for variable, (name, parse) in ENVIRONMENT.items():
        text = env.get(variable)
        if text is not None and (text != "" or parse is _text):
            values[name] = parse(text, variable)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)  # type: ignore[arg-type]


def default_dicom_processes() -> int:
    """One DICOM listener process per core this process may run on (C-STORE is CPU-bound
    and each process holds its own GIL), at most 64."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 64))


def _text(text: str, _name: str) -> str | None:
    return text or None


def _path(text: str, _name: str) -> Path:
    return Path(text)


def _mib(text: str, name: str) -> int:
    return _int(text, name) * 1024**2


def _cidrs(text: str, name: str) -> tuple[IPv4Network | IPv6Network, ...]:
    try:
        return tuple(ip_network(part.strip()) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(
            f"{name}={text!r}: addresses or networks, comma-separated ({exc})"
        ) from None


def _key(text: str, name: str) -> bytes:
    """A secret key written as hex or base64, of at least 32 bytes."""
    value = text.strip()
    try:
        key = bytes.fromhex(value)
    except ValueError:
        try:
            key = base64.b64decode(value, validate=True)
        except ValueError:
            raise ConfigError(f"{name}: hex or base64 (openssl rand -hex 32)") from None
    if len(key) < 32:
        raise ConfigError(f"{name}: at least 32 bytes (openssl rand -hex 32)")
    return key


def _key_file(text: str, name: str) -> bytes:
    try:
        return _key(Path(text).read_text(encoding="ascii"), name)
    except OSError as exc:
        raise ConfigError(f"{name}={text}: cannot be read ({exc.strerror})") from None


def _secret_file(text: str, name: str) -> str:
    try:
        return Path(text).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{name}={text}: cannot be read ({exc.strerror})") from None


def _flag(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={text!r}: 1 or 0 (true or false)")


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a whole number") from None


def _float(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a number") from None


#: The environment variables of the settings: variable -> (setting, how its text is read).
#: Empty values are ignored (the default holds), except for the URLs (empty: none).
ENVIRONMENT: dict[str, tuple[str, Callable[[str, str], object]]] = {
    "DATABASE_URL": ("database_url", _text),
    "STORAGE_URL": ("storage_url", _text),
    "TELEMED_PUBLIC_URL": ("public_base_url", _text),
    "TELEMED_DICOM_AET": ("dicom_aet", _text),
    "TELEMED_DICOM_REUSE_PORT": ("dicom_reuse_port", _flag),
    "TELEMED_DICOM_PROCESSES": ("dicom_processes", _int),
    "TELEMED_DICOM_LISTEN_FD": ("dicom_listen_fd", _int),
    "TELEMED_MIGRATE_ON_START": ("migrate_on_start", _flag),
    "TELEMED_DICOM_MAX_ASSOCIATIONS": ("dicom_max_associations_per_facility", _int),
    "TELEMED_COLLECT_GRACE_HOURS": ("collect_grace_hours", _float),
    "TELEMED_AUDIT_ANCHOR_EVERY": ("audit_anchor_every_s", _float),
    "TELEMED_DB_COMMAND_TIMEOUT": ("database_command_timeout_s", _float),
    "TELEMED_STABLE_AGE": ("stable_age_s", _float),
    "TELEMED_DICOM_TLS_CERT": ("dicom_tls_cert", _path),
    "TELEMED_DICOM_TLS_KEY": ("dicom_tls_key", _path),
    "TELEMED_DICOM_TLS_CA": ("dicom_tls_ca", _path),
    "TELEMED_DICOM_TLS_PORT": ("dicom_tls_port", _int),
    "TELEMED_DICOM_ALLOW_UNBOUND": ("dicom_allow_unbound", _flag),
    "TELEMED_DICOM_REFUSALS": ("dicom_refusals", _int),
    "TELEMED_DICOM_REFUSAL_BLOCK_S": ("dicom_refusal_block_s", _float),
    "TELEMED_DICOM_RETRIEVE_MAX": ("dicom_retrieve_max", _int),
    "TELEMED_MAX_UPLOAD_BYTES": ("max_upload_bytes", _int),
    "TELEMED_MAX_INSTANCE_BYTES": ("max_instance_bytes", _int),
    "TELEMED_QUOTA_BYTES_PER_DAY": ("quota_bytes_per_day", _int),
    "TELEMED_QUOTA_INSTANCES_PER_DAY": ("quota_instances_per_day", _int),
    "TELEMED_WORK_TIMEOUT": ("work_timeout_s", _float),
    "TELEMED_WORK_MEMORY_MB": ("work_memory_bytes", _mib),
    "TELEMED_HTTPS_CERT": ("https_cert", _path),
    "TELEMED_HTTPS_KEY": ("https_key", _path),
    "TELEMED_TRUSTED_PROXIES": ("trusted_proxies", _cidrs),
    "TELEMED_NATIONAL_ID_KEY_FILE": ("national_id_key", _key_file),
    "TELEMED_NATIONAL_ID_KEY": ("national_id_key", _key),
    "TELEMED_SMTP_HOST": ("smtp_host", _text),
    "TELEMED_SMTP_PORT": ("smtp_port", _int),
    "TELEMED_SMTP_TLS": ("smtp_tls", _text),
    "TELEMED_SMTP_USER": ("smtp_user", _text),
    "TELEMED_SMTP_PASSWORD_FILE": ("smtp_password", _secret_file),
    "TELEMED_SMTP_PASSWORD": ("smtp_password", _text),
    "TELEMED_SMTP_FROM": ("smtp_from", _text),
    "TELEMED_NOTICE_TIMEOUT": ("notice_timeout_s", _float),
}
