"""The administrator's dashboard (the turnaround part of /admin) in one language at a time:
zh-CN by default, English for an administrator who chose English, no word written twice."""

from __future__ import annotations

import re

from tests.integration.conftest import Api
from tests.integration.test_admin_pages_language import CHINESE, DATA, TWICE, _text


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
