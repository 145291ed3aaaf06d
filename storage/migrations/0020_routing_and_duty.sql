-- Routing as data: each network's deadlines and timings, routing rules (first-read and
-- escalation pools per sender, modality, specialty and priority), readers' and duty
-- administrators' on-duty schedules, and where a clinic's workstation takes reports back.

-- Deadlines and timings of the network under a facility (normally the city at its top).
-- The nearest policy above a facility applies; without one, the defaults below.
create table network_policy (
    facility_id      bigint primary key references facility (id) on delete cascade,
    timezone         text not null default 'Asia/Shanghai',
    deadline_high    interval not null default '30 minutes',
    deadline_medium  interval not null default '24 hours',
    deadline_low     interval not null default '72 hours',
    -- an ECG with suspected STEMI: chest-pain centers read it within 10 minutes
    deadline_stemi   interval not null default '10 minutes',
    -- a critical result must be acknowledged by a named person at the clinic within this
    critical_ack     interval not null default '15 minutes',
    -- an unclaimed case is escalated when less than this share of its window is left
    at_risk_share    real not null default 0.1 check (at_risk_share >= 0 and at_risk_share < 1),
    updated_at       timestamptz not null default now()
);

-- A sender (the facility and everything below it) sends cases matching the optional
-- modality, specialty and priority to a first-read pool (a facility's readers of the case's
-- specialty) and an escalation pool. The nearest sender wins, then the most specific rule.
create table routing_rule (
    id                      bigint generated always as identity primary key,
    sender_facility_id      bigint not null references facility (id) on delete cascade,
    modality                text,
    specialty               text check (specialty in ('radiology', 'ecg')),
    priority                text check (priority in ('high', 'medium', 'low')),
    first_read_facility_id  bigint not null references facility (id) on delete cascade,
    escalation_facility_id  bigint references facility (id) on delete cascade,
    deadline                interval check (deadline > interval '0'),
    updated_at              timestamptz not null default now()
);
create unique index routing_rule_key_uniq on routing_rule (
    sender_facility_id, coalesce(modality, ''), coalesce(specialty, ''), coalesce(priority, ''));

-- Weekly on-duty shifts in the network's local time (ISO weekdays, 1 = Monday). A shift
-- whose end is not after its start runs past midnight. A user without shifts is always on
-- duty, so a network without schedules routes as before.
create table duty_shift (
    id        bigint generated always as identity primary key,
    user_id   bigint not null references app_user (id) on delete cascade,
    weekdays  integer[] not null check (weekdays <@ array[1, 2, 3, 4, 5, 6, 7]
                                        and cardinality(weekdays) > 0),
    starts    time not null,
    ends      time not null
);
create index duty_shift_user_idx on duty_shift (user_id);

-- The DICOM node of a clinic's workstation that takes reports back (encapsulated PDF and a
-- Basic Text SR, by C-STORE).
create table report_destination (
    facility_id  bigint primary key references facility (id) on delete cascade,
    ae_title     text not null,
    host         text not null,
    port         integer not null check (port between 1 and 65535)
);

-- The policy of the network a facility belongs to: the nearest one above it (or null).
create function network_policy_of(p_facility bigint) returns network_policy
language sql stable as $$
    with recursive up(id, parent_id, depth) as (
        select id, parent_id, 0 from facility where id = p_facility
        union all
        select f.id, f.parent_id, up.depth + 1 from facility f join up on f.id = up.parent_id
    )
    select p from up join network_policy p on p.facility_id = up.id
    order by up.depth limit 1
$$;

create function on_duty(p_user bigint, p_at timestamptz) returns boolean
language sql stable as $$
    select not exists (select 1 from duty_shift d where d.user_id = p_user)
        or exists (
            select 1
            from duty_shift d
            join app_user u on u.id = d.user_id
            cross join lateral (
                select (p_at at time zone coalesce((network_policy_of(u.facility_id)).timezone,
                                           'Asia/Shanghai')) as t) l
            where d.user_id = p_user and (
                (d.starts < d.ends
                    and extract(isodow from l.t)::int = any(d.weekdays)
                    and l.t::time >= d.starts and l.t::time < d.ends)
                or (d.starts >= d.ends and (
                    (extract(isodow from l.t)::int = any(d.weekdays) and l.t::time >= d.starts)
                    or (extract(isodow from l.t - interval '1 day')::int = any(d.weekdays)
                        and l.t::time < d.ends)))))
$$;
