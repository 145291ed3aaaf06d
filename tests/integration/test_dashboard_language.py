"""The administrator's dashboard (the turnaround part of /admin) in one language at a time:
zh-CN by default, English for an administrator who chose English, no word written twice."""

from __future__ import annotations

import re

from tests.integration.conftest import Api
from tests.integration.test_admin_pages_language import CHINESE, DATA, TWICE, _text
from tests.integration.test_dashboard import _by_key, _loaded


def _dashboard(html: str) -> str:
    """The dashboard's own part of the page: its filters to its last table."""
    start = html.index('id="dashboard-filters"')
    end = html.index("</section>", html.index('id="dash-referrals"'))
    # the facilities' and readers' names (options, cells) are the network's data
    return DATA.sub("", html[start:end])


async def test_the_dashboard_is_in_chinese_then_wholly_in_english(api: Api) -> None:
    chinese = _dashboard(await _text(api, "/admin"))
    # the time zone is written in brackets after the period: a name, not a translation
    chinese = chinese.replace("(Asia/Shanghai)", "")
    assert "期间无正式报告" in chinese or "正式报告" in chinese
    assert "Final reports" not in chinese
    assert not TWICE.findall(chinese)
    changed = await api.client.put(
        "/api/v1/me/language", json={"language": "en"}, headers=api.auth("hb.admin")
    )
    assert changed.status == 200
    english = _dashboard(await _text(api, "/admin")).replace("(Asia/Shanghai)", "")
    assert "Final reports" in english
    assert "Reported by the deadline" in english  # a chart's title, built in Python
    assert not TWICE.findall(english)
    assert not CHINESE.findall(re.sub(r"<[^>]+>", " ", english))


async def test_the_api_names_the_groups_in_the_callers_language(api: Api) -> None:
    await _loaded(api)
    changed = await api.client.put(
        "/api/v1/me/language", json={"language": "en"}, headers=api.auth("hb.admin")
    )
    assert changed.status == 200
    got = await api.client.get("/api/v1/admin/dashboard", headers=api.auth("hb.admin"))
    assert got.status == 200
    body = await got.json()
    assert _by_key(body["tier"])["township"]["label"] == "township"
    labels = [g["label"] for g in body["tier"] + body["specialty"] + body["priority"]]
    assert labels
    assert not [label for label in labels if CHINESE.findall(label)]
