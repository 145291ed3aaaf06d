"""Cases for the administrator's dashboard, loaded straight into the index in bulk (COPY into
a staging table, then one statement per table), so that the triggers of migration 0065 see
them as they see the service's own writes. Used by the dashboard tests (a few cases with
figures computed by hand) and by ``bench/dashboard.py`` (a million, at random).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from datetime import datetime, timedelta

import asyncpg

from storage.records import FacilitySpec, Role, Specialty, Tier, UserSpec
from teleradiology.services import administration


@dataclass(frozen=True)
class CaseSpec:
    """One case: sent by ``facility`` to the pool ``pool``, received at ``received_at``;
    its first final report by ``reader`` ``final_after_s`` later, acknowledged
    ``ack_after_s`` after that, or returned to the clinic ``returned_after_s`` after
    receipt (None: it did not happen). Due ``deadline_s`` after receipt. Escalated
    ``escalated_after_s`` after receipt to the pool ``escalated_to``, after a preliminary
    report by ``first_reader`` when given; the final report then agreed with it or not
    (``agreed``)."""

    facility: str
    pool: str
    modality: str
    priority: str
    received_at: datetime
    deadline_s: float
    final_after_s: float | None = None
    ack_after_s: float | None = None
    returned_after_s: float | None = None
    reader: str | None = None
    escalated_after_s: float | None = None
    escalated_to: str | None = None
    first_reader: str | None = None
    agreed: bool | None = None


#: The staging table's columns, in the order of :class:`CaseSpec`'s fields.
_COLUMNS = [f.name for f in fields(CaseSpec)]


@dataclass(frozen=True)
class ReferralSpec:
    """A referral up (from a clinic to its county) or down, made at ``created_at``."""

    direction: str
    from_facility: str
    to_facility: str
    status: str
    created_at: datetime
    created_by: str


_STAGE = """
create temp table dashboard_stage (
    facility text, pool text, modality text, priority text, received_at timestamptz,
    deadline_s float8, final_after_s float8, ack_after_s float8, returned_after_s float8,
    reader text, escalated_after_s float8, escalated_to text, first_reader text,
    agreed boolean, n bigint generated always as identity
) on commit drop
"""
_LOAD = (
    """
insert into patient (issuer_facility_id, patient_id)
select f.id, $1 || s.n from dashboard_stage s join facility f on f.code = s.facility
""",
    """
insert into study (study_instance_uid, facility_id, patient_ref, modalities, state, priority,
                   first_received_at, last_received_at, completed_at, num_series,
                   num_instances)
select $2 || s.n, p.issuer_facility_id, p.id, array[s.modality], 'complete', s.priority,
       s.received_at, s.received_at, s.received_at + interval '1 minute', 1, 1
from dashboard_stage s
join facility f on f.code = s.facility
join patient p on p.issuer_facility_id = f.id and p.patient_id = $1 || s.n
""",
    """
insert into event (at, kind, facility_id, study_id)
select e.at, e.kind, st.facility_id, st.id
from dashboard_stage s join study st on st.study_instance_uid = $1 || s.n
cross join lateral (values ('received', st.first_received_at),
                           ('complete', st.completed_at)) as e(kind, at)
""",
    """
insert into reading_case (study_id, facility_id, specialty, priority, status,
                          pool_facility_id, first_pool_facility_id, deadline, created_at,
                          return_code, escalated_at, escalated_by)
select st.id, st.facility_id, case s.modality when 'ECG' then 'ecg' else 'radiology' end,
       s.priority,
       case when s.final_after_s is not null then 'completed'
            when s.returned_after_s is not null then 'canceled' else 'scheduled' end,
       coalesce(ef.id, pf.id), pf.id, s.received_at + make_interval(secs => s.deadline_s),
       s.received_at + interval '1 minute',
       case when s.returned_after_s is not null then 'motion' end,
       s.received_at + make_interval(secs => s.escalated_after_s), fu.id
from dashboard_stage s
join study st on st.study_instance_uid = $1 || s.n
join facility pf on pf.code = s.pool
left join facility ef on ef.code = s.escalated_to
left join app_user fu on fu.username = s.first_reader
""",
    # the first reader's preliminary report, then the final report compared with it (before
    # the case's events: the 'final' event's trigger reads its report)
    """
insert into report (case_id, author_id, status, findings, impression, conclusion, signed_at,
                    signature_sha256)
select c.id, u.id, 'preliminary', '', '', 'abnormal',
       s.received_at + make_interval(secs => s.escalated_after_s * 0.9), ''
from dashboard_stage s
join study st on st.study_instance_uid = $1 || s.n
join reading_case c on c.study_id = st.id
join app_user u on u.username = s.first_reader
""",
    """
insert into report (case_id, author_id, status, findings, impression, conclusion, signed_at,
                    signature_sha256, agreed, discrepancy, compared_report_id)
select c.id, u.id, 'final', '', '', case when s.agreed then 'abnormal' else 'normal' end,
       s.received_at + make_interval(secs => s.final_after_s), '', s.agreed,
       case when not s.agreed then '结论不同' end, p.id
from dashboard_stage s
join study st on st.study_instance_uid = $1 || s.n
join reading_case c on c.study_id = st.id
join app_user u on u.username = s.reader
left join report p on p.case_id = c.id and p.status = 'preliminary'
where s.agreed is not null and s.final_after_s is not null
""",
    """
insert into event (at, kind, facility_id, study_id, case_id, user_id)
select e.at, e.kind, c.facility_id, c.study_id, c.id, u.id
from dashboard_stage s
join study st on st.study_instance_uid = $1 || s.n
join reading_case c on c.study_id = st.id
left join app_user u on u.username = s.reader
cross join lateral (values
    ('routed', c.created_at),
    ('claimed', s.received_at + make_interval(secs => s.final_after_s / 2)),
    ('final', s.received_at + make_interval(secs => s.final_after_s)),
    ('delivered', s.received_at + make_interval(secs => s.final_after_s + 30)),
    ('acknowledged', s.received_at + make_interval(secs => s.final_after_s + s.ack_after_s)),
    ('returned', s.received_at + make_interval(secs => s.returned_after_s)),
    ('escalated', s.received_at + make_interval(secs => s.escalated_after_s))
) as e(kind, at)
where e.at is not null
order by e.at
""",
)


async def load_cases(pool: asyncpg.Pool, cases: Sequence[CaseSpec]) -> None:
    """Write the cases, their studies, patients and events in one transaction."""
    run = uuid.uuid4().int % 10**12
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("set local statement_timeout = 0")
        await conn.execute(_STAGE)
        await conn.copy_records_to_table(
            "dashboard_stage",
            records=[astuple(c) for c in cases],
            columns=_COLUMNS,
        )
        await conn.execute("analyze dashboard_stage")
        patients, studies = f"DB{run}-", f"2.25.{run}."
        await conn.execute(_LOAD[0], patients)
        await conn.execute(_LOAD[1], patients, studies)
        for statement in _LOAD[2:]:
            await conn.execute(statement, studies)


async def load_referrals(pool: asyncpg.Pool, referrals: Sequence[ReferralSpec]) -> None:
    """Write the referrals, each for a patient of its own."""
    run = uuid.uuid4().int % 10**12
    await pool.execute(
        """
        with r as (
            select * from unnest($1::text[], $2::text[], $3::text[], $4::text[],
                                 $5::timestamptz[], $6::text[])
                with ordinality as r(direction, from_code, to_code, status, created_at,
                                     created_by, n)
        ), p as (
            insert into patient (issuer_facility_id, patient_id)
            select f.id, $7 || r.n from r join facility f on f.code = r.from_code
            returning id, patient_id
        )
        insert into referral (direction, patient_ref, from_facility_id, to_facility_id,
                              urgency, reason, discharge_summary, follow_up_plan, status,
                              created_by, created_at)
        select r.direction, p.id, ff.id, tf.id, 'routine', 'bench',
               case r.direction when 'down' then '出院小结' end,
               case r.direction when 'down' then '随访' end,
               r.status, u.id, r.created_at
        from r
        join p on p.patient_id = $7 || r.n
        join facility ff on ff.code = r.from_code
        join facility tf on tf.code = r.to_code
        join app_user u on u.username = r.created_by
        """,
        *(list(column) for column in zip(*(astuple(r) for r in referrals), strict=True)),
        f"RF{run}-",
    )


# --- a network, and cases at random in it --------------------------------------------------


@dataclass(frozen=True)
class BenchNetwork:
    """The facility codes of a generated network by tier, each clinic's county pool, and
    the readers of each county (and the city)."""

    city: str
    counties: tuple[str, ...]
    clinics: tuple[str, ...]
    pool_of: dict[str, str]
    readers_of: dict[str, tuple[str, ...]]
    admin: str


async def make_network(
    pool: asyncpg.Pool,
    *,
    prefix: str = "BN",
    counties: int = 9,
    townships: int = 12,
    villages: int = 2,
) -> BenchNetwork:
    """A city, its counties, their township centres and each township's villages, with two
    readers per county and one administrator at the city (Huaibin-sized by default)."""
    city = f"{prefix}-CITY"
    facilities = [
        FacilitySpec(
            code=city, name=f"{prefix} 市中心医院", tier=Tier.CITY, parent=None, ae_titles=()
        )
    ]
    users = [_user(f"{prefix.lower()}.admin", Role.ADMIN, city)]
    pool_of: dict[str, str] = {}
    readers_of: dict[str, tuple[str, ...]] = {}
    for c in range(counties):
        county = f"{prefix}-C{c}"
        facilities.append(
            FacilitySpec(
                code=county,
                name=f"{prefix} 县医院 {c}",
                tier=Tier.COUNTY,
                parent=city,
                ae_titles=(),
            )
        )
        names = tuple(f"{prefix.lower()}.r{c}.{n}" for n in range(2))
        users += [_user(n, Role.READER, county) for n in names]
        readers_of[county] = names
        for t in range(townships):
            township = f"{county}-T{t}"
            facilities.append(
                FacilitySpec(
                    code=township,
                    name=f"{prefix} 卫生院 {c}.{t}",
                    tier=Tier.TOWNSHIP,
                    parent=county,
                    ae_titles=(),
                )
            )
            pool_of[township] = county
            for v in range(villages):
                village = f"{township}-V{v}"
                facilities.append(
                    FacilitySpec(
                        code=village,
                        name=f"{prefix} 村卫生室 {c}.{t}.{v}",
                        tier=Tier.VILLAGE,
                        parent=township,
                        ae_titles=(),
                    )
                )
                pool_of[village] = county
    await administration.import_network(pool, facilities, users)
    return BenchNetwork(
        city=city,
        counties=tuple(readers_of),
        clinics=tuple(pool_of),
        pool_of=pool_of,
        readers_of=readers_of,
        admin=f"{prefix.lower()}.admin",
    )


def _user(name: str, role: Role, facility: str) -> UserSpec:
    return UserSpec(
        username=name,
        display_name=name,
        role=role,
        facility=facility,
        specialties=(Specialty.RADIOLOGY, Specialty.ECG) if role is Role.READER else (),
        password_hash=None,
    )


_MODALITIES = (("DX", 40), ("CR", 10), ("CT", 15), ("US", 10), ("ECG", 25))
_PRIORITIES = (("high", 15), ("medium", 80), ("low", 5))
_DEADLINES = {"high": 1800.0, "medium": 4 * 3600.0, "low": 24 * 3600.0}


def random_cases(
    net: BenchNetwork, count: int, *, end: datetime, days: float, seed: int = 1
) -> list[CaseSpec]:
    """``count`` cases received over the ``days`` before ``end``, in the order received:
    most finally reported (log-normal times), most of those acknowledged, a few returned,
    a few still open."""
    rng = random.Random(seed)
    modalities = rng.choices([m for m, _ in _MODALITIES], [w for _, w in _MODALITIES], k=count)
    priorities = rng.choices([p for p, _ in _PRIORITIES], [w for _, w in _PRIORITIES], k=count)
    found = []
    for n in range(count):
        clinic = rng.choice(net.clinics)
        county = net.pool_of[clinic]
        fate = rng.random()
        final = rng.lognormvariate(8.0, 0.9) if fate < 0.93 else None
        # one case in twenty-five goes up to the city after a county reader's draft
        up = rng.uniform(0.2, 0.6) if rng.random() < 0.04 else None
        readers = net.readers_of[county]
        found.append(
            CaseSpec(
                facility=clinic,
                pool=county,
                modality=modalities[n],
                priority=priorities[n],
                received_at=end - timedelta(seconds=rng.uniform(0, days * 86400)),
                deadline_s=_DEADLINES[priorities[n]],
                final_after_s=final,
                ack_after_s=rng.lognormvariate(7.0, 1.0) if final and fate < 0.85 else None,
                returned_after_s=rng.uniform(300, 7200) if 0.93 <= fate < 0.97 else None,
                reader=rng.choice(readers) if final else None,
                escalated_after_s=up * final if up and final else None,
                escalated_to=net.city if up and final else None,
                first_reader=readers[-1] if up and final else None,
                agreed=rng.random() < 0.9 if up and final else None,
            )
        )
    return sorted(found, key=lambda c: c.received_at)


def random_referrals(
    net: BenchNetwork, count: int, *, end: datetime, days: int, seed: int = 2
) -> list[ReferralSpec]:
    """``count`` referrals, three up for one down, over the ``days`` before ``end``."""
    rng = random.Random(seed)
    found = []
    for _ in range(count):
        clinic = rng.choice(net.clinics)
        county = net.pool_of[clinic]
        up = rng.random() < 0.75
        found.append(
            ReferralSpec(
                direction="up" if up else "down",
                from_facility=clinic if up else county,
                to_facility=county if up else clinic,
                status=rng.choice(("requested", "accepted", "accepted", "declined")),
                created_at=end - timedelta(seconds=rng.uniform(0, days * 86400)),
                created_by=net.readers_of[county][0],
            )
        )
    return found
