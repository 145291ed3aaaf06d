"""One language at a time: every word a template or the code marks for translation is in
the English catalog, the catalog holds nothing no page uses, and no template writes a word
twice ("中文 (English)")."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from jinja2.ext import extract_from_ast

from storage.records import Language, Priority, Tier
from teleradiology.core.language import (
    Phrase,
    _plural_translations,
    _translations,
    accepted_language,
    gettext,
    ngettext,
    parse_language,
    terminal_language,
    word,
)
from teleradiology.http.web.common import TEMPLATES

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = ROOT / "teleradiology" / "http" / "web" / "templates"
#: Every template writes each word once, in one language.
ONE_LANGUAGE = sorted(p.name for p in TEMPLATE_DIR.glob("*.html"))
_MARKED = re.compile(r"""(?:\bN_|\["_"\])\(\s*"([^"]+)"\s*\)""")
#: "中文 (English)": Chinese, then a parenthesised run of Latin letters (not a phrase's
#: ``%(name)s`` placeholder).
_TWICE = re.compile(r"[\u4e00-\u9fff][^<>{}]*(?<!%)\(\s*[A-Za-z][A-Za-z ,.'/-]+\)")


def _template_messages() -> list[tuple[str, object]]:
    """What the templates pass to ``_`` and ``ngettext``: (function, message)."""
    found: list[tuple[str, object]] = []
    for path in TEMPLATE_DIR.glob("*.html"):
        tree = TEMPLATES.parse(path.read_text("utf-8"))
        functions = ("_", "ngettext")
        for _line, func, message in extract_from_ast(tree, gettext_functions=functions):
            found.append((func, message))
    return found


def marked_plurals() -> set[str]:
    """The Chinese phrases with a count the templates pass to ``ngettext`` (singular)."""
    return {
        message[0]
        for func, message in _template_messages()
        if func == "ngettext" and isinstance(message, tuple) and isinstance(message[0], str)
    }


def marked_words() -> set[str]:
    """The Chinese words the templates pass to ``_`` and the code marks with ``N_``."""
    found = {message for func, message in _template_messages() if isinstance(message, str)}
    for path in (ROOT / "teleradiology").rglob("*.py"):
        found.update(_MARKED.findall(path.read_text("utf-8")))
    return found


def test_every_marked_word_has_its_english() -> None:
    english = _translations(Language.EN)
    missing = sorted(marked_words() - set(english))
    assert not missing, f"add to the English catalog: {missing}"


def test_the_catalog_holds_only_words_in_use() -> None:
    stale = sorted(set(_translations(Language.EN)) - marked_words())
    assert not stale, f"no page uses these any more: {stale}"


def test_every_phrase_with_a_count_has_its_english_forms() -> None:
    english = _plural_translations(Language.EN)
    assert marked_plurals(), "the templates write counts through ngettext"
    missing = sorted(marked_plurals() - set(english))
    assert not missing, f"add to the English catalog (msgid_plural): {missing}"
    stale = sorted(set(english) - marked_plurals())
    assert not stale, f"no page uses these any more: {stale}"
    assert all(len(forms) == 2 for forms in english.values())


def test_a_count_takes_its_form_in_english_and_chinese_has_one() -> None:
    en, zh = ngettext(Language.EN), ngettext(Language.ZH_CN)
    phrase = "%(n)s 个任务"
    assert [en(phrase, phrase, n) % {"n": n} for n in (0, 1, 2)] == ["0 jobs", "1 job", "2 jobs"]
    assert {zh(phrase, phrase, n) for n in (1, 2)} == {phrase}


@pytest.mark.parametrize("name", ONE_LANGUAGE)
def test_a_converted_template_writes_each_word_once(name: str) -> None:
    text = (TEMPLATE_DIR / name).read_text("utf-8")
    assert not _TWICE.findall(text)


def test_chinese_is_the_source_and_english_the_catalog() -> None:
    assert gettext(Language.ZH_CN)("待读病例") == "待读病例"
    assert gettext(Language.EN)("待读病例") == "Worklist"
    assert gettext(Language.EN)("一个目录里没有的词") == "一个目录里没有的词"
    assert word(Priority.HIGH, Language.EN) != word(Priority.HIGH, Language.ZH_CN)


@pytest.mark.parametrize(
    ("value", "language"),
    [("zh", Language.ZH_CN), ("zh-CN", Language.ZH_CN), ("zh_TW", Language.ZH_CN),
     ("en", Language.EN), ("en-GB", Language.EN), ("fr", None), ("", None), (None, None)],
)  # fmt: skip
def test_a_named_language_is_understood(value: str | None, language: Language | None) -> None:
    assert parse_language(value) == language


@pytest.mark.parametrize(
    ("header", "language"),
    [("zh-CN,zh;q=0.9,en;q=0.8", Language.ZH_CN), ("en-GB,en;q=0.9,zh;q=0.5", Language.EN),
     ("fr-FR, en;q=0.2", Language.EN), ("zh;q=0.3, en;q=0.7", Language.EN),
     ("en;q=0, zh", Language.ZH_CN), ("fr", None), ("", None), (None, None)],
)  # fmt: skip
def test_the_accepted_language_is_the_preferred_one_of_ours(
    header: str | None, language: Language | None
) -> None:
    assert accepted_language(header) == language


def test_a_phrase_is_said_with_its_values_in_each_language() -> None:
    rule = Phrase("%(tier)s位于%(above)s之下", {"tier": Tier.TOWNSHIP, "above": (Tier.COUNTY,)})
    refused = Phrase("机构 %(code)s 不在您的网络中", {"code": "HB-XL"})
    both = Phrase("%(errors)s", {"errors": [refused, rule]})
    assert both.say(Language.EN) == (
        "facility HB-XL is not in your network; a township stands under county"
    )
    assert both.say(Language.ZH_CN) == "机构 HB-XL 不在您的网络中；乡镇卫生院位于县级医院之下"


@pytest.mark.parametrize(
    ("environ", "language"),
    [({"LANG": "zh_CN.UTF-8"}, Language.ZH_CN),
     ({"LC_MESSAGES": "zh_CN", "LANG": "C"}, Language.ZH_CN),
     ({"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}, Language.EN),
     ({"LANG": "C.UTF-8"}, Language.EN), ({}, Language.EN)],
)  # fmt: skip
def test_a_terminal_says_the_language_of_its_locale(
    environ: dict[str, str], language: Language
) -> None:
    assert terminal_language(environ) == language


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("zh_CN.UTF-8", "密码至少须有 8 个字符"),
        ("C.UTF-8", "a password needs at least 8 characters"),
    ],
)
def test_a_command_says_its_refusal_in_the_terminals_language(
    lang: str, said: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from teleradiology import cli

    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", lang)
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["password", "hash"]) == 2
    assert capsys.readouterr().err.strip() == f"telemed password hash: {said}"
