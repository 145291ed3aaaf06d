"""What leaves the network, to whom and in which words (teleradiology.core.notices): pure
rules, no servers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote_plus, urlsplit

import pytest

from storage.records import (
    Channel,
    ChannelId,
    ChannelKind,
    ChannelSpec,
    Conclusion,
    FacilityId,
    Language,
    NoticeKind,
)
from teleradiology.core.errors import ConfigError
from teleradiology.core.network_file import parse_network
from teleradiology.core.notices import (
    NoticeFacts,
    channels_for,
    compose,
    judge_webhook,
    parse_channel,
    shown_target,
    signed_url,
    trial_message,
    webhook_body,
    with_changes,
)


def _channel(n: int, **spec: object) -> Channel:
    return Channel(
        id=ChannelId(n),
        facility_id=FacilityId(1),
        facility_code="HB-XL-WD",
        user_id=None,
        username=None,
        spec=ChannelSpec(
            kind=ChannelKind.EMAIL,
            target=f"c{n}@example.org",
            **spec,  # type: ignore[arg-type]
        ),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def _facts(kind: NoticeKind = NoticeKind.REPORT, **more: object) -> NoticeFacts:
    values: dict[str, object] = {
        "kind": kind,
        "report_id": 42,
        "case_id": 7,
        "clinic": "王店村卫生室",
        "modality": "CR",
        "conclusion": Conclusion.ABNORMAL,
        "resend": 0,
        "link": "https://telemed.example/#report-42",
        "patient_name": "李^秀兰",
        "patient_id": "HX-7788",
    }
    return NoticeFacts(**(values | more))  # type: ignore[arg-type]


def test_reports_go_to_channels_that_take_them_critical_results_to_every_active_one() -> None:
    every = [_channel(1), _channel(2, reports=False), _channel(3, active=False)]
    assert [c.id for c in channels_for(NoticeKind.REPORT, every)] == [1]
    assert [c.id for c in channels_for(NoticeKind.ADDENDUM, every)] == [1]
    for kind in (NoticeKind.CRITICAL, NoticeKind.CRITICAL_RESEND, NoticeKind.CRITICAL_ALERT):
        assert [c.id for c in channels_for(kind, every)] == [1, 2]


def test_no_patient_name_or_id_leaves_unless_the_channel_allows_it() -> None:
    hidden = compose(_facts(), allow_patient_name=False)
    for text in (hidden.subject, hidden.text, hidden.markdown):
        assert "李" not in text
        assert "HX-7788" not in text
    assert "王店村卫生室" in hidden.text
    assert "CR" in hidden.text
    assert "结论: 异常\n" in hidden.text
    assert "7/42" in hidden.text
    assert "https://telemed.example/#report-42" in hidden.text
    shown = compose(_facts(), allow_patient_name=True)
    assert "李 秀兰 · ID HX-7788" in shown.text
    assert "李" not in shown.subject  # the subject line stays without the name


def test_critical_messages_say_so_and_count_their_resends() -> None:
    first = compose(
        _facts(NoticeKind.CRITICAL, conclusion=Conclusion.CRITICAL), allow_patient_name=False
    )
    assert first.subject.startswith("【危急值】危急值，请立即确认")
    again = compose(
        _facts(NoticeKind.CRITICAL_RESEND, conclusion=Conclusion.CRITICAL, resend=2),
        allow_patient_name=False,
    )
    assert "重发第2次" in again.text


_CJK = re.compile(r"[\u4e00-\u9fff]")


def test_a_message_is_in_its_recipients_language_and_the_facility_as_it_is_named() -> None:
    chinese = compose(_facts(), allow_patient_name=True)
    english = compose(_facts(), allow_patient_name=True, language=Language.EN)
    assert chinese.text.startswith("【远程诊断】报告已出\n送检机构: 王店村卫生室\n")
    assert not re.search(r"[A-Za-z]{3,}", chinese.text.replace(_facts().link, ""))
    assert english.text.startswith("[Remote diagnosis] report ready\nFacility: 王店村卫生室\n")
    assert "Conclusion: abnormal\n" in english.text
    assert "Patient: 李 秀兰 · ID HX-7788" in english.text  # patient data as written
    assert "> **Link**: https://telemed.example/#report-42" in english.markdown
    for text in (english.subject, english.text, english.markdown):
        assert not _CJK.search(text.replace("王店村卫生室", "").replace("李 秀兰", ""))
    again = compose(
        _facts(NoticeKind.CRITICAL_RESEND, conclusion=Conclusion.CRITICAL, resend=2),
        allow_patient_name=False,
        language=Language.EN,
    )
    assert again.subject.startswith("[CRITICAL] critical result not acknowledged, re-sent 2 ")
    trial = trial_message("HB-XL-WD", "https://telemed.example/", Language.EN)
    assert trial.text == (
        "[Remote diagnosis] Test message\nFacility: HB-XL-WD\n"
        "Note: The channel is set up correctly\nLink: https://telemed.example/"
    )
    assert trial_message("HB-XL-WD", "https://telemed.example/").subject == (
        "【远程诊断】测试消息 HB-XL-WD"
    )


def test_each_receiver_gets_the_shape_it_takes() -> None:
    facts = _facts()
    message = compose(facts, allow_patient_name=False)
    wechat = ChannelSpec(kind=ChannelKind.WECHAT_WORK, target="https://qyapi.example/send?key=k")
    assert webhook_body(wechat, message, facts) == {
        "msgtype": "text",
        "text": {"content": message.text},
    }
    md = ChannelSpec(kind=ChannelKind.WECHAT_WORK, target=wechat.target, markdown=True)
    assert webhook_body(md, message, facts) == {
        "msgtype": "markdown",
        "markdown": {"content": message.markdown},
    }
    ding = ChannelSpec(kind=ChannelKind.DINGTALK, target="https://oapi.example/robot/send")
    assert webhook_body(ding, message, facts)["text"] == {"content": message.text}
    ding_md = ChannelSpec(kind=ChannelKind.DINGTALK, target=ding.target, markdown=True)
    assert webhook_body(ding_md, message, facts)["markdown"]["title"] == message.subject
    plain = ChannelSpec(kind=ChannelKind.WEBHOOK, target="https://sms.example/hook")
    body = webhook_body(plain, message, facts)
    assert body["event"] == "report"
    assert body["report_id"] == 42
    assert "patient_name" not in body
    allowed = ChannelSpec(kind=ChannelKind.WEBHOOK, target=plain.target, allow_patient_name=True)
    assert webhook_body(allowed, message, facts)["patient_id"] == "HX-7788"


def test_a_dingtalk_url_is_signed_as_dingtalk_checks_it() -> None:
    spec = ChannelSpec(
        kind=ChannelKind.DINGTALK,
        target="https://oapi.dingtalk.com/robot/send?access_token=abc",
        secret="SECsecret",
    )
    url = signed_url(spec, 1700000000123)
    query = parse_qs(urlsplit(url).query)
    assert query["access_token"] == ["abc"]
    assert query["timestamp"] == ["1700000000123"]
    expected = base64.b64encode(
        hmac.new(b"SECsecret", b"1700000000123\nSECsecret", hashlib.sha256).digest()
    ).decode()
    assert query["sign"] == [expected]  # parse_qs undoes the URL encoding
    assert url.endswith("&sign=" + quote_plus(expected))  # URL-encoded, as DingTalk says
    unsigned = ChannelSpec(kind=ChannelKind.DINGTALK, target=spec.target)
    assert signed_url(unsigned, 1) == spec.target


@pytest.mark.parametrize(
    ("kind", "status", "text", "ok"),
    [
        (ChannelKind.WEBHOOK, 200, "", True),
        (ChannelKind.WEBHOOK, 204, "", True),
        (ChannelKind.WEBHOOK, 500, "down", False),
        (ChannelKind.WECHAT_WORK, 200, '{"errcode":0,"errmsg":"ok"}', True),
        (ChannelKind.WECHAT_WORK, 200, '{"errcode":93000,"errmsg":"invalid webhook url"}', False),
        (ChannelKind.DINGTALK, 200, '{"errcode":310000,"errmsg":"sign not match"}', False),
        (ChannelKind.DINGTALK, 200, "<html>", False),
    ],
)
def test_an_answer_is_taken_only_when_the_receiver_took_the_message(
    kind: ChannelKind, status: int, text: str, ok: bool
) -> None:
    answer = judge_webhook(kind, status, text)
    assert answer.ok is ok
    assert answer.code.startswith(str(status))


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"kind": "email", "target": "not an address"}, "not an address"),
        ({"kind": "webhook", "target": "ftp://host/x"}, "https://"),
        ({"kind": "webhook", "target": "https://"}, "https://"),
        ({"kind": "wechat_work", "target": "https://x.example", "secret": "s"}, "DingTalk"),
        ({"kind": "webhook", "target": "https://x.example", "markdown": True}, "markdown"),
        ({"kind": "sms", "target": "123"}, "is not one of"),
        ({"kind": "email", "target": "a@b.example", "cc": "x"}, "unknown keys cc"),
        ({"kind": "email", "target": "a@b.example", "reports": "yes"}, "true or false"),
    ],
)
def test_a_bad_channel_is_refused_naming_what_is_wrong(entry: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_channel(entry, "channel")


def test_a_change_keeps_the_kind_and_is_checked_again() -> None:
    spec = parse_channel({"kind": "dingtalk", "target": "https://d.example/s?access_token=t"}, "c")
    assert with_changes(spec, {"allow_patient_name": True}, "c").allow_patient_name
    with pytest.raises(ConfigError, match="kind does not change"):
        with_changes(spec, {"kind": "email"}, "c")
    with pytest.raises(ConfigError, match="https://"):
        with_changes(spec, {"target": "nowhere"}, "c")


def test_a_robots_key_is_not_shown_back() -> None:
    spec = ChannelSpec(kind=ChannelKind.WECHAT_WORK, target="https://q.example/send?key=SECRET1")
    assert "SECRET1" not in shown_target(spec)
    assert shown_target(ChannelSpec(kind=ChannelKind.EMAIL, target="a@b.example")) == "a@b.example"


def test_the_network_file_declares_a_facilitys_channels() -> None:
    text = """
[[facility]]
code = "HB-COUNTY"
name = "淮滨县人民医院"
tier = "county"

[[facility.channel]]
kind = "wechat_work"
target = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc"
markdown = true

[[facility.channel]]
kind = "email"
target = "radiology@hb.example"
allow_patient_name = true
reports = false
"""
    (county,), _ = parse_network(text)
    assert county.channels is not None
    wechat, mail = county.channels
    assert (wechat.kind, wechat.markdown, wechat.allow_patient_name) == (
        ChannelKind.WECHAT_WORK,
        True,
        False,
    )
    assert (mail.allow_patient_name, mail.reports) == (True, False)
    twice = text + '\n[[facility.channel]]\nkind = "email"\ntarget = "radiology@hb.example"\n'
    with pytest.raises(ConfigError, match="listed twice"):
        parse_network(twice)
    (without,), _ = parse_network(text.split("[[facility.channel]]")[0])
    assert without.channels is None
