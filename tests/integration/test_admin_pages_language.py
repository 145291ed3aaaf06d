"""The administration pages in one language at a time: zh-CN by default, wholly English
for an administrator who chose English, and no word written twice in either."""

from __future__ import annotations

import re

import pytest

from tests.integration.conftest import Api
from tests.integration.test_ecg_reading_page import session

#: "中文 (English)": the old form, Chinese then a parenthesised run of Latin letters.
TWICE = re.compile(r"[\u4e00-\u9fff][^<>{}]*\(\s*[A-Za-z][A-Za-z ,.'/-]+\)")
CHINESE = re.compile(r"[\u4e00-\u9fff]")
#: Each page, and one of its words in Chinese and in English.
PAGES = [
    ("/admin/facilities", "新增机构", "Add a facility"),
    ("/admin/users", "新增用户", "Add a user"),
    ("/admin/users/hb.admin", "重置密码链接", "Reset link"),
    ("/admin/accounts", "有效令牌", "Working tokens"),
    ("/admin/dicom-nodes", "新增节点", "Add a node"),
    ("/admin/patients/duplicates", "无疑似重复", "No candidates"),
    ("/admin/identity-conflicts", "显示全部", "Show all"),
    ("/admin/templates", "报告模板", "Report templates"),
    ("/admin/notification-channels", "新增渠道", "Add a channel"),
]
#: What the pages show of the network's own data: names, template texts.
DATA = re.compile(
    r"<(option|td|code|a|div)\b[^>]*>[^<]*</\1>|value=\"[^\"]*\"|淮滨县远程诊断管理员"
)


async def _text(api: Api, path: str) -> str:
    got = await api.client.get(path, headers=await session(api, "hb.admin"))
    assert got.status == 200, path
    return await got.text()


def _main(html: str) -> str:
    """The page's own part (the menu and header are base.html's)."""
    return html.split("<main", 1)[1].split("</main>", 1)[0]


def _without_kinds(html: str) -> str:
    return re.sub(r'<select name="kind">.*?</select>', "", html, flags=re.S)


@pytest.mark.parametrize(("path", "zh", "en"), PAGES)
async def test_an_administration_page_is_in_chinese_then_wholly_in_english(
    api: Api, path: str, zh: str, en: str
) -> None:
    chinese = _main(await _text(api, path))
    assert zh in chinese
    assert en not in chinese
    # the channel kinds of the channels page are still written both ways (their words are
    # built by the operations pages' module)
    assert not TWICE.findall(_without_kinds(chinese))
    changed = await api.client.put(
        "/api/v1/me/language", json={"language": "en"}, headers=api.auth("hb.admin")
    )
    assert changed.status == 200
    english = _main(await _text(api, path))
    assert en in english
    assert not TWICE.findall(_without_kinds(english))
    # facility names and the like are the network's data; the page's own words are English
    words = DATA.sub("", english)
    assert not CHINESE.findall(re.sub(r"<[^>]+>", " ", words)), path
