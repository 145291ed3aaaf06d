"""QIDO study search at county scale: the scope written as joins keeps to study_visible_to,
study answers built in PostgreSQL equal the ones built in Python, and short name parts match
exactly as the LIKE rules do."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from storage import network, qido
from storage.qido import ReaderShape
from storage.search import Level, Name, Query, Range, Scope
from teleradiology.core import query as service
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store
from tests.integration.test_dicomweb import study_with

NAMES = {
    "HB-XL-WD": [("王^秀英", "WD-1"), ("王^小明", "WD-2"), ("Liu^Tao=刘^涛", "WD-3")],
    "HB-MJ-LW": [("李^秀英", "LW-1"), ("Müller^Hans", "LW-2"), ("秀^英", "LW-3")],
}


async def _network_of_studies(api: Api) -> dict[str, str]:
    """Studies across two villages, routed; then a case escalated to the city, one rerouted
    to the city, two patient records linked as one person, a study attached to a referral to
    the city (and one to a declined referral), and one reader deactivated."""
    made: dict[str, str] = {}
    day = 20261101
    for code, people in NAMES.items():
        for name, patient_id in people:
            for n in range(2):
                made[f"{patient_id}/{n}"] = await store(
                    api,
                    code,
                    study_with(
                        name=name,
                        patient_id=patient_id,
                        date=str(day),
                        modality="CT" if n else "DX",
                        count=1,
                    ),
                )
                day += 1
    await route_all(api)
    pool = api.pool

    async def case_of(key: str, change: str) -> None:
        await pool.execute(
            f"update reading_case set {change} where study_id = "  # noqa: S608 - fixed text
            "(select id from study where study_instance_uid = $1)",
            made[key],
        )

    city = "(select id from facility where code = 'XY-CITY')"
    for key in ("WD-2/0", "WD-2/1"):  # the county follows what it escalated
        await case_of(key, f"pool_facility_id = {city}, escalated_at = now()")
    await case_of("LW-1/0", f"pool_facility_id = {city}")
    await case_of("LW-1/1", f"pool_facility_id = {city}")
    await case_of("LW-2/1", "specialty = 'ecg'")
    person = await pool.fetchval("insert into person default values returning id")
    await pool.execute(
        "insert into patient_link (patient_id, person_id, method) "
        "select id, $1, 'merge' from patient where patient_id = any($2::text[])",
        person,
        ["WD-3", "LW-3"],
    )
    await case_of("LW-3/0", f"pool_facility_id = {city}")
    await case_of("LW-3/1", f"pool_facility_id = {city}")
    # a study attached to a referral the city receives, and one to a referral it declined
    for key, status in (("WD-1/0", "accepted"), ("LW-2/0", "declined")):
        await pool.execute(
            "with r as (insert into referral (direction, patient_ref, from_facility_id, "
            "to_facility_id, urgency, reason, status, created_by) "
            "select 'up', s.patient_ref, s.facility_id, $3, 'routine', '转诊', $2, "
            "(select id from app_user where username = 'xlwd.clinic') "
            "from study s where s.study_instance_uid = $1 returning id) "
            "insert into referral_attachment (referral_id, study_id) "
            "select r.id, s.id from r, study s where s.study_instance_uid = $1",
            made[key],
            status,
            await pool.fetchval("select id from facility where code = 'XY-CITY'"),
        )
    await pool.execute("update app_user set active = false where username = 'zhou.reader'")
    return made


async def _scope(api: Api, username: str) -> Scope:
    user = await network.user_by_username(api.pool, username)
    assert user is not None
    return service.scope_of(user)


async def _found(api: Api, query: Query, scope: Scope, shape: ReaderShape | None) -> set[str]:
    sql, params = qido.build_sql(query, scope, shape=shape)
    return {r["study_instance_uid"] for r in await api.pool.fetch(sql, *params)}


async def test_scope_joins_see_exactly_what_study_visible_to_allows(api: Api) -> None:
    made = await _network_of_studies(api)
    users = await network.list_users(api.pool)
    seen_any = 0
    for user in users:
        expected = {
            r["study_instance_uid"]
            for r in await api.pool.fetch(
                "select study_instance_uid from study where study_visible_to($1, id)", user.id
            )
        }
        if user.username == "sun.city.ecg":  # the city sees what is referred to it, only that
            assert made["WD-1/0"] in expected
            assert made["LW-2/0"] not in expected
        scope = service.scope_of(user)
        hits = await qido.search(api.pool, Query(level=Level.STUDY, limit=100_000), scope)
        assert {h.study_instance_uid for h in hits} == expected, user.username
        series = await qido.search(api.pool, Query(level=Level.SERIES, limit=100_000), scope)
        assert {h.study_instance_uid for h in series} == expected, user.username
        # Both shapes of a reader's scope, at every level (other roles ignore the shape).
        for shape in ReaderShape:
            for level in (Level.STUDY, Level.SERIES, Level.IMAGE):
                found = await _found(api, Query(level=level, limit=100_000), scope, shape)
                assert found == expected, (user.username, shape, level)
            hits = await qido.search(
                api.pool, Query(level=Level.STUDY, study_uids=tuple(expected) or ("1.2",)), scope
            )
            assert {h.study_instance_uid for h in hits} == expected, user.username
        seen_any += bool(expected)
    assert seen_any >= 5  # readers, clinics and administrators all see something here


async def test_reader_shapes_answer_alike_with_filters_and_pages(api: Api) -> None:
    await _network_of_studies(api)
    queries = [
        Query(level=Level.STUDY, limit=3, offset=1),
        Query(level=Level.STUDY, study_date=Range("20261103", "20261108")),
        Query(level=Level.STUDY, patient_name=Name("*秀英*", fuzzy=True)),
        Query(level=Level.SERIES, modalities=("CT",)),
    ]
    for username in ("wang.reader", "zhao.city", "zhou.reader", "li.ecg", "gs.reader"):
        scope = await _scope(api, username)
        for query in queries:
            answers = []
            for shape in ReaderShape:
                sql, params = qido.build_sql(query, scope, shape=shape)
                answers.append([tuple(r) for r in await api.pool.fetch(sql, *params)])
            assert answers[0] == answers[1], (username, query)  # same rows, same order
        patients = Query(level=Level.PATIENT, limit=100_000)
        sql, params = qido.build_sql(patients, scope, shape=ReaderShape.PROBE)
        probed = [tuple(r) for r in await api.pool.fetch(sql, *params)]
        sql, params = qido.build_sql(patients, scope, shape=ReaderShape.CASES)
        assert [tuple(r) for r in await api.pool.fetch(sql, *params)] == probed, username


async def test_a_reader_with_few_cases_is_searched_from_them(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _network_of_studies(api)
    city = await _scope(api, "zhao.city")
    county = await _scope(api, "wang.reader")
    newest = Query(level=Level.STUDY)
    assert await qido.reader_shape(api.pool, newest, city) is ReaderShape.CASES
    named = Query(level=Level.STUDY, study_uids=("1.2.3",))
    assert await qido.reader_shape(api.pool, named, city) is ReaderShape.PROBE
    assert await qido.reader_shape(api.pool, newest, await _scope(api, "hb.admin")) is None
    # Up to the threshold, a reader is probed; below it, searched from their cases.
    cases = await api.pool.fetchval(
        "select count(*) from reading_case c where case_visible_to($1, c.id)", county.user_id
    )
    assert cases > 2
    monkeypatch.setattr(qido, "READER_CASES_BELOW", cases)
    assert await qido.reader_shape(api.pool, newest, county) is ReaderShape.PROBE
    monkeypatch.setattr(qido, "READER_CASES_BELOW", cases + 1)
    assert await qido.reader_shape(api.pool, newest, county) is ReaderShape.CASES
    monkeypatch.setattr(qido, "READER_CASES_BELOW", 2)
    assert await qido.reader_shape(api.pool, newest, city) is ReaderShape.PROBE
    # A deactivated reader has no cases to count, and finds nothing either way.
    inactive = await _scope(api, "zhou.reader")
    assert await qido.reader_shape(api.pool, newest, inactive) is ReaderShape.CASES
    assert await qido.search(api.pool, newest, inactive) == []


def _parsed(query: Query, include: set[int] | None = None) -> service.Parsed:
    return service.Parsed(query=query, include=include or set())


async def test_study_answers_built_in_sql_equal_the_python_ones(api: Api) -> None:
    await _network_of_studies(api)
    base = "http://viewer.example"
    queries = [
        _parsed(Query(level=Level.STUDY)),
        _parsed(Query(level=Level.STUDY, limit=3, offset=2)),
        _parsed(Query(level=Level.STUDY, study_date=Range("20261103", "20261108"))),
        _parsed(Query(level=Level.STUDY, patient_name=Name("*秀英*", fuzzy=True))),
        # Held attributes asked for by includefield; Modality means ModalitiesInStudy here,
        # NumberOfPatientRelatedStudies is empty at the study level.
        _parsed(Query(level=Level.STUDY), {0x00081030, 0x00080060, 0x00201200, 0x00100021}),
    ]
    for username in ("wang.reader", "zhao.city", "hb.admin", "xlwd.clinic", "zhou.reader"):
        scope = await _scope(api, username)
        for parsed in queries:
            elements = service.study_elements(parsed)
            assert elements is not None
            built = await qido.search_studies_json(
                api.pool, parsed.query, scope, elements, retrieve_base=f"{base}/dicomweb/studies/"
            )
            count, body = built.count, built.body
            hits = await qido.search(api.pool, parsed.query, scope)
            assert set(built.study_uids) == {h.study_instance_uid for h in hits}
            assert set(built.patients) == {f"{h.issuer}:{h.patient_id}" for h in hits}
            python = service.answer(
                hits, Level.STUDY, parsed, base, in_study=False, in_series=False
            )
            answer: list[dict[str, Any]] = json.loads(body)
            assert count == len(hits)
            assert answer == python, (username, parsed.query)
            # Same attributes in the same order, not only equal objects.
            assert [list(a) for a in answer] == [list(p) for p in python]
            for shape in ReaderShape:  # either shape of a reader's scope: the same bytes
                sql, params = qido.build_json_sql(
                    parsed.query,
                    scope,
                    elements,
                    retrieve_base=f"{base}/dicomweb/studies/",
                    shape=shape,
                )
                row = await api.pool.fetchrow(sql, *params)
                assert row is not None
                assert (row["count"], bytes(row["body"])) == (count, body), (username, shape)


async def test_includefield_beyond_the_columns_is_answered_from_metadata(api: Api) -> None:
    parsed = _parsed(Query(level=Level.STUDY, with_metadata=True), {0x00280030})
    assert service.study_elements(parsed) is None
    all_of_it = service.Parsed(query=Query(level=Level.STUDY, with_metadata=True), include_all=True)
    assert service.study_elements(all_of_it) is None


def _like(value: str, pattern: str) -> bool:
    """A DICOM wildcard pattern against the whole value (reference for the SQL)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


async def test_short_name_parts_match_as_the_like_rules_do(api: Api) -> None:
    made = await _network_of_studies(api)
    admin = await _scope(api, "hb.admin")
    names = {
        f"{pid}/{n}": name for people in NAMES.values() for name, pid in people for n in (0, 1)
    }
    for pattern in ("*秀英*", "*秀*", "*英", "*英*", "*u*", "*ü*", "*^*", "*tao*", "刘*", "*秀?*"):
        expected = {
            made[key]
            for key, name in names.items()
            if any(_like(v.lower(), pattern.lower()) for v in (name, *name.split("=")))
        }
        hits = await qido.search(
            api.pool, Query(level=Level.STUDY, patient_name=Name(pattern)), admin
        )
        assert {h.study_instance_uid for h in hits} == expected, pattern
    # Fuzzy: each word starts a word of the folded name; '*xy' is a part anywhere.
    fuzzy = {"*秀英*": {"WD-1", "LW-1"}, "*英": {"WD-1", "LW-1", "LW-3"}, "*u*": {"WD-3", "LW-2"}}
    fuzzy |= {"*ü": {"WD-3", "LW-2"}, "*i": {"WD-3"}, "*小明*": {"WD-2"}}
    fuzzy["秀*"] = {"WD-1", "LW-1", "LW-3"}  # '^' starts a word: 王^秀英 too
    for pattern, patients in fuzzy.items():
        hits = await qido.search(
            api.pool, Query(level=Level.STUDY, patient_name=Name(pattern, fuzzy=True)), admin
        )
        assert {h.patient_id for h in hits} == patients, pattern
