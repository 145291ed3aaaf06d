"""Searching the index the way QIDO-RS and C-FIND ask, and finding what WADO-RS retrieves.

A `Query` is plain values (parsed by the service from PS3.18 parameters or a C-FIND
identifier); this module turns it into one SQL statement over the index columns (migration
0010 adds the search columns and indexes, 0013 the name pieces and the DICOM JSON expressions)
and never reads an object. Every search is scoped by the rules of ``study_visible_to``, written
as joins (``qido_scope_*`` in storage/sql/qido.sql) so that no function runs per candidate row;
a reader's scope takes one of two shapes by how many cases the reader sees (`ReaderShape`).
A study search can also come back as its DICOM JSON body, built in PostgreSQL
(`search_studies_json`), so the service passes bytes through instead of building dicts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self

import asyncpg

from storage.db import Queryable
from storage.queries import q
from storage.records import FacilityId, Role, Row, StudyId, UserId
from storage.search import (
    PERSON_NAMES,
    Element,
    Hit,
    Level,
    Name,
    Query,
    Range,
    Scope,
    Source,
    Text,
)


class _Params:
    """Positional parameters after $1 (limit) and $2 (offset)."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values) + 2}"


def like_pattern(pattern: str) -> str:
    """A DICOM wildcard pattern as a LIKE pattern (``\\`` is LIKE's escape character)."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _has_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def _text(column: str, match: Text, p: _Params, *, lower: bool = False) -> str:
    parts = []
    for pattern in match.patterns:
        value = pattern.lower() if lower else pattern
        target = f"lower({column})" if lower else column
        if _has_wildcard(value):
            parts.append(f"{target} like {p(like_pattern(value))}")
        else:
            parts.append(f"{target} = {p(value)}")
    return "(" + " or ".join(parts) + ")"


def _contains(pattern: str) -> str:
    """A LIKE pattern that holds whenever ``pattern`` matches any part of the value."""
    core = like_pattern(pattern).strip("%")
    return f"%{core}%" if core else "%"


#: Word separators in a folded person name: component and group delimiters, spaces, commas.
_WORD_START = r"(^|[\^= ,.-])"


def _name(prefix: str, match: Name, p: _Params) -> str:
    """Person name matching on the generated columns of migrations 0010 and 0013.

    Plain: the pattern (case-insensitive, wildcards) matches the whole value or one component
    group (alphabetic, ideographic, phonetic). Fuzzy: every word of the pattern, case- and
    accent-folded, starts some word of the name.

    A part searched anywhere in the name (``*秀英*``: one or two characters between leading and
    trailing wildcards) is one test on the name's pieces: exact, indexed, and estimated well,
    so the planner walks studies newest first when such a name is common. Longer literal runs
    use the trigram indexes; shorter ones the pieces as a prefilter.
    """
    if not match.fuzzy:
        lowered = match.pattern.lower()
        if (part := _SHORT_CONTAINS.match(lowered)) and lowered.endswith("*"):
            return f"{prefix}name_lower_grams @> {p([part.group(1)])}::text[]"
        pattern = like_pattern(lowered)
        # The indexable 'contains' tests first (pieces or trigrams), then the exact group test.
        return (
            # Only $n placeholders and fixed column prefixes are interpolated.
            f"({_pieces(prefix + 'name_lower_grams', lowered, p)}"  # noqa: S608
            f"{prefix}name_lower like {p(_contains(lowered))} and "
            f"({prefix}name_lower like {(ph := p(pattern))} or exists ("
            f"select 1 from unnest({prefix}name_groups) g where g like {ph})))"
        )
    words = [w for w in re.split(r"[\^=\s,]+", _fold(match.pattern)) if w.strip("*?")]
    if not words:
        return "true"
    parts = []
    for word in words:
        if part := _SHORT_CONTAINS.match(word):
            # '*xy' and '*xy*' alike: after a word start, anything, then the part.
            parts.append(f"{prefix}name_fold_grams @> {p([part.group(1)])}::text[]")
            continue
        regex = "".join(
            ".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in word.rstrip("*")
        )
        parts.append(
            f"({_pieces(prefix + 'name_fold_grams', word, p)}"
            f"{prefix}name_fold like {p(_contains(word))} and "
            f"{prefix}name_fold ~ {p(_WORD_START + regex)})"
        )
    return "(" + " and ".join(parts) + ")"


#: A pattern that is one or two literal characters after a leading wildcard (and, for plain
#: matching, before a trailing one).
_SHORT_CONTAINS = re.compile(r"^\*+([^*?]{1,2})\**$")


def _pieces(column: str, pattern: str, p: _Params) -> str:
    """A pieces prefilter, where pg_trgm has nothing to use (no literal run of 3 characters).

    Where it has, the trigram index is better, and one test fewer keeps the row estimate
    (tests on one name multiply as if independent) from sinking.
    """
    runs = re.split(r"[*?]+", pattern)
    if any(len(run) >= 3 for run in runs):
        return ""
    grams = _grams(pattern)
    return f"{column} @> {p(grams)}::text[] and " if grams else ""


_FOLD_FROM = (
    "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöøùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĐđĒēĔĕĖėĘęĚěĜĝĞğĠġ"
    "ĢģĤĥĦħĨĩĪīĬĭĮįİıĴĵĶķĹĺĻļĽľŁłŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŦŧŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžƠơƯưǍǎǏǐ"
    "ǑǒǓǔǕǖǗǘǙǚǛǜǞǟǠǡǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯȰȱȲȳ"
)
_FOLD_TO = (
    "aaaaaaceeeeiiiinoooooouuuuyaaaaaaceeeeiiiinoooooouuuuyyaaaaaaccccccccddddeeeeeeeeeegggggg"
    "gghhhhiiiiiiiiiijjkkllllllllnnnnnnoooooorrrrrrssssssssttttttuuuuuuuuuuuuwwyyyzzzzzzoouuaaii"
    "oouuuuuuuuuuaaaaggkkoooojggnnaaaaaaeeeeiiiioooorrrruuuusstthhaaeeooooooooyy"
)
_FOLD = str.maketrans(_FOLD_FROM, _FOLD_TO)


def _grams(*patterns: str) -> list[str]:
    """The pieces (``qido_grams`` of migration 0013) any value matching the patterns contains.

    Each literal run between wildcards must appear in a matching value, and with it each of its
    two-character pieces (a one-character run: itself).
    """
    found: set[str] = set()
    for pattern in patterns:
        for run in re.split(r"[*?]+", pattern):
            if len(run) == 1:
                found.add(run)
            found.update(run[i : i + 2] for i in range(len(run) - 1))
    return sorted(found)


def _fold(text: str) -> str:
    """The same folding as the SQL function ``qido_fold`` (migration 0010)."""
    return text.translate(_FOLD).lower()


def _range(column: str, match: Range, p: _Params, *, width: int) -> str:
    # Stored DA/TM text is compared on its first `width` characters, padded with zeros, so
    # '0930' and '093000.25' compare as the times they are.
    target = f"rpad(split_part({column}, '.', 1), {width}, '0')"
    parts = [f"{column} is not null"]
    if match.low is not None:
        parts.append(f"{target} >= {p(match.low.ljust(width, '0')[:width])}")
    if match.high is not None:
        parts.append(f"{target} <= {p(match.high.ljust(width, '9')[:width])}")
    return "(" + " and ".join(parts) + ")"


def _date(column: str, match: Range, p: _Params) -> str:
    # Dates are 8 digits; comparing the column itself keeps the study date index usable.
    parts = [f"{column} is not null"]
    if match.low is not None:
        parts.append(f"{column} >= {p(match.low)}")
    if match.high is not None:
        parts.append(f"{column} <= {p(match.high)}")
    return "(" + " and ".join(parts) + ")"


class ReaderShape(StrEnum):
    """How a reader's scope is written; both give the same studies.

    ``PROBE`` asks of each candidate study whether a case the reader may see belongs to its
    patient: fast when most studies are the reader's (a county pool), or the filters already
    pick few. ``CASES`` gathers the patients of the reader's cases first and finds their
    studies: fast when the reader sees few cases, where probing would walk the whole index.
    """

    PROBE = "probe"
    CASES = "cases"


#: Readers who may see fewer cases than this are searched from their cases (`ReaderShape`):
#: gathering that many patients costs what probing about 1 study in 30 of a large index does.
READER_CASES_BELOW = 4000


async def reader_shape(pool: asyncpg.Pool, query: Query, scope: Scope) -> ReaderShape | None:
    """The shape a search in a reader's scope takes (None for other scopes).

    One cheap count of the reader's cases, stopped at `READER_CASES_BELOW`; a search for
    named studies always probes them.
    """
    if scope.role is not Role.READER or scope.user_id is None:
        return None
    if query.study_uids:
        return ReaderShape.PROBE
    seen = await pool.fetchval(q("qido_reader_cases_upto"), scope.user_id, READER_CASES_BELOW)
    return ReaderShape.CASES if seen < READER_CASES_BELOW else ReaderShape.PROBE


def _scope(scope: Scope, p: _Params, shape: ReaderShape | None = None) -> str:
    """The scope as SQL: the rules of ``study_visible_to`` for the user's role, as joins.

    A workstation's AE title without a user sees its facility's own studies. The role's rule
    reads the user's row (active, role, facility, specialties) as ``study_visible_to`` does, so
    a user deactivated or changed since the scope was made sees nothing more than the function
    would let them. A reader's rule takes ``shape`` (default: probe).
    """
    if scope.user_id is None:
        return f"st.facility_id = {p(scope.facility_id)}"
    user = p(scope.user_id)
    name = _SCOPE_SQL[scope.role]
    if scope.role is Role.READER and shape is ReaderShape.CASES:
        name = "qido_scope_reader_cases"
    role_rule, referral_rule = (_fragment(n, user) for n in (name, "qido_scope_referral"))
    return f"({role_rule} or {referral_rule})"


def _fragment(name: str, user: str) -> str:
    text = "\n".join(line for line in q(name).splitlines() if not line.lstrip().startswith("--"))
    return "(" + text.replace("{user}", user) + ")"


_SCOPE_SQL = {
    Role.CLINIC: "qido_scope_clinic",
    Role.ADMIN: "qido_scope_admin",
    Role.READER: "qido_scope_reader",
}


def _filters(query: Query, p: _Params) -> str:
    parts = _study_filters(query, p)
    if query.level in (Level.SERIES, Level.IMAGE):
        parts += _series_filters(query, p)
    if query.level is Level.IMAGE:
        parts += _image_filters(query, p)
    return " and ".join(parts) if parts else "true"


def _study_filters(query: Query, p: _Params) -> list[str]:
    parts: list[str] = []
    if query.study_uids:
        parts.append(f"st.study_instance_uid = any({p(list(query.study_uids))}::text[])")
    if query.patient_id is not None:
        parts.append(_text("p.patient_id", query.patient_id, p))
    if query.patient_name is not None:
        parts.append(_name("p.", query.patient_name, p))
    if query.patient_birth_date is not None:
        parts.append(_date("p.birth_date", query.patient_birth_date, p))
    if query.patient_sex is not None:
        parts.append(_text("p.sex", query.patient_sex, p))
    if query.accession_number is not None:
        parts.append(_text("st.accession_number", query.accession_number, p))
    if query.study_description is not None:
        parts.append(_text("st.description", query.study_description, p, lower=True))
    if query.referring_physician is not None:
        parts.append(_referring(query.referring_physician, p))
    if query.study_date is not None:
        parts.append(_date("st.study_date", query.study_date, p))
    if query.study_time is not None:
        parts.append(_range("st.study_time", query.study_time, p, width=6))
    if query.modalities_in_study:
        parts.append(f"st.modalities && {p(list(query.modalities_in_study))}::text[]")
    return parts


def _referring(match: Name, p: _Params) -> str:
    # No generated columns for it: plain case-insensitive matching on the whole value.
    pattern = match.pattern.lower()
    if _has_wildcard(pattern):
        return f"lower(st.referring_physician) like {p(like_pattern(pattern))}"
    return f"lower(st.referring_physician) = {p(pattern)}"


def _series_filters(query: Query, p: _Params) -> list[str]:
    parts: list[str] = []
    if query.series_uids:
        parts.append(f"se.series_instance_uid = any({p(list(query.series_uids))}::text[])")
    if query.modalities:
        parts.append(f"se.modality = any({p(list(query.modalities))}::text[])")
    if query.series_number is not None:
        parts.append(f"se.series_number = {p(query.series_number)}")
    if query.series_description is not None:
        parts.append(_text("se.description", query.series_description, p, lower=True))
    if query.body_part is not None:
        parts.append(_text("se.body_part", query.body_part, p))
    return parts


def _image_filters(query: Query, p: _Params) -> list[str]:
    parts: list[str] = []
    if query.sop_uids:
        parts.append(f"i.sop_instance_uid = any({p(list(query.sop_uids))}::text[])")
    if query.sop_classes:
        parts.append(f"i.sop_class_uid = any({p(list(query.sop_classes))}::text[])")
    if query.instance_number is not None:
        parts.append(f"i.instance_number = {p(query.instance_number)}")
    return parts


_REPRESENTATIVE = {
    Level.STUDY: (
        ", (select i2.metadata_zlib from series se2 join instance i2 on i2.series_id = se2.id "
        "where se2.study_id = st.id order by se2.series_number nulls last, se2.id, "
        "i2.instance_number nulls last, i2.id limit 1) as metadata_zlib"
    ),
    Level.SERIES: (
        ", (select i2.metadata_zlib from instance i2 where i2.series_id = se.id "
        "order by i2.instance_number nulls last, i2.id limit 1) as metadata_zlib"
    ),
}

_STATEMENT = {
    Level.PATIENT: "qido_patients",
    Level.STUDY: "qido_studies",
    Level.SERIES: "qido_series",
    Level.IMAGE: "qido_instances",
}


def build_sql(
    query: Query, scope: Scope, *, shape: ReaderShape | None = None
) -> tuple[str, list[Any]]:
    """The statement and its parameters for one search (exposed for tests and EXPLAIN).

    ``shape`` writes a reader's scope one way or the other (`reader_shape` picks it).
    """
    p = _Params()
    scope_sql = _scope(scope, p, shape)
    filters = _filters(query, p)
    metadata = _REPRESENTATIVE.get(query.level, "") if query.with_metadata else ""
    sql = (
        q(_STATEMENT[query.level])
        .replace("{scope}", scope_sql)
        .replace("{filters}", filters)
        .replace("{metadata}", metadata)
    )
    return sql, [query.limit, query.offset, *p.values]


async def search(pool: asyncpg.Pool, query: Query, scope: Scope) -> list[Hit]:
    """The matches of ``query`` in ``scope``, in a stable order (newest study first)."""
    sql, params = build_sql(query, scope, shape=await reader_shape(pool, query, scope))
    rows = await pool.fetch(sql, *params)
    return [Hit.from_row(r) for r in rows]


# --- study answers built in PostgreSQL --------------------------------------------------------


_NUMBERS = {Source.NUM_SERIES, Source.NUM_INSTANCES}


def _element_sql(element: Element, p: _Params, retrieve: str) -> str:
    # Keys and VRs are checked by Element; values travel as parameters.
    head = f"'\"{element.key}\":' || "
    if element.source is None:
        return head + f"qido_json_text('{element.vr}', {p(element.value)}::text)"
    if element.source is Source.RETRIEVE_URL:
        return head + f"qido_json_text('{element.vr}', {retrieve} || h.study_instance_uid)"
    column = f"h.{element.source.value}"
    if element.source in PERSON_NAMES:
        return head + f"qido_json_pn({column})"
    if element.source is Source.MODALITIES:
        return head + f"qido_json_texts('{element.vr}', {column})"
    if element.source in _NUMBERS:
        return head + f"qido_json_int('{element.vr}', {column})"
    return head + f"qido_json_text('{element.vr}', {column})"


def build_json_sql(
    query: Query,
    scope: Scope,
    elements: list[Element],
    *,
    retrieve_base: str,
    shape: ReaderShape | None = None,
) -> tuple[str, list[Any]]:
    """The statement and parameters of a study search answered as DICOM JSON (for EXPLAIN)."""
    if query.level is not Level.STUDY or query.with_metadata:
        raise ValueError("answers built in SQL are study searches from the index columns")
    p = _Params()
    scope_sql = _scope(scope, p, shape)
    filters = _filters(query, p)
    retrieve = p(retrieve_base) + "::text"
    parts = [_element_sql(e, p, retrieve) for e in elements]
    separator = " || ',' || "
    obj = "'{' || " + separator.join(parts) + " || '}'" if parts else "'{}'"
    hits = (
        q("qido_studies")
        .rstrip(";")
        .replace("{scope}", scope_sql)
        .replace("{filters}", filters)
        .replace("{metadata}", "")
    )
    sql = q("qido_studies_json").replace("{hits}", hits).replace("{object}", obj)
    return sql, [query.limit, query.offset, *p.values]


@dataclass(frozen=True, kw_only=True)
class JsonAnswer:
    """A study search answered as DICOM JSON, and what it discloses."""

    count: int
    body: bytes
    study_uids: tuple[str, ...]
    patients: tuple[str, ...]


async def search_studies_json(
    pool: asyncpg.Pool,
    query: Query,
    scope: Scope,
    elements: list[Element],
    *,
    retrieve_base: str,
) -> JsonAnswer:
    """A study search's results as a DICOM JSON array (UTF-8), with how many there are and
    which studies and patients (``issuer:patient ID``) they disclose.

    Same matches, scope and order as `search`; each object carries ``elements`` in the order
    given. The query must not ask for stored instance metadata (``with_metadata``).
    """
    shape = await reader_shape(pool, query, scope)
    sql, params = build_json_sql(query, scope, elements, retrieve_base=retrieve_base, shape=shape)
    row = await pool.fetchrow(sql, *params)
    assert row is not None  # an aggregate always answers one row
    return JsonAnswer(
        count=int(row["count"]),
        body=bytes(row["body"]),
        study_uids=tuple(row["study_uids"]),
        patients=tuple(row["patients"]),
    )


# --- WADO-RS -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StoredObject:
    """One stored instance as retrieve needs it."""

    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    series_instance_uid: str
    object_key: str
    size_bytes: int
    instance_number: int | None
    metadata_zlib: bytes | None = field(default=None, repr=False)
    #: The study and patient (``issuer:patient ID``) it belongs to, where a retrieve asks.
    study_instance_uid: str | None = None
    patient: str | None = None

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(
            sop_instance_uid=row["sop_instance_uid"],
            sop_class_uid=row["sop_class_uid"],
            transfer_syntax_uid=row["transfer_syntax_uid"],
            series_instance_uid=row["series_instance_uid"],
            object_key=row["object_key"],
            size_bytes=row["size_bytes"],
            instance_number=row["instance_number"],
            metadata_zlib=row["metadata_zlib"],
        )


async def retrieve_objects(pool: asyncpg.Pool, query: Query, scope: Scope) -> list[StoredObject]:
    """The stored instances an instance-level search finds (C-GET, C-MOVE)."""
    if query.level is not Level.IMAGE:
        raise ValueError("retrieve searches run at the IMAGE level")
    sql, params = build_sql(query, scope, shape=await reader_shape(pool, query, scope))
    return [
        StoredObject(
            sop_instance_uid=r["sop_instance_uid"],
            sop_class_uid=r["sop_class_uid"],
            transfer_syntax_uid=r["transfer_syntax_uid"],
            series_instance_uid=r["series_instance_uid"],
            object_key=r["object_key"],
            size_bytes=r["size_bytes"],
            instance_number=r["instance_number"],
            study_instance_uid=r["study_instance_uid"],
            patient=f"{r['issuer']}:{r['patient_id']}",
        )
        for r in await pool.fetch(sql, *params)
    ]


async def study_in_scope(pool: asyncpg.Pool, study_uid: str, scope: Scope) -> StudyId | None:
    """The study's id when it exists and the scope includes it, else None."""
    hits = await search(pool, Query(level=Level.STUDY, study_uids=(study_uid,), limit=1), scope)
    return hits[0].study_id if hits else None


async def stored_objects(
    pool: asyncpg.Pool,
    study_id: StudyId,
    *,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    with_metadata: bool = False,
) -> list[StoredObject]:
    """The instances of a study (already scope-checked), optionally one series or instance."""
    if sop_uid is not None and series_uid is not None and not with_metadata:
        rows = await pool.fetch(q("wado_instance_keys"), study_id, series_uid, sop_uid)
    else:
        rows = await pool.fetch(q("wado_instances"), study_id, series_uid, sop_uid)
    objects = [StoredObject.from_row(r) for r in rows]
    if not with_metadata:
        objects = [
            StoredObject(**{**o.__dict__, "metadata_zlib": None})  # drop what was not asked
            for o in objects
        ]
    return objects


@dataclass(frozen=True, kw_only=True)
class SeriesMetadataSource:
    series_id: int
    num_instances: int
    #: (SOP Instance UID, stored DICOM JSON or None, object key) in reading order.
    instances: list[tuple[str, bytes | None, str]]


async def cached_series_metadata(
    pool: asyncpg.Pool, study_id: StudyId, series_uid: str
) -> bytes | None:
    """The kept series metadata (zlib), when it is current."""
    row = await pool.fetchrow(q("series_metadata_cached"), study_id, series_uid)
    return row["body_zlib"] if row else None


async def series_metadata_source(
    pool: asyncpg.Pool, study_id: StudyId, series_uid: str
) -> SeriesMetadataSource | None:
    """What the series metadata is built from; None when the series is not in the study."""
    rows = await pool.fetch(q("series_metadata_source"), study_id, series_uid)
    if not rows:
        return None
    return SeriesMetadataSource(
        series_id=rows[0]["series_id"],
        num_instances=rows[0]["num_instances"],
        instances=[(r["sop_instance_uid"], r["metadata_zlib"], r["object_key"]) for r in rows],
    )


async def keep_series_metadata(
    pool: asyncpg.Pool, series_id: int, num_instances: int, body_zlib: bytes
) -> None:
    """Keep a built series metadata body (never replacing one built from more instances)."""
    await pool.execute(q("series_metadata_store"), series_id, num_instances, body_zlib)


# --- DICOM nodes (query/retrieve peers) ------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DicomNode:
    """A configured peer: a reader's desktop viewer, a workstation, a C-MOVE destination."""

    ae_title: str
    user_id: UserId | None
    facility_id: FacilityId | None
    host: str | None
    port: int | None
    may_query: bool
    move_destination: bool
    #: Where it calls from, when not ``host``: an address, CIDR block or host name.
    peer_host: str | None = None
    #: The SHA-256 fingerprint of its TLS client certificate, when it must show one.
    cert_sha256: str | None = None
    #: What we send it (a report copy, a C-MOVE) goes over DICOM TLS.
    tls: bool = False
    #: The facility it belongs to: its own, else its user's (as read back).
    owner_facility_id: FacilityId | None = None

    def __post_init__(self) -> None:
        if self.user_id is None and self.facility_id is None:
            raise ValueError(f"DICOM node {self.ae_title}: needs a user or a facility")
        if self.move_destination and (self.host is None or self.port is None):
            raise ValueError(f"DICOM node {self.ae_title}: a move destination needs host and port")

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(
            ae_title=row["ae_title"],
            user_id=UserId(row["user_id"]) if row["user_id"] is not None else None,
            facility_id=FacilityId(row["facility_id"]) if row["facility_id"] is not None else None,
            host=row["host"],
            port=row["port"],
            may_query=row["may_query"],
            move_destination=row["move_destination"],
            peer_host=row["peer_host"],
            cert_sha256=row["cert_sha256"],
            tls=row["tls"],
            owner_facility_id=(
                FacilityId(row["owner_facility_id"])
                if row["owner_facility_id"] is not None
                else None
            ),
        )


def dicom_node_values(node: DicomNode) -> tuple[object, ...]:
    """A node's columns in the order the node queries take them (from ``ae_title`` to
    ``tls``)."""
    return (
        node.ae_title,
        node.user_id,
        node.facility_id,
        node.host,
        node.port,
        node.may_query,
        node.move_destination,
        node.peer_host,
        node.cert_sha256,
        node.tls,
    )


async def save_dicom_node(pool: asyncpg.Pool, node: DicomNode) -> None:
    """Add or replace a DICOM node by its AE title."""
    await pool.execute(q("dicom_node_upsert"), *dicom_node_values(node))


async def dicom_node(db: Queryable, ae_title: str) -> DicomNode | None:
    row = await db.fetchrow(q("dicom_node_by_ae"), ae_title)
    return DicomNode.from_row(row) if row else None


async def caller_scope(pool: asyncpg.Pool, ae_title: str) -> Scope | None:
    """The scope a calling AE title queries and retrieves in, or None when it may not."""
    row = await pool.fetchrow(q("dicom_caller_scope"), ae_title)
    if row is None:
        return None
    user_id = row["user_id"]
    return Scope(
        role=Role(row["role"]),
        facility_id=FacilityId(row["facility_id"]),
        user_id=UserId(user_id) if user_id is not None else None,
    )
