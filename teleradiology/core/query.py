"""Searches of the index from what clients send: QIDO-RS query parameters (PS3.18 10.6) and
C-FIND identifiers become one `storage.search.Query`; hits become DICOM JSON answers.

Answers come from the index columns, plus the DICOM JSON each instance keeps in PostgreSQL for
attributes the columns do not hold (``includefield``). A study search answered from the index
columns alone (the common case: OHIF's study list) is built as DICOM JSON by PostgreSQL
(`study_elements` says what each object carries); the others are built here from `Hit`s.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from multidict import MultiMapping
from pydicom.datadict import dictionary_has_tag, dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from storage.records import User
from storage.search import Element, Hit, Level, Name, Query, Range, Scope, Source, Text
from teleradiology.core.dicomweb import element, pn
from teleradiology.core.errors import BadRequest, Forbidden
from teleradiology.core.language import N_, Phrase

#: Most results one QIDO response carries; a larger ``limit`` is capped (with a Warning).
MAX_LIMIT = 1000
DEFAULT_LIMIT = {Level.STUDY: 100, Level.SERIES: 500, Level.IMAGE: 1000, Level.PATIENT: 100}
#: The placeholder the stored metadata uses for bulk data (teleradiology/dicom.py).
BULK_PLACEHOLDER = '"BulkDataURI": "bulk:'

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_DA = re.compile(r"^\d{8}$")
_TM = re.compile(r"^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$")
_HEX_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")


def scope_of(user: User) -> Scope:
    return Scope(role=user.role, facility_id=user.facility_id, user_id=user.id)


# --- attribute names -------------------------------------------------------------------------


def tag_of(name: str) -> int:
    """The tag a keyword or ``GGGGEEEE`` names. Raises BadRequest for neither."""
    if _HEX_TAG.match(name):
        tag = int(name, 16)
        group = tag >> 16
        if dictionary_has_tag(tag) or group % 2 == 1:
            return tag
        raise BadRequest(N_("%(name)s 不是本服务器认识的 DICOM 属性标签"), name=name)
    found = tag_for_keyword(name)
    if found is None:
        raise BadRequest(
            N_("%(name)r 既非 DICOM 属性关键字，也非标签（如 00100010）；请检查拼写（区分大小写）"),
            name=name,
        )
    return int(found)


def hex_tag(tag: int) -> str:
    return f"{tag:08X}"


def keyword_of(tag: int) -> str:
    return keyword_for_tag(tag) or hex_tag(tag)


# --- parsing matching values -----------------------------------------------------------------


def _values(raw: Iterable[str]) -> list[str]:
    """Repeated parameters and backslash-separated values, as one list (empty ones dropped)."""
    out: list[str] = []
    for value in raw:
        out += [v.strip() for v in value.split("\\") if v.strip()]
    return out


def _uids(name: str, raw: Iterable[str]) -> tuple[str, ...]:
    uids = _values(raw)
    for uid in uids:
        if len(uid) > 64 or not _UID.match(uid):
            raise BadRequest(
                N_("%(name)s=%(uid)r 不是 UID（由数字和点组成，至多 64 个字符）"),
                name=name,
                uid=uid,
            )
    return tuple(uids)


def _range(name: str, value: str, pattern: re.Pattern[str], what: str) -> Range:
    low, dash, high = value.partition("-")
    for part in (low, high):
        if part and not pattern.match(part):
            raise BadRequest(
                N_("%(name)s=%(value)r：%(part)r 不是%(what)s"),
                name=name,
                value=value,
                part=part,
                what=Phrase(what),
            )
    if not dash:
        return Range(low, low)
    if not low and not high:
        raise BadRequest(N_("%(name)s=%(value)r 是空范围"), name=name, value=value)
    try:
        return Range(low or None, high or None)
    except ValueError as exc:
        raise BadRequest(
            N_("%(name)s=%(value)r：%(reason)s"), name=name, value=value, reason=str(exc)
        ) from None


def date_range(name: str, value: str) -> Range:
    return _range(name, value, _DA, N_("日期（YYYYMMDD）"))


def time_range(name: str, value: str) -> Range:
    # Times are compared on HHMMSS; the fraction only matters for equality, dropped here.
    rng = _range(name, value, _TM, N_("时间（HHMMSS）"))
    return Range(
        rng.low.split(".")[0] if rng.low else None, rng.high.split(".")[0] if rng.high else None
    )


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadRequest(N_("%(name)s=%(value)r 不是整数"), name=name, value=value) from None


def _text(raw: Iterable[str]) -> Text | None:
    values = _values(raw)
    return Text(tuple(values)) if values else None


def _single(name: str, raw: list[str]) -> str | None:
    values = [v for v in raw if v.strip()]
    if len(values) > 1:
        raise BadRequest(N_("%(name)s 只能给出一次"), name=name)
    return values[0].strip() if values else None


@dataclass
class Parsed:
    """A QIDO request's query and the presentation it asks for."""

    query: Query
    include: set[int] = field(default_factory=set)
    include_all: bool = False
    warnings: list[str] = field(default_factory=list)


_STUDY_KEYS = {
    "StudyInstanceUID",
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyDescription",
    "ReferringPhysicianName",
    "StudyDate",
    "StudyTime",
    "ModalitiesInStudy",
}
_SERIES_KEYS = {
    "SeriesInstanceUID",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "BodyPartExamined",
}
_IMAGE_KEYS = {"SOPInstanceUID", "SOPClassUID", "InstanceNumber"}
_CONTROL = {"limit", "offset", "fuzzymatching", "includefield", "emptyresult"}


def matching(
    level: Level, criteria: dict[str, list[str]], *, fuzzy: bool
) -> tuple[dict[str, Any], list[str]]:
    """Query fields from attribute criteria (keyword → raw values), and what was ignored."""
    fields: dict[str, Any] = {}
    ignored: list[str] = []
    allowed = set(_STUDY_KEYS)
    if level in (Level.SERIES, Level.IMAGE):
        allowed |= _SERIES_KEYS
    if level is Level.IMAGE:
        allowed |= _IMAGE_KEYS
    for keyword, raw in criteria.items():
        if not any(v.strip() for v in raw):
            continue  # universal matching
        if keyword == "Modality" and level in (Level.STUDY, Level.PATIENT):
            keyword = "ModalitiesInStudy"  # what a study search by modality means
        if keyword not in allowed:
            ignored.append(keyword)
            continue
        target, value = _match(keyword, raw, fuzzy=fuzzy)
        if value is not None:
            fields[target] = value
    return fields, ignored


#: The Query field each matchable attribute fills, by the kind of match it takes.
_UID_FIELDS = {
    "StudyInstanceUID": "study_uids",
    "SeriesInstanceUID": "series_uids",
    "SOPInstanceUID": "sop_uids",
    "SOPClassUID": "sop_classes",
}
_NAME_FIELDS = {"PatientName": "patient_name", "ReferringPhysicianName": "referring_physician"}
_DATE_FIELDS = {"StudyDate": "study_date", "PatientBirthDate": "patient_birth_date"}
_MODALITY_FIELDS = {"ModalitiesInStudy": "modalities_in_study", "Modality": "modalities"}
_NUMBER_FIELDS = {"SeriesNumber": "series_number", "InstanceNumber": "instance_number"}
_TEXT_FIELDS = {
    "PatientID": "patient_id",
    "PatientSex": "patient_sex",
    "AccessionNumber": "accession_number",
    "StudyDescription": "study_description",
    "SeriesDescription": "series_description",
    "BodyPartExamined": "body_part",
}


def _match(keyword: str, raw: list[str], *, fuzzy: bool) -> tuple[str, Any]:
    """The Query field one attribute's criterion fills, and its match (None: none)."""
    if keyword in _UID_FIELDS:
        return _UID_FIELDS[keyword], _uids(keyword, raw)
    if keyword in _MODALITY_FIELDS:
        values = tuple(v.upper() for v in _values(raw))
        if any(len(v) > 16 or "*" in v or "?" in v for v in values):
            raise BadRequest(
                N_("%(keyword)s 须为模态代码，如 CT 或 %(several)s"),
                keyword=keyword,
                several="CT\\MR",
            )
        return _MODALITY_FIELDS[keyword], values
    if keyword in _TEXT_FIELDS:
        return _TEXT_FIELDS[keyword], _text(raw)
    value = _single(keyword, raw)
    if keyword in _NAME_FIELDS:
        return _NAME_FIELDS[keyword], Name(value, fuzzy=fuzzy) if value else None
    if keyword in _DATE_FIELDS:
        return _DATE_FIELDS[keyword], date_range(keyword, value) if value else None
    if keyword in _NUMBER_FIELDS:
        return _NUMBER_FIELDS[keyword], _int(keyword, value) if value else None
    if keyword == "StudyTime":
        return "study_time", time_range(keyword, value) if value else None
    raise KeyError(f"no match for {keyword}")  # pragma: no cover - keys are checked above


def parse_params(
    params: MultiMapping[str], level: Level, *, fixed: dict[str, str] | None = None
) -> Parsed:
    """A QIDO request's query parameters as a Query; BadRequest with the reason for anything
    malformed. ``fixed`` holds the UIDs the resource path names."""
    warnings: list[str] = []
    limit, offset = _paging(params, level, warnings)
    fuzzy_text = params.get("fuzzymatching", "false").lower()
    if fuzzy_text not in ("true", "false"):
        raise BadRequest(N_("fuzzymatching 须为 true 或 false，而非 %(text)r"), text=fuzzy_text)
    include, include_all = _included(params)
    criteria: dict[str, list[str]] = {}
    for name in params:
        if name in _CONTROL or name in criteria:
            continue
        tag = tag_of(name.split(".")[0])
        keyword = keyword_of(tag)
        if "." in name or keyword in criteria:
            warnings.append(f"matching on {name} is not supported; it was ignored")
            continue
        criteria[keyword] = params.getall(name)
    for keyword, value in (fixed or {}).items():
        criteria[keyword] = [value]
    return build(
        level,
        criteria,
        include,
        include_all=include_all,
        limit=limit,
        offset=offset,
        fuzzy=fuzzy_text == "true",
        warnings=warnings,
    )


def _paging(params: MultiMapping[str], level: Level, warnings: list[str]) -> tuple[int, int]:
    """``limit`` (capped, with a warning) and ``offset``."""
    limit = DEFAULT_LIMIT[level]
    offset = 0
    if "limit" in params:
        limit = _int("limit", params["limit"])
        if limit < 1:
            raise BadRequest(N_("limit 须为正整数，而非 %(limit)s"), limit=limit)
        if limit > MAX_LIMIT:
            warnings.append(f"limit {limit} is more than this server returns; {MAX_LIMIT} it is")
            limit = MAX_LIMIT
    if "offset" in params:
        offset = _int("offset", params["offset"])
        if offset < 0:
            raise BadRequest(N_("offset 不能为负数，而非 %(offset)s"), offset=offset)
    return limit, offset


def _included(params: MultiMapping[str]) -> tuple[set[int], bool]:
    """The attributes ``includefield`` asks for, and whether it asks for all."""
    include: set[int] = set()
    include_all = False
    for value in params.getall("includefield", []):
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            if name == "all":
                include_all = True
                continue
            # A sequence path (00081115.0020000E) includes its top-level sequence.
            include.add(tag_of(name.split(".")[0]))
    return include, include_all


def build(
    level: Level,
    criteria: dict[str, list[str]],
    include: set[int],
    *,
    include_all: bool = False,
    limit: int,
    offset: int = 0,
    fuzzy: bool = False,
    warnings: list[str] | None = None,
) -> Parsed:
    """A search from attribute criteria (keyword → values) and the attributes to answer with.

    Shared by QIDO-RS and C-FIND. Raises BadRequest for a malformed value.
    """
    warnings = list(warnings or [])
    fields, ignored = matching(level, criteria, fuzzy=fuzzy)
    if ignored:
        warnings.append(
            "matching on these attributes is not supported at this level and was ignored: "
            + ", ".join(sorted(ignored))
        )
    # Attributes beyond the index columns come from a representative instance's metadata.
    with_metadata = include_all or any(not _held(tag, level) for tag in include)
    try:
        query = Query(
            level=level, limit=limit, offset=offset, with_metadata=with_metadata, **fields
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return Parsed(query=query, include=include, include_all=include_all, warnings=warnings)


_DIMSE_LEVELS = {
    "PATIENT": Level.PATIENT,
    "STUDY": Level.STUDY,
    "SERIES": Level.SERIES,
    "IMAGE": Level.IMAGE,
}
#: Identifier elements that steer the query rather than match: Specific Character Set,
#: Query/Retrieve Level, Retrieve AE Title.
_DIMSE_CONTROL = (0x0005, 0x0052, 0x0054)


def identifier_query(
    identifier: Dataset, *, patient_root: bool
) -> tuple[Level, dict[str, list[str]], list[int]]:
    """The level, matching criteria (keyword → values) and return keys of a C-FIND, C-GET
    or C-MOVE identifier; ``patient_root`` when it came in the Patient Root model."""
    text = str(identifier.get("QueryRetrieveLevel", "")).strip().upper()
    level = _DIMSE_LEVELS.get(text)
    if level is None:
        raise BadRequest(
            N_("QueryRetrieveLevel %(text)r：请用 PATIENT、STUDY、SERIES 或 IMAGE"), text=text
        )
    if level is Level.PATIENT and not patient_root:
        raise BadRequest(N_("PATIENT 级别只用于 Patient Root 模型"))
    criteria: dict[str, list[str]] = {}
    wanted: list[int] = []
    for elem in identifier:
        if elem.tag.group == 0x0008 and elem.tag.element in _DIMSE_CONTROL:
            continue
        if elem.tag.is_private or elem.VR == "SQ":
            continue
        wanted.append(int(elem.tag))
        value = elem.value
        if value is None or value == "":
            continue
        if isinstance(value, MultiValue | list | tuple):
            text_value = "\\".join(str(v) for v in value)
        else:
            text_value = str(value)
        criteria[keyword_of(int(elem.tag))] = [text_value]
    return level, criteria, wanted


#: The keys a retrieve (C-GET, C-MOVE) may name what it wants by.
RETRIEVE_KEYS = frozenset({"PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"})

#: The keys that narrow a PATIENT or STUDY level C-FIND to someone or something: one of
#: them, with more than wildcards, must be given (modality or description alone do not).
REAL_FIND_KEYS = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "StudyInstanceUID",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
)
#: What does not narrow a value: wildcards, an open date range, name separators, spaces.
_NOT_NARROWING = re.compile(r"[*?\-\s^=\\]")


def require_real_key(level: Level, criteria: Mapping[str, list[str]]) -> None:
    """A PATIENT or STUDY level C-FIND names a real key: not a bare ``*`` or empty
    PatientID / PatientName listing a facility's every patient.

    Raises
    ------
    Forbidden
        No real key has more than wildcards.
    """
    if level not in (Level.PATIENT, Level.STUDY):
        return  # SERIES and IMAGE queries name their study (and series) already
    for key in REAL_FIND_KEYS:
        if any(_NOT_NARROWING.sub("", value) for value in criteria.get(key, ())):
            return
    raise Forbidden(
        N_("%(level)s 级查询须有一个实际的键：%(keys)s，且不只是 * 或 ?"),
        level=level.value,
        keys=Phrase(N_("PatientID、PatientName、AccessionNumber、StudyInstanceUID 或 StudyDate")),
    )


def retrieve_query(criteria: dict[str, list[str]], *, limit: int) -> Parsed:
    """The instance-level search of a retrieve: only its unique keys (and PatientID) count,
    and they name values (PS3.4 C.4.2.2.1: no wildcards in a retrieve)."""
    unique = {k: v for k, v in criteria.items() if k in RETRIEVE_KEYS}
    if not unique:
        raise BadRequest(N_("标识符未指明要取回的 UID（或 PatientID）"))
    for key, values in unique.items():
        if any("*" in v or "?" in v for v in values):
            raise BadRequest(N_("%(key)s：取回须指明具体的值，不能用通配符"), key=key)
    return build(Level.IMAGE, unique, set(), limit=limit)


# --- answers ---------------------------------------------------------------------------------

Getter = Callable[[Hit, str], dict[str, Any]]


def _study_url(hit: Hit, base: str) -> str:
    return f"{base}/dicomweb/studies/{hit.study_instance_uid}"


def _series_url(hit: Hit, base: str) -> str:
    return f"{_study_url(hit, base)}/series/{hit.series_instance_uid}"


def _instance_url(hit: Hit, base: str) -> str:
    return f"{_series_url(hit, base)}/instances/{hit.sop_instance_uid}"


_GETTERS: dict[int, Getter] = {
    0x00080005: lambda h, b: element("CS", "ISO_IR 192"),
    0x00080020: lambda h, b: element("DA", h.study_date),
    0x00080030: lambda h, b: element("TM", h.study_time),
    0x00080050: lambda h, b: element("SH", h.accession_number),
    0x00080056: lambda h, b: element("CS", "ONLINE"),
    0x00080061: lambda h, b: element("CS", list(h.modalities_in_study)),
    0x00080090: lambda h, b: pn(h.referring_physician),
    0x00081030: lambda h, b: element("LO", h.study_description),
    0x00100010: lambda h, b: pn(h.patient_name),
    0x00100020: lambda h, b: element("LO", h.patient_id),
    0x00100021: lambda h, b: element("LO", h.issuer),
    0x00100030: lambda h, b: element("DA", h.patient_birth_date),
    0x00100040: lambda h, b: element("CS", h.patient_sex),
    0x0020000D: lambda h, b: element("UI", h.study_instance_uid),
    0x00201206: lambda h, b: element("IS", h.num_study_series),
    0x00201208: lambda h, b: element("IS", h.num_study_instances),
    0x00201200: lambda h, b: element("IS", h.num_patient_studies),
    0x00080060: lambda h, b: element("CS", h.modality),
    0x0020000E: lambda h, b: element("UI", h.series_instance_uid),
    0x00200011: lambda h, b: element("IS", h.series_number),
    0x0008103E: lambda h, b: element("LO", h.series_description),
    0x00180015: lambda h, b: element("CS", h.body_part),
    0x00201209: lambda h, b: element("IS", h.num_series_instances),
    0x00080016: lambda h, b: element("UI", h.sop_class_uid),
    0x00080018: lambda h, b: element("UI", h.sop_instance_uid),
    0x00200013: lambda h, b: element("IS", h.instance_number),
}
_RETRIEVE_URL = 0x00081190

_PATIENT_TAGS = (0x00080005, 0x00100010, 0x00100020, 0x00100021, 0x00100030, 0x00100040)
_STUDY_TAGS = (
    0x00080005,
    0x00080020,
    0x00080030,
    0x00080050,
    0x00080056,
    0x00080061,
    0x00080090,
    0x00081030,
    0x00100010,
    0x00100020,
    0x00100021,
    0x00100030,
    0x00100040,
    0x0020000D,
    0x00200010,
    0x00201206,
    0x00201208,
)
_SERIES_TAGS = (
    0x00080005,
    0x00080060,
    0x0008103E,
    0x00180015,
    0x0020000D,
    0x0020000E,
    0x00200011,
    0x00201209,
    0x00080056,
)
_INSTANCE_TAGS = (
    0x00080005,
    0x00080016,
    0x00080018,
    0x00080056,
    0x0020000D,
    0x0020000E,
    0x00200013,
    0x00280008,
    0x00280010,
    0x00280011,
    0x00280100,
)


def default_tags(level: Level, *, in_study: bool, in_series: bool) -> tuple[int, ...]:
    """The attributes each result carries without includefield (PS3.18 Table 10.6.3-3..5)."""
    if level is Level.PATIENT:
        return (*_PATIENT_TAGS, 0x00201200)
    if level is Level.STUDY:
        return _STUDY_TAGS
    if level is Level.SERIES:
        return _SERIES_TAGS if in_study else (*_STUDY_TAGS, *_SERIES_TAGS)
    if in_series:
        return _INSTANCE_TAGS
    if in_study:
        return (*_SERIES_TAGS, *_INSTANCE_TAGS)
    return (*_STUDY_TAGS, *_SERIES_TAGS, *_INSTANCE_TAGS)


def metadata_of(blob: bytes | None) -> dict[str, Any]:
    """An instance's stored DICOM JSON, or {} when none was kept."""
    if not blob:
        return {}
    loaded: dict[str, Any] = json.loads(zlib.decompress(blob))
    return loaded


def _without_bulk(value: dict[str, Any]) -> dict[str, Any] | None:
    """A stored element for a QIDO answer: bulk values are left out (they need WADO)."""
    if "BulkDataURI" in value:
        return None
    return value


def result(
    hit: Hit,
    level: Level,
    tags: Iterable[int],
    base: str,
    metadata: dict[str, Any],
    *,
    include_all: bool,
) -> dict[str, Any]:
    """One QIDO result in DICOM JSON, attributes in tag order."""
    return _Plan(level, tags, include_all=include_all).apply(hit, base, metadata)


class _Plan:
    """How each answered attribute is produced, worked out once for all results of a search."""

    def __init__(self, level: Level, tags: Iterable[int], *, include_all: bool) -> None:
        wanted = set(tags)
        if include_all:
            wanted |= {t for t in _GETTERS if _level_of(t) <= _LEVEL_RANK[level]}
        self.include_all = include_all and level is Level.IMAGE
        url = {
            Level.STUDY: _study_url,
            Level.SERIES: _series_url,
            Level.IMAGE: _instance_url,
        }.get(level)
        wanted.discard(_RETRIEVE_URL)
        getters = {tag: _getter(tag, level) for tag in wanted}
        if url is not None:
            wanted.add(_RETRIEVE_URL)
            getters[_RETRIEVE_URL] = lambda h, b: element("UR", url(h, b))
        self.steps: list[tuple[int, str, Getter | None, str]] = [
            (tag, hex_tag(tag), getters[tag], _vr(tag)) for tag in sorted(wanted)
        ]

    def apply(self, hit: Hit, base: str, metadata: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, dict[str, Any]] = {}
        for tag, key, getter, vr in self.steps:
            if getter is not None:
                out[key] = getter(hit, base)
            elif key in metadata:
                kept = _without_bulk(metadata[key])
                if kept is not None:
                    out[key] = kept
            elif (tag >> 16) % 2 == 0:
                # Asked for, not held: present and empty, as PS3.18 answers a known tag.
                out[key] = {"vr": vr}
        if self.include_all:
            for key, value in metadata.items():
                if key not in out:
                    kept = _without_bulk(value)
                    if kept is not None:
                        out[key] = kept
        return dict(sorted(out.items())) if self.include_all else out


def _vr(tag: int) -> str:
    try:
        return str(dictionary_VR(tag)).split(" or ")[0]
    except KeyError:
        return "UN"


_LEVEL_RANK = {Level.PATIENT: 0, Level.STUDY: 1, Level.SERIES: 2, Level.IMAGE: 3}
_SERIES_LEVEL = {0x00080060, 0x0020000E, 0x00200011, 0x0008103E, 0x00180015, 0x00201209}
_IMAGE_LEVEL = {0x00080016, 0x00080018, 0x00200013}


def _level_of(tag: int) -> int:
    if tag in _IMAGE_LEVEL:
        return 3
    if tag in _SERIES_LEVEL:
        return 2
    if tag == 0x00201200 or tag in _PATIENT_TAGS:
        return 0
    return 1


#: At the study level, Modality (which viewers put in includefield) is the study's modalities.
_STUDY_MODALITY: Getter = lambda h, b: element("CS", list(h.modalities_in_study))  # noqa: E731


def _getter(tag: int, level: Level) -> Getter | None:
    """How the index columns answer this attribute at this level, if they do."""
    if tag == 0x00080060 and level in (Level.STUDY, Level.PATIENT):
        return _STUDY_MODALITY if level is Level.STUDY else None
    if tag in _GETTERS and _level_of(tag) <= _LEVEL_RANK[level]:
        return _GETTERS[tag]
    return None


def _held(tag: int, level: Level) -> bool:
    """Whether the index columns answer this attribute at this level."""
    return _getter(tag, level) is not None


#: The study-level attributes `_GETTERS` answers, as the columns (or fixed values) an answer
#: built in SQL takes them from: (VR, column, fixed value). Same VRs and values as the getters.
_STUDY_SOURCES: dict[int, tuple[str, Source | None, str | None]] = {
    0x00080005: ("CS", None, "ISO_IR 192"),
    0x00080020: ("DA", Source.STUDY_DATE, None),
    0x00080030: ("TM", Source.STUDY_TIME, None),
    0x00080050: ("SH", Source.ACCESSION_NUMBER, None),
    0x00080056: ("CS", None, "ONLINE"),
    0x00080060: ("CS", Source.MODALITIES, None),  # _STUDY_MODALITY
    0x00080061: ("CS", Source.MODALITIES, None),
    0x00080090: ("PN", Source.REFERRING_PHYSICIAN, None),
    0x00081030: ("LO", Source.STUDY_DESCRIPTION, None),
    0x00100010: ("PN", Source.PATIENT_NAME, None),
    0x00100020: ("LO", Source.PATIENT_ID, None),
    0x00100021: ("LO", Source.ISSUER, None),
    0x00100030: ("DA", Source.PATIENT_BIRTH_DATE, None),
    0x00100040: ("CS", Source.PATIENT_SEX, None),
    0x0020000D: ("UI", Source.STUDY_INSTANCE_UID, None),
    0x00201200: ("IS", None, None),  # a patient-level count: empty in a study answer
    0x00201206: ("IS", Source.NUM_SERIES, None),
    0x00201208: ("IS", Source.NUM_INSTANCES, None),
    _RETRIEVE_URL: ("UR", Source.RETRIEVE_URL, None),
}


def study_elements(parsed: Parsed) -> list[Element] | None:
    """What each object of a study search's answer carries, when PostgreSQL can build it.

    The same attributes, in the same order, as `answer` gives; None when the answer needs a
    representative instance's stored metadata (``includefield`` beyond the index columns,
    ``all``), which only Python decodes.
    """
    query = parsed.query
    if query.level is not Level.STUDY or query.with_metadata or parsed.include_all:
        return None
    tags = set(default_tags(Level.STUDY, in_study=False, in_series=False)) | parsed.include
    elements = []
    for tag, key, getter, vr in _Plan(Level.STUDY, tags, include_all=False).steps:
        if getter is None:
            if (tag >> 16) % 2 == 0:
                elements.append(Element(key=key, vr=vr))  # asked for, not held: empty
            continue
        if tag not in _STUDY_SOURCES:
            return None  # a getter without a column here: let Python answer
        source_vr, source, value = _STUDY_SOURCES[tag]
        elements.append(Element(key=key, vr=source_vr, source=source, value=value))
    return elements


def _needs_metadata_rows(level: Level, parsed: Parsed, tags: Iterable[int]) -> bool:
    if level is Level.IMAGE:
        return True
    return parsed.query.with_metadata and any(not _held(t, level) for t in tags)


def answer(
    hits: list[Hit], level: Level, parsed: Parsed, base: str, *, in_study: bool, in_series: bool
) -> list[dict[str, Any]]:
    """The DICOM JSON results of a search (CPU work: run it off the event loop when large)."""
    tags = set(default_tags(level, in_study=in_study, in_series=in_series)) | parsed.include
    decode = _needs_metadata_rows(level, parsed, tags) or parsed.include_all
    plan = _Plan(level, tags, include_all=parsed.include_all)
    return [plan.apply(hit, base, metadata_of(hit.metadata_zlib) if decode else {}) for hit in hits]


def encoded(
    hits: list[Hit], level: Level, parsed: Parsed, base: str, *, in_study: bool, in_series: bool
) -> bytes:
    """The response body of a search: DICOM JSON, UTF-8."""
    body = answer(hits, level, parsed, base, in_study=in_study, in_series=in_series)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def path_uid(value: str) -> str:
    if len(value) > 64 or not _UID.match(value):
        raise BadRequest(N_("%(value)r 不是 UID（由数字和点组成，至多 64 个字符）"), value=value)
    return value
