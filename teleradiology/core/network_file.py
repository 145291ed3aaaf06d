"""The network file: facilities and users in TOML, checked before anything is written."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomli_w

from storage.records import (
    AePeer,
    ChannelSpec,
    Destination,
    DutyShift,
    FacilitySpec,
    NetworkPolicy,
    Priority,
    Role,
    RouteSpec,
    Specialty,
    Tier,
    UserSpec,
)
from teleradiology.core.dicom import AE_TITLE
from teleradiology.core.errors import ConfigError, WrongValue
from teleradiology.core.language import N_, Phrase
from teleradiology.core.notices import parse_channel
from teleradiology.core.passwords import hash_password, is_argon2_hash
from teleradiology.core.peers import check_peer_host, fingerprint

#: Keys a table does not take, and a flag that is neither true nor false.
UNKNOWN_KEYS = N_("%(where)s：未知的键 %(keys)s")
ACTIVE_TRUE_OR_FALSE = N_("%(where)s：'active' 须为 true 或 false")
#: A plaintext password outside a demo file, and what to give instead.
NO_PLAINTEXT = N_(
    "%(where)s：网络文件不带明文 'password'（仅演示文件可带，须写 demo = true）：%(fix)s"
)
GIVE_A_HASH = N_("请给出 'password_hash'，或不给并把导入时打印的一次性链接发给该用户")

#: Which tier may stand directly under which.
_PARENT_TIER = {
    Tier.VILLAGE: {Tier.TOWNSHIP, Tier.COUNTY},
    Tier.TOWNSHIP: {Tier.COUNTY},
    Tier.COUNTY: {Tier.CITY},
    Tier.CITY: set(),
}


def _str(entry: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = entry.get(key)
    if value is None:
        if required:
            raise ConfigError(N_("%(where)s：缺少 '%(key)s'"), where=where, key=key)
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(N_("%(where)s：'%(key)s' 须为非空文本"), where=where, key=key)
    return value.strip()


def parse_network(text: str) -> tuple[list[FacilitySpec], list[UserSpec]]:
    """Check a network TOML document and return its facilities (parents first) and users.

    A user gives an argon2 ``password_hash`` or no password at all (they set one with a
    one-time link); a plaintext ``password`` is allowed only in a file that says
    ``demo = true``, and is then the public demo password (refused outside ``--demo``).

    Raises
    ------
    ConfigError
        The message names the entry and the value that is wrong.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(N_("网络文件不是有效的 TOML：%(reason)s"), reason=str(exc)) from None
    demo = _demo_flag(doc)
    unknown = set(doc) - {"facility", "user", "demo"}
    if unknown:
        raise ConfigError(N_("网络文件中有未知的部分：%(names)s"), names=", ".join(sorted(unknown)))
    facilities = [_facility(e, i) for i, e in enumerate(_tables(doc, "facility"))]
    by_code: dict[str, FacilitySpec] = {}
    for f in facilities:
        if f.code in by_code:
            raise ConfigError(N_("机构代码 %(code)s 出现了两次"), code=f.code)
        by_code[f.code] = f
    seen_ae: dict[str, str] = {}
    for f in facilities:
        for ae in f.ae_titles:
            if ae in seen_ae:
                raise ConfigError(
                    N_("AE 标题 %(ae)s 同时用于 %(first)s 和 %(second)s"),
                    ae=ae,
                    first=seen_ae[ae],
                    second=f.code,
                )
            seen_ae[ae] = f.code
        if f.parent is not None and f.parent not in by_code:
            # The parent may already be in the database: checked when importing.
            continue
        if f.parent is not None:
            parent = by_code[f.parent]
            check_placement(f.code, f.tier, (parent.code, parent.tier))
    users = [_user(e, i, demo=demo) for i, e in enumerate(_tables(doc, "user"))]
    names = [u.username for u in users]
    if len(set(names)) != len(names):
        raise ConfigError(N_("有用户名出现了两次"))
    return _parents_first(facilities), users


def _demo_flag(doc: Mapping[str, Any]) -> bool:
    demo = doc.get("demo", False)
    if not isinstance(demo, bool):
        raise ConfigError(N_("'demo' 须为 true 或 false"))
    return demo


def _tables(doc: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise ConfigError(N_("'%(key)s' 须为表的列表（[[%(key)s]]）"), key=key)
    return value


def _facility(entry: Mapping[str, Any], i: int) -> FacilitySpec:
    where = f"facility #{i + 1}"
    code = _str(entry, "code", where)
    assert code is not None
    where = f"facility {code}"
    name = _str(entry, "name", where)
    tier_text = _str(entry, "tier", where)
    try:
        tier = Tier(tier_text or "")
    except ValueError:
        allowed = ", ".join(t.value for t in Tier)
        raise ConfigError(
            N_("%(where)s：级别 %(text)r 不是 %(allowed)s 之一"),
            where=where,
            text=tier_text,
            allowed=allowed,
        ) from None
    parent = _str(entry, "parent", where, required=False)
    if tier is not Tier.CITY and parent is None and tier is not Tier.COUNTY:
        raise ConfigError(N_("%(where)s：%(tier)s须有 'parent'"), where=where, tier=tier)
    ae_titles = entry.get("ae_titles", [])
    if not isinstance(ae_titles, list) or not all(isinstance(a, str) for a in ae_titles):
        raise ConfigError(N_("%(where)s：'ae_titles' 须为文本的列表"), where=where)
    for ae in ae_titles:
        if not AE_TITLE.match(ae) or ae != ae.strip():
            raise ConfigError(
                N_("%(where)s：AE 标题 %(ae)r 须为 1 到 16 个字符，不含空格"), where=where, ae=ae
            )
    unknown = set(entry) - {
        "code",
        "name",
        "tier",
        "parent",
        "ae_titles",
        "workstation",
        "policy",
        "route",
        "report_destination",
        "active",
        "channel",
    }
    if unknown:
        raise ConfigError(UNKNOWN_KEYS, where=where, keys=", ".join(sorted(unknown)))
    active = entry.get("active")
    if active is not None and not isinstance(active, bool):
        raise ConfigError(ACTIVE_TRUE_OR_FALSE, where=where)
    routes = entry.get("route")
    if routes is not None and (
        not isinstance(routes, list) or not all(isinstance(r, dict) for r in routes)
    ):
        raise ConfigError(N_("%(where)s：'route' 须为表的列表（[[facility.route]]）"), where=where)
    workstations = _workstations(entry.get("workstation", []), where)
    titles = [*ae_titles, *(w.ae_title for w in workstations if w.ae_title not in ae_titles)]
    return FacilitySpec(
        code=code,
        name=name or code,
        tier=tier,
        parent=parent,
        ae_titles=tuple(titles),
        workstations=workstations,
        policy=_policy(entry["policy"], where) if "policy" in entry else None,
        routes=tuple(_route(r, where) for r in routes) if routes is not None else None,
        report_destination=(
            _destination(entry["report_destination"], where)
            if "report_destination" in entry
            else None
        ),
        active=active,
        channels=_channels(entry["channel"], where) if "channel" in entry else None,
    )


def _channels(entries: Any, where: str) -> tuple[ChannelSpec, ...]:
    """``[[facility.channel]]``: where the facility is told beyond the page."""
    if not isinstance(entries, list):
        raise ConfigError(
            N_("%(where)s：'channel' 须为表的列表（[[facility.channel]]）"), where=where
        )
    found = [parse_channel(e, f"{where}: channel #{i + 1}") for i, e in enumerate(entries)]
    targets = [(c.kind, c.target) for c in found]
    if len(set(targets)) != len(targets):
        raise ConfigError(N_("%(where)s：有渠道列出了两次（种类和目标相同）"), where=where)
    return tuple(found)


#: Priority names in the file: the clinic's words and the UPS names.
_PRIORITY_WORDS = {
    "urgent": Priority.HIGH,
    "high": Priority.HIGH,
    "routine": Priority.MEDIUM,
    "medium": Priority.MEDIUM,
    "low": Priority.LOW,
}


#: The longest deadline or waiting time a network may set: a year.
MAX_MINUTES = 366 * 24 * 60


def _minutes(value: Any, where: str) -> timedelta:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    # a value too small to be a microsecond is no time at all
    if not number or not 0 < value <= MAX_MINUTES or timedelta(minutes=value) <= timedelta(0):
        raise ConfigError(
            N_("%(where)s：分钟数须为不超过 %(most)s（一年）的正数，而非 %(value)r"),
            where=where,
            most=MAX_MINUTES,
            value=value,
        )
    return timedelta(minutes=value)


def _policy(entry: Any, where: str) -> NetworkPolicy:
    where = f"{where}: policy"
    if not isinstance(entry, dict):
        raise ConfigError(N_("%(where)s 须为表"), where=where)
    unknown = set(entry) - {"timezone", "deadline_minutes", "critical_ack_minutes", "at_risk_share"}
    if unknown:
        raise ConfigError(UNKNOWN_KEYS, where=where, keys=", ".join(sorted(unknown)))
    default = NetworkPolicy()
    deadlines = dict(default.deadlines)
    stemi = default.stemi_deadline
    raw = entry.get("deadline_minutes", {})
    if not isinstance(raw, dict):
        raise ConfigError(N_("%(where)s：deadline_minutes 须为表"), where=where)
    for key, value in raw.items():
        if key == "stemi":
            stemi = _minutes(value, f"{where}: deadline_minutes.stemi")
        elif key in _PRIORITY_WORDS:
            deadlines[_PRIORITY_WORDS[key]] = _minutes(value, f"{where}: deadline_minutes.{key}")
        else:
            allowed = ", ".join([*_PRIORITY_WORDS, "stemi"])
            raise ConfigError(
                N_("%(where)s：deadline_minutes.%(key)s：请用 %(allowed)s 之一"),
                where=where,
                key=key,
                allowed=allowed,
            )
    timezone = entry.get("timezone", default.timezone)
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            N_("%(where)s：时区 %(zone)r 不是 IANA 时区"), where=where, zone=timezone
        ) from None
    share = entry.get("at_risk_share", default.at_risk_share)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 1:
        raise ConfigError(N_("%(where)s：at_risk_share 须不小于 0 且小于 1"), where=where)
    return NetworkPolicy(
        deadlines=deadlines,
        stemi_deadline=stemi,
        critical_ack=(
            _minutes(entry["critical_ack_minutes"], f"{where}: critical_ack_minutes")
            if "critical_ack_minutes" in entry
            else default.critical_ack
        ),
        at_risk_share=float(share),
        timezone=str(timezone),
    )


def _route(entry: Mapping[str, Any], where: str) -> RouteSpec:
    where = f"{where}: route"
    unknown = set(entry) - {
        "modality",
        "specialty",
        "priority",
        "first_read",
        "escalation",
        "deadline_minutes",
        "pool",
    }
    if unknown:
        raise ConfigError(UNKNOWN_KEYS, where=where, keys=", ".join(sorted(unknown)))
    pool = _str(entry, "pool", where, required=False)
    first = _str(entry, "first_read", where, required=pool is None)
    specialty_text = _str(entry, "specialty", where, required=False)
    priority_text = _str(entry, "priority", where, required=False)
    try:
        specialty = Specialty(specialty_text) if specialty_text else None
    except ValueError:
        raise ConfigError(
            N_("%(where)s：专业 %(text)r 不是 radiology 或 ecg"), where=where, text=specialty_text
        ) from None
    if priority_text is not None and priority_text not in _PRIORITY_WORDS:
        raise ConfigError(
            N_("%(where)s：优先级 %(text)r 不是 urgent、routine 或 low"),
            where=where,
            text=priority_text,
        )
    modality = _str(entry, "modality", where, required=False)
    return RouteSpec(
        modality=modality.upper() if modality else None,
        specialty=specialty,
        priority=_PRIORITY_WORDS[priority_text] if priority_text else None,
        first_read=first,
        pool=pool,
        escalation=_str(entry, "escalation", where, required=False),
        deadline=(
            _minutes(entry["deadline_minutes"], f"{where}: deadline_minutes")
            if "deadline_minutes" in entry
            else None
        ),
    )


def _workstations(entries: Any, where: str) -> tuple[AePeer, ...]:
    """``[[facility.workstation]]``: an AE title with the ``host`` (address, CIDR block or
    host name) it calls from and its TLS ``certificate_sha256``."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(N_("%(where)s：'workstation' 须为表的列表"), where=where)
    found: dict[str, AePeer] = {}
    for entry in entries:
        unknown = set(entry) - {"ae_title", "host", "certificate_sha256"}
        if unknown:
            raise ConfigError(
                UNKNOWN_KEYS, where=f"{where}: workstation", keys=", ".join(sorted(unknown))
            )
        ae = _str(entry, "ae_title", f"{where}: workstation")
        if ae is None or not AE_TITLE.match(ae) or ae != ae.strip() or ae in found:
            raise ConfigError(
                N_("%(where)s：工作站 ae_title %(ae)r：须为 1 到 16 个字符，且只出现一次"),
                where=where,
                ae=ae,
            )
        host = _str(entry, "host", f"{where}: workstation {ae}", required=False)
        cert = _str(entry, "certificate_sha256", f"{where}: workstation {ae}", required=False)
        try:
            found[ae] = AePeer(
                ae_title=ae,
                host=check_peer_host(host) if host is not None else None,
                cert_sha256=fingerprint(cert) if cert is not None else None,
            )
        except ConfigError as exc:
            raise ConfigError(
                N_("%(where)s：工作站 %(ae)s：%(reason)s"), where=where, ae=ae, reason=exc.phrase
            ) from None
    return tuple(found.values())


def _destination(entry: Any, where: str) -> Destination:
    where = f"{where}: report_destination"
    if not isinstance(entry, dict):
        raise ConfigError(N_("%(where)s 须为表 { ae_title, host, port }"), where=where)
    ae = _str(entry, "ae_title", where)
    host = _str(entry, "host", where)
    port = entry.get("port")
    if ae is None or not AE_TITLE.match(ae):
        raise ConfigError(N_("%(where)s：ae_title 须为 1 到 16 个字符，不含反斜杠"), where=where)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(
            N_("%(where)s：port 须为 TCP 端口（1 到 65535），而非 %(port)r"), where=where, port=port
        )
    tls = entry.get("tls", False)
    if not isinstance(tls, bool):
        raise ConfigError(N_("%(where)s：tls 须为 true 或 false"), where=where)
    return Destination(ae_title=ae, host=host or "", port=port, tls=tls)


_DAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


def _clock(text: Any, where: str) -> time:
    match = _CLOCK.match(text) if isinstance(text, str) else None
    if match is None or (match.group(1) == "24" and match.group(2) != "00"):
        raise ConfigError(
            N_("%(where)s：%(text)r 不是一天中的时刻，应写作 '08:00' 或 '24:00'"),
            where=where,
            text=text,
        )
    hour, minute = int(match.group(1)), int(match.group(2))
    return time.max if hour == 24 else time(hour, minute)


def _duty(raw: Any, where: str) -> tuple[DutyShift, ...]:
    where = f"{where}: duty"
    if not isinstance(raw, list) or not all(isinstance(d, dict) for d in raw):
        raise ConfigError(N_("%(where)s 须为 { days, from, until } 表的列表"), where=where)
    shifts = []
    for d in raw:
        days = d.get("days", list(_DAYS))
        if not isinstance(days, list) or not all(isinstance(x, str) for x in days):
            raise ConfigError(
                N_("%(where)s：days 须为列表，如 %(form)s"), where=where, form='["mon", "tue"]'
            )
        try:
            weekdays = frozenset(_DAYS[x.lower()[:3]] for x in days)
        except KeyError:
            raise ConfigError(
                N_("%(where)s：days 须为 %(allowed)s 中的值"), where=where, allowed=", ".join(_DAYS)
            ) from None
        shifts.append(
            DutyShift(
                weekdays=weekdays,
                starts=_clock(d.get("from"), where),
                ends=_clock(d.get("until"), where),
            )
        )
    return tuple(shifts)


def parse_user(entry: Mapping[str, Any]) -> UserSpec:
    """One ``[[user]]`` table (as the administrators' API takes it too), checked as the
    network file's are; never a demo password.

    Raises
    ------
    ConfigError
        The message names the value that is wrong.
    """
    return _user(entry, 0, demo=False)


def _user(entry: Mapping[str, Any], i: int, *, demo: bool) -> UserSpec:
    where = f"user #{i + 1}"
    username = _str(entry, "username", where)
    assert username is not None
    where = f"user {username}"
    role_text = _str(entry, "role", where)
    try:
        role = Role(role_text or "")
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise ConfigError(
            N_("%(where)s：角色 %(text)r 不是 %(allowed)s 之一"),
            where=where,
            text=role_text,
            allowed=allowed,
        ) from None
    raw = entry.get("specialties", [])
    if not isinstance(raw, list):
        raise ConfigError(N_("%(where)s：'specialties' 须为列表"), where=where)
    try:
        specialties = tuple(Specialty(s) for s in raw)
    except ValueError:
        allowed = ", ".join(s.value for s in Specialty)
        raise ConfigError(
            N_("%(where)s：specialties 须为 %(allowed)s 中的值"), where=where, allowed=allowed
        ) from None
    if role is Role.READER and not specialties:
        raise ConfigError(N_("%(where)s：阅片医生至少须有一个专业"), where=where)
    if role is not Role.READER and specialties:
        raise ConfigError(N_("%(where)s：只有阅片医生有专业"), where=where)
    password_hash = _password_hash(entry, where, demo=demo)
    active = entry.get("active")
    if active is not None and not isinstance(active, bool):
        raise ConfigError(ACTIVE_TRUE_OR_FALSE, where=where)
    duty = _duty(entry["duty"], where) if "duty" in entry else None
    return UserSpec(
        active=active,
        demo_password=demo and "password" in entry,
        duty=duty,
        username=username,
        display_name=_str(entry, "display_name", where, required=False) or username,
        role=role,
        facility=_str(entry, "facility", where) or "",
        specialties=specialties,
        password_hash=password_hash,
    )


def _password_hash(entry: Mapping[str, Any], where: str, *, demo: bool) -> str | None:
    """The user's argon2 hash: as written (``password_hash``), or made from a demo file's
    plaintext ``password``; None when the file gives neither."""
    password, given = entry.get("password"), entry.get("password_hash")
    if password is not None and given is not None:
        raise ConfigError(
            N_("%(where)s：请给出 'password_hash' 或 'password'，不能两者都给"), where=where
        )
    if given is not None:
        if not isinstance(given, str) or not is_argon2_hash(given):
            raise ConfigError(
                N_("%(where)s：'password_hash' 须为 argon2 哈希（'$argon2id$v=19$…'）；%(fix)s"),
                where=where,
                fix=Phrase(N_("可用 %(command)s 生成"), {"command": "telemed password hash"}),
            )
        return given
    if password is None:
        return None
    if not demo:
        raise ConfigError(NO_PLAINTEXT, where=where, fix=Phrase(GIVE_A_HASH))
    if not isinstance(password, str):
        raise ConfigError(N_("%(where)s：'password' 须为文本"), where=where)
    try:
        return hash_password(password)
    except WrongValue as exc:
        raise ConfigError(N_("%(where)s：%(reason)s"), where=where, reason=exc.phrase) from None


def _parents_first(facilities: list[FacilitySpec]) -> list[FacilitySpec]:
    codes = {f.code for f in facilities}
    ordered: list[FacilitySpec] = []
    placed: set[str] = set()
    pending = list(facilities)
    while pending:
        ready = [
            f for f in pending if f.parent is None or f.parent in placed or f.parent not in codes
        ]
        if not ready:
            raise ConfigError(
                N_("机构的上下级构成了循环：%(codes)s"), codes=", ".join(f.code for f in pending)
            )
        for f in ready:
            ordered.append(f)
            placed.add(f.code)
        pending = [f for f in pending if f.code not in placed]
    return ordered


# The same tables as JSON, for the administrators' API (where names a field for the message).
def parse_policy(entry: Any) -> NetworkPolicy:
    """A ``policy`` table: deadlines per priority and STEMI, critical-result window."""
    return _policy(entry, "body")


def parse_routes(entries: Any) -> tuple[RouteSpec, ...]:
    """A list of ``route`` tables (empty: the defaults, county above and city above)."""
    if not isinstance(entries, list) or not all(isinstance(r, dict) for r in entries):
        raise ConfigError(N_("%(where)s：'routes' 须为路由对象的列表"), where="body")
    return tuple(_route(r, "body") for r in entries)


def parse_duty(entries: Any) -> tuple[DutyShift, ...]:
    """A list of ``{days, from, until}`` shifts (empty: always on duty)."""
    return _duty(entries, "body")


def parse_clock(text: Any, where: str) -> time:
    """A time of day as the network file writes it ('08:00', '24:00' for the end of day)."""
    return _clock(text, where)


def parse_priority(text: str) -> Priority:
    """A priority by its word (urgent, routine, low) or its value (high, medium, low)."""
    try:
        return _PRIORITY_WORDS[text]
    except KeyError:
        raise ConfigError(N_("优先级 %(text)r 不是 urgent、routine 或 low"), text=text) from None


# --- placing a facility in the tree -----------------------------------------------------------


def check_placement(
    code: str,
    tier: Tier,
    parent: tuple[str, Tier] | None,
    children: Sequence[tuple[str, Tier]] = (),
) -> None:
    """A facility of ``tier`` may stand under ``parent`` (code, tier; None: at the top) with
    ``children`` (code, tier each) under it: the tier order is kept both ways (a village
    under a township or a county, a township under a county, a county under a city).

    Raises
    ------
    ConfigError
        The message names the facilities and tiers that do not fit.
    """
    if parent is None:
        if tier not in (Tier.CITY, Tier.COUNTY):
            raise ConfigError(N_("机构 %(code)s：%(tier)s须有上级机构"), code=code, tier=tier)
    elif parent[1] not in _PARENT_TIER[tier]:
        above = tuple(sorted(_PARENT_TIER[tier]))
        raise ConfigError(
            N_("机构 %(code)s（%(tier)s）不能位于 %(parent)s（%(parent_tier)s）之下：%(rule)s"),
            code=code,
            tier=tier,
            parent=parent[0],
            parent_tier=parent[1],
            rule=Phrase(N_("%(tier)s位于%(above)s之下"), {"tier": tier, "above": above})
            if above
            else Phrase(N_("%(tier)s是最高一级"), {"tier": tier}),
        )
    for child, child_tier in children:
        if tier not in _PARENT_TIER[child_tier]:
            raise ConfigError(
                N_("机构 %(code)s 不能改为%(tier)s：%(child)s（%(child_tier)s）位于其下"),
                code=code,
                tier=tier,
                child=child,
                child_tier=child_tier,
            )


# --- writing the network back (telemed network export) ---------------------------------------

_DAY_NAMES = {number: name for name, number in _DAYS.items()}
_PRIORITY_NAMES = {Priority.HIGH: "urgent", Priority.MEDIUM: "routine", Priority.LOW: "low"}


def _in_minutes(value: timedelta) -> int | float:
    minutes = value.total_seconds() / 60
    return int(minutes) if minutes == int(minutes) else round(minutes, 6)


def _clock_text(t: time) -> str:
    return "24:00" if t == time.max else t.strftime("%H:%M")


def _policy_table(p: NetworkPolicy) -> dict[str, Any]:
    deadlines = {_PRIORITY_NAMES[k]: _in_minutes(v) for k, v in p.deadlines.items()}
    return {
        "timezone": p.timezone,
        "deadline_minutes": deadlines | {"stemi": _in_minutes(p.stemi_deadline)},
        "critical_ack_minutes": _in_minutes(p.critical_ack),
        "at_risk_share": p.at_risk_share,
    }


def _route_table(r: RouteSpec) -> dict[str, Any]:
    table: dict[str, Any] = {"first_read": r.first_read}
    if r.modality:
        table["modality"] = r.modality
    if r.specialty:
        table["specialty"] = r.specialty.value
    if r.priority:
        table["priority"] = _PRIORITY_NAMES[r.priority]
    if r.escalation:
        table["escalation"] = r.escalation
    if r.deadline:
        table["deadline_minutes"] = _in_minutes(r.deadline)
    if r.pool:
        table["pool"] = r.pool
    return table


def _workstation_table(w: AePeer) -> dict[str, Any]:
    table: dict[str, Any] = {"ae_title": w.ae_title}
    if w.host:
        table["host"] = w.host
    if w.cert_sha256:
        table["certificate_sha256"] = w.cert_sha256
    return table


def _facility_table(f: FacilitySpec) -> dict[str, Any]:
    table: dict[str, Any] = {"code": f.code, "name": f.name, "tier": f.tier.value}
    if f.parent:
        table["parent"] = f.parent
    table["ae_titles"] = list(f.ae_titles)
    if f.active is False:
        table["active"] = False
    if f.workstations:
        table["workstation"] = [_workstation_table(w) for w in f.workstations]
    if f.policy is not None:
        table["policy"] = _policy_table(f.policy)
    if f.routes is not None:
        table["route"] = [_route_table(r) for r in f.routes]
    if f.report_destination is not None:
        d = f.report_destination
        table["report_destination"] = {
            "ae_title": d.ae_title,
            "host": d.host,
            "port": d.port,
            "tls": d.tls,
        }
    return table


def _user_table(u: UserSpec) -> dict[str, Any]:
    table: dict[str, Any] = {
        "username": u.username,
        "display_name": u.display_name,
        "role": u.role.value,
        "facility": u.facility,
    }
    if u.specialties:
        table["specialties"] = [s.value for s in u.specialties]
    if u.active is False:
        table["active"] = False
    if u.duty is not None:
        table["duty"] = [
            {
                "days": [_DAY_NAMES[d] for d in sorted(s.weekdays)],
                "from": _clock_text(s.starts),
                "until": _clock_text(s.ends),
            }
            for s in u.duty
        ]
    return table


def format_network(facilities: Sequence[FacilitySpec], users: Sequence[UserSpec]) -> str:
    """The network file (TOML) that declares these facilities and users, as
    ``parse_network`` reads it back: no password or password hash is written (an import
    gives each user without a password a one-time link)."""
    header = (
        "# The network, as `telemed network export` wrote it: `telemed network import` of\n"
        "# this file gives the same network. It holds no password and no token.\n\n"
    )
    document = {
        "facility": [_facility_table(f) for f in _parents_first(list(facilities))],
        "user": [_user_table(u) for u in users],
    }
    return header + tomli_w.dumps(document)
