"""Notifications that leave the network: which channels a notice goes to, the words of the
message in the recipient's language (no patient name or ID unless the channel allows it),
the bodies WeChat Work and
DingTalk robots and a generic webhook take, DingTalk's URL signature, and how an answer
is judged. Pure: the sending is the worker's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

from storage.records import Channel, ChannelKind, ChannelSpec, Conclusion, Language, NoticeKind
from teleradiology.core.errors import ConfigError
from teleradiology.core.language import N_, Gettext, gettext, word

#: The notices of a final report: only channels that take reports. Critical ones go on
#: every channel.
_REPORT_NOTICES = frozenset({NoticeKind.REPORT, NoticeKind.ADDENDUM})


def channels_for(kind: NoticeKind, channels: Sequence[Channel]) -> list[Channel]:
    """The channels a notice of ``kind`` goes out on: a critical result (at once, re-sent,
    or the duty administrator's alert) on every active one; a report on those that take
    reports."""
    active = [c for c in channels if c.spec.active]
    if kind in _REPORT_NOTICES:
        return [c for c in active if c.spec.reports]
    return active


@dataclass(frozen=True, kw_only=True)
class NoticeFacts:
    """What a message may say about one report."""

    kind: NoticeKind
    report_id: int
    case_id: int
    clinic: str
    modality: str
    conclusion: Conclusion
    #: the re-send's number (0: the first message)
    resend: int
    #: where the report opens (the service's own page; signing in is needed)
    link: str
    patient_name: str | None
    patient_id: str | None


@dataclass(frozen=True, kw_only=True)
class Message:
    subject: str
    text: str
    markdown: str


def _title(facts: NoticeFacts, language: Language) -> str:
    """The notice's kind (a re-send with its number), tagged as a critical result or a
    report."""
    _ = gettext(language)
    title = word(facts.kind, language)
    if facts.kind is NoticeKind.CRITICAL_RESEND:
        title = _(N_("%(kind)s第%(n)s次")) % {"kind": title, "n": facts.resend}
    if facts.conclusion is Conclusion.CRITICAL:
        return _(N_("【危急值】%(title)s")) % {"title": title}
    return _(N_("【远程诊断】%(title)s")) % {"title": title}


def _message(title: str, rows: Sequence[tuple[str, str]], subject: str, _: Gettext) -> Message:
    """A message of a title and rows of label (Chinese, marked) and value, as plain text and
    as markdown."""
    shown = [(_(k), v) for k, v in rows]
    text = "\n".join([title, *(f"{k}: {v}" for k, v in shown)])
    markdown = "\n".join([f"### {title}", *(f"> **{k}**: {v}" for k, v in shown)])
    return Message(subject=subject, text=text, markdown=markdown)


def compose(
    facts: NoticeFacts, *, allow_patient_name: bool, language: Language = Language.ZH_CN
) -> Message:
    """The message of a notice in `language` (the recipient's): facility, modality,
    conclusion class, the case and report numbers and a link; the patient's name and ID
    only when ``allow_patient_name``."""
    title = _title(facts, language)
    rows = [
        (N_("送检机构"), facts.clinic),
        (N_("检查类型"), facts.modality or "-"),
        (N_("结论"), word(facts.conclusion, language)),
        (N_("病例/报告号"), f"{facts.case_id}/{facts.report_id}"),
    ]
    if allow_patient_name and (facts.patient_name or facts.patient_id):
        name = (facts.patient_name or "").replace("^", " ").strip()
        rows.append((N_("患者"), f"{name} · ID {facts.patient_id or '-'}".strip(" ·")))
    rows.append((N_("链接"), facts.link))
    subject = f"{title} {facts.clinic} {facts.modality} #{facts.report_id}".strip()
    return _message(title, rows, subject, gettext(language))


def webhook_body(spec: ChannelSpec, message: Message, facts: NoticeFacts) -> dict[str, Any]:
    """The JSON a channel's receiver takes: the robots' text or markdown message, or the
    generic webhook's fields (with the patient's only where the channel allows them)."""
    robot = _robot_body(spec, message)
    if robot is not None:
        return robot
    body: dict[str, Any] = {
        "event": facts.kind.value,
        "subject": message.subject,
        "text": message.text,
        "report_id": facts.report_id,
        "case_id": facts.case_id,
        "facility": facts.clinic,
        "modality": facts.modality,
        "conclusion": facts.conclusion.value,
        "resend": facts.resend,
        "link": facts.link,
    }
    if spec.allow_patient_name:
        body |= {"patient_name": facts.patient_name, "patient_id": facts.patient_id}
    return body


def _robot_body(spec: ChannelSpec, message: Message) -> dict[str, Any] | None:
    """The message as a WeChat Work or DingTalk robot takes it; None for other kinds."""
    if spec.kind is ChannelKind.WECHAT_WORK:
        if spec.markdown:
            return {"msgtype": "markdown", "markdown": {"content": message.markdown}}
        return {"msgtype": "text", "text": {"content": message.text}}
    if spec.kind is ChannelKind.DINGTALK:
        if spec.markdown:
            return {
                "msgtype": "markdown",
                "markdown": {"title": message.subject, "text": message.markdown},
            }
        return {"msgtype": "text", "text": {"content": message.text}}
    return None


def trial_message(facility: str, link: str, language: Language = Language.ZH_CN) -> Message:
    """An administrator's test of a channel, in `language` (the channel's): names the
    facility and the service, nothing of any patient or report."""
    _ = gettext(language)
    title = _(N_("【远程诊断】%(title)s")) % {"title": _(N_("测试消息"))}
    rows = [
        (N_("所属机构"), facility),
        (N_("说明"), _(N_("渠道配置正确"))),
        (N_("链接"), link),
    ]
    return _message(title, rows, f"{title} {facility}", _)


def trial_body(spec: ChannelSpec, message: Message) -> dict[str, Any]:
    """The JSON of a test message: the robots' message, or the generic webhook's fields."""
    robot = _robot_body(spec, message)
    if robot is not None:
        return robot
    return {"event": "test", "subject": message.subject, "text": message.text}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature: HMAC-SHA256 of "timestamp\\nsecret" under the secret, base64."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_url(spec: ChannelSpec, timestamp_ms: int) -> str:
    """The URL to post to: a DingTalk robot with a secret gets ``timestamp`` and ``sign``."""
    if spec.kind is not ChannelKind.DINGTALK or not spec.secret:
        return spec.target
    sign = quote_plus(dingtalk_sign(spec.secret, timestamp_ms))
    joiner = "&" if urlsplit(spec.target).query else "?"
    return f"{spec.target}{joiner}timestamp={timestamp_ms}&sign={sign}"


@dataclass(frozen=True, kw_only=True)
class Answer:
    """How one attempt ended: taken or not, the HTTP status or SMTP code, the answer's
    first words (the receiver's, never what was sent)."""

    ok: bool
    code: str
    text: str


def judge_webhook(kind: ChannelKind, status: int, text: str) -> Answer:
    """A webhook's answer: a 2xx; from a robot also ``errcode`` 0 (their errors come as
    200)."""
    short = text[:300]
    if not 200 <= status < 300:
        return Answer(ok=False, code=str(status), text=short)
    if kind in (ChannelKind.WECHAT_WORK, ChannelKind.DINGTALK):
        try:
            found = json.loads(text)
        except ValueError:
            return Answer(ok=False, code=str(status), text=f"not JSON: {short}")
        errcode = found.get("errcode", 0) if isinstance(found, dict) else None
        if errcode != 0:
            return Answer(ok=False, code=f"{status}/{errcode}", text=short)
    return Answer(ok=True, code=str(status), text=short)


# --- checking a channel ---------------------------------------------------------------------

_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
_KEYS = {"kind", "target", "label", "secret", "markdown", "allow_patient_name", "reports", "active"}


def _flag(entry: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = entry.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(N_("%(where)s：'%(key)s' 须为 true 或 false"), where=where, key=key)
    return value


def _text(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 2000:
        raise ConfigError(
            N_("%(where)s：'%(key)s' 须为文本（至多 2000 个字符）"), where=where, key=key
        )
    return value.strip()


def parse_channel(entry: Mapping[str, Any], where: str) -> ChannelSpec:
    """A channel as the network file's ``[[facility.channel]]`` or the API writes it.

    Raises
    ------
    ConfigError
        Naming the key that is wrong and what it may be.
    """
    if not isinstance(entry, Mapping):
        raise ConfigError(N_("%(where)s：渠道须为表 { kind, target, ... }"), where=where)
    unknown = set(entry) - _KEYS
    if unknown:
        raise ConfigError(
            N_("%(where)s：未知的键 %(keys)s"), where=where, keys=", ".join(sorted(unknown))
        )
    kind_text = entry.get("kind")
    try:
        kind = ChannelKind(str(kind_text))
    except ValueError:
        allowed = ", ".join(k.value for k in ChannelKind)
        raise ConfigError(
            N_("%(where)s：kind %(kind)r 不是以下之一：%(allowed)s"),
            where=where,
            kind=kind_text,
            allowed=allowed,
        ) from None
    spec = ChannelSpec(
        kind=kind,
        target=_text(entry, "target", where) or "",
        label=_text(entry, "label", where) or "",
        secret=_text(entry, "secret", where) or None,
        markdown=_flag(entry, "markdown", where, False),
        allow_patient_name=_flag(entry, "allow_patient_name", where, False),
        reports=_flag(entry, "reports", where, True),
        active=_flag(entry, "active", where, True),
    )
    return check_channel(spec, where)


def check_channel(spec: ChannelSpec, where: str) -> ChannelSpec:
    """The channel, when its target fits its kind (an address for e-mail, an http(s) URL
    with a host for the others) and its options their kind."""
    if spec.kind is ChannelKind.EMAIL:
        if not _EMAIL.match(spec.target):
            raise ConfigError(
                N_("%(where)s：邮件目标 %(target)r 不是邮箱地址"), where=where, target=spec.target
            )
    else:
        parts = urlsplit(spec.target)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError(N_("%(where)s：target 须为 https://（或 http://）URL"), where=where)
    if spec.secret and spec.kind is not ChannelKind.DINGTALK:
        raise ConfigError(N_("%(where)s：'secret' 只用于签名钉钉机器人的 URL"), where=where)
    if spec.markdown and spec.kind not in (ChannelKind.WECHAT_WORK, ChannelKind.DINGTALK):
        raise ConfigError(N_("%(where)s：'markdown' 只用于企业微信和钉钉机器人"), where=where)
    return spec


def with_changes(spec: ChannelSpec, changes: Mapping[str, Any], where: str) -> ChannelSpec:
    """A channel with some of its settings changed (its kind stays), checked again."""
    if "kind" in changes and changes["kind"] != spec.kind.value:
        raise ConfigError(N_("%(where)s：渠道的种类不能修改；请新增一个渠道"), where=where)
    return parse_channel(
        {
            "kind": spec.kind.value,
            "target": spec.target,
            "label": spec.label,
            "secret": spec.secret,
            "markdown": spec.markdown,
            "allow_patient_name": spec.allow_patient_name,
            "reports": spec.reports,
            "active": spec.active,
        }
        | dict(changes),
        where,
    )


def shown_target(spec: ChannelSpec) -> str:
    """The target as pages and the API show it: a URL's query values (a robot's key or
    access token is a credential) masked."""
    if spec.kind is ChannelKind.EMAIL:
        return spec.target
    parts = urlsplit(spec.target)
    query = urlencode([(k, "***") for k, _ in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit(parts._replace(query=query, fragment=""))
