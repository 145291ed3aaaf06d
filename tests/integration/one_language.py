"""One language at a time, as a test sees a page: a user chooses English through the API,
and a page's text writes no word twice ("中文 (English)")."""

from __future__ import annotations

import re

from tests.integration.conftest import Api

#: A Chinese word followed by its English in parentheses, as the pages wrote them before.
PAIR = re.compile(r"[\u4e00-\u9fff]\s*\(\s*[A-Za-z][A-Za-z ,.'/-]+\)")


async def choose_english(api: Api, username: str) -> None:
    """The user's pages are in English from now on (their own choice, on their account)."""
    answer = await api.client.put(
        "/api/v1/me/language", json={"language": "en"}, headers=api.auth(username)
    )
    assert answer.status == 200, await answer.text()


def assert_one_language(text: str) -> None:
    """No Chinese word of the page is followed by its English."""
    pairs = PAIR.findall(text)
    assert not pairs, f"written twice: {pairs}"
