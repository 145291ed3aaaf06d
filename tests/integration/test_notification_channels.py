"""Notifications beyond the page, against real receivers: an SMTP server (aiosmtpd) in this
process and an aiohttp server taking WeChat Work, DingTalk (its signature checked as
DingTalk does) and generic webhook posts. Channels are configured by the administrator's
API and the network file; the messages are sent by the worker's own carrier, and by the
worker's job runner itself for the retry."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import email
import hashlib
import hmac
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message as MailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from storage.records import NoticeKind
from teleradiology.core.network_file import parse_network
from teleradiology.http.context import SETTINGS
from teleradiology.services import administration, notices
from teleradiology.services.deadlines import watch_once
from teleradiology.services.notices import NOTICE_ATTEMPTS, Outcome
from teleradiology.settings import Settings
from tests.e2e.harness import free_port
from tests.factory import make_study
from tests.integration.conftest import Api, local_settings, serving
from tests.integration.dicomweb_support import route_all, store
from tests.integration.one_language import choose_english
from tests.integration.test_ecg_reading_page import session
from tests.integration.test_reports_home import _deliver, _get, _ok, _post
from worker import outbound

DING_SECRET = "SEC0123456789abcdef"
PATIENT = "李^秀兰"
PATIENT_ID = "HX-7788"

# --- the receivers ----------------------------------------------------------------------------


@dataclasses.dataclass
class Mail:
    sender: str
    to: list[str]
    message: MailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",)) if hasattr(self.message, "get_body") else None
        text = str(part.get_content() if part is not None else self.message.get_payload())
        return text.replace("\r\n", "\n")


class Mailbox:
    """What the SMTP server took (its handler runs on the controller's own thread)."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.mails.append(
            Mail(
                sender=str(envelope.mail_from),
                to=list(envelope.rcpt_tos),
                message=email.message_from_bytes(content, policy=default_policy),
            )
        )
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.mails if address in m.to]


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@dataclasses.dataclass
class Posted:
    path: str
    query: dict[str, str]
    body: Any
    signature_ok: bool | None


@dataclasses.dataclass
class Hooks:
    """A webhook receiver: each path answers the statuses queued for it (then 200), and
    ``/ding`` checks DingTalk's signature as DingTalk does."""

    base: str
    posted: list[Posted] = dataclasses.field(default_factory=list)
    statuses: dict[str, list[int]] = dataclasses.field(default_factory=dict)

    def at(self, path: str) -> list[Posted]:
        return [p for p in self.posted if p.path == path]


def _ding_signature_ok(query: dict[str, str]) -> bool:
    """DingTalk's check: the timestamp within an hour, and the sign its HMAC-SHA256."""
    stamp = query.get("timestamp", "")
    if not stamp.isdigit() or abs(time.time() * 1000 - int(stamp)) > 3600_000:
        return False
    expected = base64.b64encode(
        hmac.new(DING_SECRET.encode(), f"{stamp}\n{DING_SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    return hmac.compare_digest(query.get("sign", ""), expected)


@pytest.fixture
async def hooks() -> AsyncIterator[Hooks]:
    port = free_port()
    found = Hooks(base=f"http://127.0.0.1:{port}")

    async def take(request: web.Request) -> web.Response:
        path = request.path
        query = dict(request.query)
        signed = _ding_signature_ok(query) if path == "/ding" else None
        found.posted.append(
            Posted(path=path, query=query, body=await request.json(), signature_ok=signed)
        )
        queued = found.statuses.get(path) or []
        status = queued.pop(0) if queued else 200
        if signed is False:
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        if status != 200:
            return web.Response(status=status, text="receiver busy")
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    app = web.Application()
    app.router.add_post("/{name}", take)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield found
    finally:
        await runner.cleanup()


def _smtp(settings: Settings, port: int) -> Settings:
    return settings.with_(smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none")


@pytest.fixture
async def notified(
    database_url: str, tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> AsyncIterator[Api]:
    settings = _smtp(local_settings(database_url, tmp_path), mailbox[1])
    async with serving(settings) as served:
        yield served


# --- helpers ----------------------------------------------------------------------------------


async def _channel(api: Api, admin: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.post(
        "/api/v1/admin/notification-channels", json=body, headers=api.auth(admin)
    )
    answer: dict[str, Any] = await response.json()
    assert response.status == 201, answer
    return answer


async def _signed_report(api: Api, conclusion: str, patient_id: str = PATIENT_ID) -> int:
    uid = await store(
        api,
        "HB-XL-WD",
        make_study(modality="CR", count=1, patient_id=patient_id, patient_name=PATIENT),
    )
    await route_all(api)
    case_id = await api.pool.fetchval(
        "select c.id from reading_case c join study s on s.id = c.study_id "
        "where s.study_instance_uid = $1",
        uid,
    )
    await _ok(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")
    report = await _ok(
        api,
        "wang.reader",
        f"/api/v1/cases/{case_id}/report",
        {"findings": "右侧大量气胸。", "impression": "右侧气胸。", "conclusion": conclusion},
    )
    await _deliver(api, report["id"])  # or the worker's job did
    for _ in range(100):
        if await api.pool.fetchval(
            "select delivered_at is not null from report where id = $1", report["id"]
        ):
            break
        await asyncio.sleep(0.1)
    return int(report["id"])


async def _send_pending(api: Api, carrier: outbound.Carrier) -> list[Outcome]:
    """What the worker's jobs do, one message after another."""
    ids = await api.pool.fetch(
        "select id from outbound_message where status = 'pending' order by id"
    )
    return [
        (
            await notices.send_notice(
                api.pool, r["id"], carrier=carrier, base_url="https://telemed.example"
            )
        ).outcome
        for r in ids
    ]


async def _messages(api: Api, report_id: int) -> list[dict[str, Any]]:
    record = await _get(api, "hb.admin", f"/api/v1/reports/{report_id}/notifications")
    found: list[dict[str, Any]] = record["messages"]
    return found


# --- tests ------------------------------------------------------------------------------------


async def test_a_report_goes_out_by_mail_and_robots_with_the_patient_only_where_allowed(
    notified: Api, mailbox: tuple[Mailbox, int], hooks: Hooks
) -> None:
    api, box = notified, mailbox[0]
    await _channel(
        api,
        "hb.admin",
        {"facility": "HB-XL-WD", "kind": "email", "target": "wd-clinic@example.org"},
    )
    wechat = await _channel(
        api,
        "hb.admin",
        {
            "facility": "HB-XL-WD",
            "kind": "wechat_work",
            "target": f"{hooks.base}/wechat?key=robot-key-1",
            "markdown": True,
        },
    )
    assert wechat["target"] == f"{hooks.base}/wechat?key=%2A%2A%2A"  # the key is not shown
    ding = await _channel(
        api,
        "hb.admin",
        {
            "facility": "HB-XL-WD",
            "kind": "dingtalk",
            "target": f"{hooks.base}/ding?access_token=tok",
            "secret": DING_SECRET,
            "allow_patient_name": True,
        },
    )
    assert ding["has_secret"]
    assert "secret" not in ding
    # the clinic user's own e-mail, added on their account
    own = await api.client.post(
        "/api/v1/me/notification-channels",
        json={"address": "xlwd-nurse@example.org"},
        headers=api.auth("xlwd.clinic"),
    )
    assert own.status == 201, await own.text()
    # who reads English gets their own messages in English
    await choose_english(api, "xlwd.clinic")
    # another clinic's channel hears nothing of this clinic's report
    await _channel(
        api, "hb.admin", {"facility": "HB-FH-CG", "kind": "email", "target": "cg@example.org"}
    )

    report_id = await _signed_report(api, "abnormal")
    async with outbound.carrier(_smtp(api.app[SETTINGS], mailbox[1])) as carrier:
        assert await _send_pending(api, carrier) == [Outcome.SENT] * 4

    (mail,) = box.to("wd-clinic@example.org")
    assert mail.sender == "telemed@localhost"
    assert "王店村卫生室" in mail.subject
    assert f"#{report_id}" in mail.subject
    assert "结论: 异常\n" in mail.body  # a facility's channel: the network's language
    assert "CR" in mail.body
    assert f"https://telemed.example/#report-{report_id}" in mail.body
    assert "李" not in mail.body + mail.subject
    assert PATIENT_ID not in mail.body
    link = f"https://telemed.example/#report-{report_id}"
    assert not re.search(r"[A-Za-z]{3,}", mail.subject + mail.body.replace(link, ""))
    (own_mail,) = box.to("xlwd-nurse@example.org")
    clinic = "淮滨县新里镇王店村卫生室"
    assert own_mail.subject == f"[Remote diagnosis] report ready {clinic} CR #{report_id}"
    assert own_mail.body.startswith(f"[Remote diagnosis] report ready\nFacility: {clinic}\n")
    assert "Conclusion: abnormal\n" in own_mail.body
    assert f"Link: https://telemed.example/#report-{report_id}" in own_mail.body
    assert not re.search(r"[\u4e00-\u9fff]", own_mail.body.replace(clinic, ""))
    assert not box.to("cg@example.org")

    (robot,) = hooks.at("/wechat")
    assert robot.body["msgtype"] == "markdown"
    assert robot.query == {"key": "robot-key-1"}
    assert "李" not in robot.body["markdown"]["content"]
    (signed,) = hooks.at("/ding")
    assert signed.signature_ok is True
    assert signed.body["msgtype"] == "text"
    assert "李 秀兰" in signed.body["text"]["content"]  # this channel allows the name
    assert PATIENT_ID in signed.body["text"]["content"]

    messages = await _messages(api, report_id)
    assert {m["status"] for m in messages} == {"sent"}
    assert all(len(m["tries"]) == 1 and m["tries"][0]["ok"] for m in messages)
    audited = await api.pool.fetchval(
        "select count(*) from audit where object_type = 'notification_channel'"
    )
    assert audited == 5


async def test_a_failing_receiver_is_retried_by_the_worker_and_each_attempt_recorded(
    database_url: str, tmp_path: Path, hooks: Hooks
) -> None:
    settings = local_settings(database_url, tmp_path, sweep_interval_s=3600.0)
    async with serving(settings, run_worker=True) as api:
        await _channel(
            api,
            "hb.admin",
            {"facility": "HB-XL-WD", "kind": "webhook", "target": f"{hooks.base}/hook"},
        )
        hooks.statuses["/hook"] = [500]
        report_id = await _signed_report(api, "normal")
        for _ in range(300):
            if len(hooks.at("/hook")) >= 2:
                break
            await asyncio.sleep(0.1)
        (message,) = await _messages(api, report_id)
        for _ in range(50):
            if message["status"] == "sent":
                break
            await asyncio.sleep(0.1)
            (message,) = await _messages(api, report_id)
    assert len(hooks.at("/hook")) == 2
    first, second = hooks.at("/hook")
    assert first.body == second.body
    assert first.body["event"] == "report"
    assert first.body["conclusion"] == "normal"
    assert "patient_name" not in first.body
    assert message["status"] == "sent"
    assert [(t["ok"], t["code"]) for t in message["tries"]] == [(False, "500"), (True, "200")]
    assert message["tries"][0]["answer"] == "receiver busy"
    gap = datetime.fromisoformat(message["tries"][1]["at"]) - datetime.fromisoformat(
        message["tries"][0]["at"]
    )
    assert gap >= timedelta(seconds=4)  # the first backoff step


async def test_a_message_given_up_is_listed_for_administrators_and_retried(
    notified: Api, hooks: Hooks, mailbox: tuple[Mailbox, int]
) -> None:
    api = notified
    await _channel(
        api, "hb.admin", {"facility": "HB-XL-WD", "kind": "webhook", "target": f"{hooks.base}/down"}
    )
    hooks.statuses["/down"] = [503] * NOTICE_ATTEMPTS
    report_id = await _signed_report(api, "normal")
    async with outbound.carrier(api.app[SETTINGS]) as carrier:
        outcomes = [(await _send_pending(api, carrier))[0] for _ in range(NOTICE_ATTEMPTS)]
        assert outcomes == [Outcome.RETRY] * (NOTICE_ATTEMPTS - 1) + [Outcome.FAILED]
        failed = await _get(api, "hb.admin", "/api/v1/admin/deliveries/failed")
        (listed,) = [f for f in failed["failed"] if f["kind"] == "notice"]
        assert listed["report_id"] == report_id
        assert listed["attempts"] == NOTICE_ATTEMPTS
        assert listed["last_error"].startswith("503")
        # a clinic neither sees nor retries it
        retry = f"/api/v1/admin/deliveries/failed/notice/{listed['id']}/retry"
        other = await _post(api, "xlwd.clinic", retry)
        assert other.status in (403, 404)
        await _ok(api, "hb.admin", retry)
        jobs = await api.pool.fetchval(
            "select count(*) from pgqueuer where entrypoint = 'send_notice'"
        )
        assert jobs == 2  # the first, and the retry's
        assert await _send_pending(api, carrier) == [Outcome.SENT]
    (message,) = await _messages(api, report_id)
    assert message["status"] == "sent"
    assert message["attempts"] == 1
    assert len(message["tries"]) == NOTICE_ATTEMPTS + 1


async def test_an_unacknowledged_critical_result_goes_again_on_every_channel_and_to_the_duty(
    notified: Api, mailbox: tuple[Mailbox, int], hooks: Hooks
) -> None:
    api, box = notified, mailbox[0]
    await _channel(
        api,
        "hb.admin",
        {
            "facility": "HB-XL-WD",
            "kind": "email",
            "target": "wd-clinic@example.org",
            "reports": False,  # critical results come on every channel all the same
        },
    )
    await _channel(
        api,
        "hb.admin",
        {"facility": "HB-XL-WD", "kind": "wechat_work", "target": f"{hooks.base}/wechat?key=k"},
    )
    await _channel(
        api,
        "hb.admin",
        {
            "facility": "HB-COUNTY",
            "username": "hb.duty",
            "kind": "email",
            "target": "duty@example.org",
        },
    )
    report_id = await _signed_report(api, "critical")
    settings = _smtp(api.app[SETTINGS], mailbox[1])
    async with outbound.carrier(settings) as carrier:
        assert await _send_pending(api, carrier) == [Outcome.SENT, Outcome.SENT]  # at once
        assert "【危急值】" in box.to("wd-clinic@example.org")[0].subject
        delivered = await api.pool.fetchval(
            "select delivered_at from report where id = $1", report_id
        )
        at = delivered + timedelta(minutes=16)
        assert (await watch_once(api.pool, now=at)).critical_resent == 1
        assert await _send_pending(api, carrier) == [Outcome.SENT] * 3
        resent = box.to("wd-clinic@example.org")[1]
        assert "第1次" in resent.subject
        assert len(hooks.at("/wechat")) == 2
        assert "重发第1次" in hooks.at("/wechat")[1].body["text"]["content"]
        (alert,) = box.to("duty@example.org")
        assert "危急值超时未确认" in alert.subject
        assert "https://telemed.example/admin" in alert.body
        assert "李" not in alert.body

        # a re-send queued, then the clinic acknowledges by name with the read-back
        assert (await watch_once(api.pool, now=at + timedelta(minutes=16))).critical_resent == 1
        await _ok(
            api,
            "xlwd.clinic",
            f"/api/v1/reports/{report_id}/acknowledge",
            {"name": "王村医", "read_back": "右侧气胸，危急值，已通知医生"},
        )
        assert set(await _send_pending(api, carrier)) == {Outcome.SKIPPED}
        assert (await watch_once(api.pool, now=at + timedelta(hours=3))).critical_resent == 0
        assert await _send_pending(api, carrier) == []
    kinds = [(m["kind"], m["status"]) for m in await _messages(api, report_id)]
    assert kinds.count((NoticeKind.CRITICAL.value, "sent")) == 2
    assert kinds.count((NoticeKind.CRITICAL_RESEND.value, "sent")) == 2
    assert kinds.count((NoticeKind.CRITICAL_ALERT.value, "sent")) == 1
    assert {k for k, s in kinds if s == "skipped"} == {"critical_resend", "critical_alert"}
    report = await _get(api, "xlwd.clinic", f"/api/v1/reports/{report_id}")
    assert report["acknowledged_read_back"] == "右侧气胸，危急值，已通知医生"


async def test_channels_come_from_the_network_file_too_and_bad_ones_are_refused(
    notified: Api,
) -> None:
    api = notified
    text = """
[[facility]]
code = "HB-XL-WD"
name = "淮滨县新里镇王店村卫生室"
tier = "village"
parent = "HB-XL"
ae_titles = ["HBXLWD01"]

[[facility.channel]]
kind = "dingtalk"
target = "https://oapi.dingtalk.com/robot/send?access_token=abc"
secret = "SECxyz"
label = "村医群"
"""
    facilities, users = parse_network(text)
    await administration.import_network(api.pool, facilities, users)
    await administration.import_network(api.pool, facilities, users)  # again: updated, once
    listed = await _get(api, "hb.admin", "/api/v1/admin/notification-channels")
    (ding,) = [c for c in listed["channels"] if c["kind"] == "dingtalk"]
    assert ding["label"] == "村医群"
    assert ding["has_secret"]
    assert "abc" not in ding["target"]
    # the administrator's dashboard lists them, the robot's token masked
    dashboard = await api.client.get("/admin", headers=await session(api, "hb.admin"))
    page = await dashboard.text()
    assert dashboard.status == 200
    assert f'data-channel="{ding["id"]}"' in page
    assert "钉钉群机器人" in page
    assert "村医群" in page
    assert "access_token=abc" not in page
    # changed, and refused when wrong
    changed = await api.client.patch(
        f"/api/v1/admin/notification-channels/{ding['id']}",
        json={"allow_patient_name": True},
        headers=api.auth("hb.admin"),
    )
    assert changed.status == 200
    assert (await changed.json())["allow_patient_name"] is True
    for body in (
        {"facility": "HB-XL-WD", "kind": "email", "target": "not-an-address"},
        {"facility": "HB-XL-WD", "kind": "webhook", "target": "ftp://x.example/hook"},
        {"facility": "HB-XL-WD", "kind": "webhook", "target": "https://x.example", "secret": "s"},
        {"facility": "HB-XL-WD", "kind": "fax", "target": "123"},
    ):
        response = await api.client.post(
            "/api/v1/admin/notification-channels", json=body, headers=api.auth("hb.admin")
        )
        assert response.status == 400, (body, await response.text())
    # a reader neither sees nor changes them
    elsewhere = await api.client.delete(
        f"/api/v1/admin/notification-channels/{ding['id']}", headers=api.auth("wang.reader")
    )
    assert elsewhere.status in (403, 404)
    gone = await api.client.delete(
        f"/api/v1/admin/notification-channels/{ding['id']}", headers=api.auth("hb.admin")
    )
    assert gone.status == 200


async def test_a_message_whose_job_was_lost_is_queued_again(notified: Api, hooks: Hooks) -> None:
    api = notified
    await _channel(
        api, "hb.admin", {"facility": "HB-XL-WD", "kind": "webhook", "target": f"{hooks.base}/x"}
    )
    await _signed_report(api, "normal")
    await api.pool.execute("delete from pgqueuer where entrypoint = 'send_notice'")
    later = datetime.now(UTC) + timedelta(hours=4)
    assert await notices.requeue_lost(api.pool, now=datetime.now(UTC)) == 0  # not yet
    assert await notices.requeue_lost(api.pool, now=later) == 1
    assert await notices.requeue_lost(api.pool, now=later) == 0  # its job is there again
    payload = await api.pool.fetchval(
        "select convert_from(payload, 'UTF8') from pgqueuer where entrypoint = 'send_notice'"
    )
    message = await api.pool.fetchval("select id from outbound_message")
    assert payload == f'{{"message_id": {message}}}'
