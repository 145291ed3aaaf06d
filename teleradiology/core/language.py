"""One language at a time: the words people read, in zh-CN (the default) or English.

The source language is zh-CN: a page, PDF or e-mail writes each of its words once, in
Chinese, through ``gettext`` (``_("待读病例")`` in a template); the English catalog,
``teleradiology/locale/en/LC_MESSAGES/messages.po`` (gettext PO, read with Babel), gives each
its English. A word the catalog lacks is shown in Chinese (``tests/unit/test_language.py``
keeps the catalog complete). Enumerations' words (statuses, priorities…) come from the one
table of :mod:`teleradiology.core.words`, in the language asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from gettext import c2py
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babel.messages.pofile import read_po

from storage.records import Language

if TYPE_CHECKING:
    from teleradiology.core.words import Words

LOCALE = Path(__file__).resolve().parents[1] / "locale"
DOMAIN = "messages"

Gettext = Callable[[str], str]
#: ``ngettext(singular, plural, n)``: the form of a phrase for the count `n`.
Ngettext = Callable[[str, str, int], str]


def catalog_path(language: Language) -> Path:
    """Where the catalog of a language other than the source one is."""
    return LOCALE / language.value.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"


@dataclass(frozen=True)
class _Catalog:
    """A language's catalog: Chinese → its words, Chinese with a count → its plural forms
    (in the order of ``plural``), and the rule that picks a form for a count."""

    words: dict[str, str]
    plurals: dict[str, tuple[str, ...]]
    plural: Callable[[int], int]


def _one_form(n: int) -> int:
    return 0


@cache
def _catalog(language: Language) -> _Catalog:
    """A language's catalog (empty for zh-CN, the source, whose words have one form)."""
    if language is Language.ZH_CN:
        return _Catalog({}, {}, _one_form)
    with catalog_path(language).open("rb") as f:
        catalog = read_po(f, locale=language.value.replace("-", "_"))
    words: dict[str, str] = {}
    plurals: dict[str, tuple[str, ...]] = {}
    for m in catalog:
        if isinstance(m.id, str) and m.id and isinstance(m.string, str) and m.string:
            words[m.id] = m.string
        elif isinstance(m.id, tuple) and isinstance(m.string, tuple) and all(m.string):
            plurals[str(m.id[0])] = tuple(str(form) for form in m.string)
    return _Catalog(words, plurals, c2py(catalog.plural_expr))


def _translations(language: Language) -> dict[str, str]:
    """A language's catalog as Chinese → its words (empty for zh-CN, the source)."""
    return _catalog(language).words


def _plural_translations(language: Language) -> dict[str, tuple[str, ...]]:
    """A language's phrases with a count: Chinese → their plural forms."""
    return _catalog(language).plurals


def N_(text: str) -> str:
    """Mark Chinese words that code hands to a template or message to be translated
    there (``_(error)``): returned as they are, and found by the catalog check."""
    return text


def gettext(language: Language) -> Gettext:
    """The ``_`` of a language: Chinese words → that language's (as they are when the
    catalog lacks them)."""
    found = _translations(language)

    def translate(text: str) -> str:
        return found.get(text, text)

    return translate


def ngettext(language: Language) -> Ngettext:
    """The ``ngettext`` of a language: a phrase with a count (``%(n)s 个任务``) in the form
    its number takes ("1 job", "2 jobs"); Chinese has one form. The Chinese singular names
    the entry (the plural is written the same)."""
    found = _catalog(language)

    def translate(singular: str, plural: str, n: int) -> str:
        forms = found.plurals.get(singular)
        if forms is None:
            return singular if n == 1 or language is Language.ZH_CN else plural
        return forms[min(found.plural(n), len(forms) - 1)]

    return translate


@dataclass(frozen=True)
class Phrase:
    """Words said later, in their reader's language: Chinese marked with ``N_`` (its English
    in the catalog) and the values of its placeholders, kept apart until then. A value may
    itself be a phrase, a list of phrases (said one after the other, separated as the
    language separates clauses), an enumeration's member (said with its word) or a tuple of
    them (a choice: "county or city")."""

    text: str
    values: Mapping[str, object] = field(default_factory=dict)

    def say(self, language: Language) -> str:
        said = gettext(language)(self.text)
        if not self.values:
            return said
        return said % {name: _said(value, language) for name, value in self.values.items()}


@cache
def _tables() -> Mapping[type[Enum], Mapping[Any, Words]]:
    """The words' tables, imported on first use: a process that only formats messages
    (a render pool's child) never loads the enums of every layer."""
    from teleradiology.core.words import TABLES

    return TABLES


def _said(value: object, language: Language) -> object:
    if isinstance(value, Phrase):
        return value.say(language)
    if isinstance(value, Enum) and type(value) in _tables():
        return word(value, language)
    if isinstance(value, tuple) and value and all(isinstance(v, Enum) for v in value):
        choice = " or " if language is Language.EN else "或"
        return choice.join(str(_said(v, language)) for v in value)
    if isinstance(value, list | tuple) and value and all(isinstance(v, Phrase) for v in value):
        return ("; " if language is Language.EN else "；").join(v.say(language) for v in value)
    return value


def word(member: Enum, language: Language) -> str:
    """An enumeration member's word in `language` (its one table in ``words``)."""
    words = _tables()[type(member)][member]
    return words.en if language is Language.EN else words.zh


def parse_language(value: str | None) -> Language | None:
    """A language named by a form, cookie or header value (``zh``, ``zh-CN``, ``en``,
    ``en-GB``…); None for anything else."""
    if not value:
        return None
    head = value.strip().lower().replace("_", "-")
    if head.startswith("zh"):
        return Language.ZH_CN
    if head.startswith("en"):
        return Language.EN
    return None


def terminal_language(environ: Mapping[str, str]) -> Language:
    """The language a command says its words in: the one its terminal's locale names
    (``LC_ALL``, else ``LC_MESSAGES``, else ``LANG``: ``zh_CN.UTF-8`` is Chinese); English
    for any other locale (``C``, ``POSIX``), as a terminal without a Chinese locale may not
    show Chinese."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return parse_language(value) or Language.EN
    return Language.EN


def accepted_language(header: str | None) -> Language | None:
    """The language an ``Accept-Language`` header prefers among ours (its highest ``q``
    first, the earlier of equals); None when it names none of them."""
    ranked: list[tuple[float, int, Language]] = []
    for place, item in enumerate((header or "").split(",")):
        name, _, params = item.partition(";")
        language = parse_language(name)
        if language is None:
            continue
        q = params.strip().removeprefix("q=") if params.strip().startswith("q=") else "1"
        try:
            weight = float(q)
        except ValueError:
            continue
        if weight > 0:
            ranked.append((-weight, place, language))
    return min(ranked)[2] if ranked else None
