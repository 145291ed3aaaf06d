-- The county patient index: the same person across facilities, linked only explicitly (a
-- hashed national ID, or an administrator's merge) with every link and unlink audited; and
-- two-way referrals (上转 / 下转) with their events.

create table person (
    id                  bigint generated always as identity primary key,
    -- HMAC-SHA256 of the normalised national ID under the network's own key: never the ID
    national_id_digest  text unique,
    created_at          timestamptz not null default now()
);

create table patient_link (
    patient_id  bigint primary key references patient (id) on delete cascade,
    person_id   bigint not null references person (id),
    method      text not null check (method in ('national_id', 'merge')),
    linked_by   bigint references app_user (id),
    linked_at   timestamptz not null default now()
);
create index patient_link_person_idx on patient_link (person_id);

create table patient_link_audit (
    id          bigint generated always as identity primary key,
    at          timestamptz not null default clock_timestamp(),
    user_id     bigint references app_user (id),
    action      text not null check (action in ('link', 'merge', 'unmerge')),
    patient_id  bigint not null references patient (id),
    person_id   bigint references person (id),
    detail      jsonb not null default '{}'
);

-- Keys the service makes for itself (the national-ID HMAC key), created on first use.
create table service_secret (
    name   text primary key,
    value  bytea not null
);

create table referral (
    id                 bigint generated always as identity primary key,
    direction          text not null check (direction in ('up', 'down')),
    patient_ref        bigint not null references patient (id),
    case_id            bigint references reading_case (id),
    in_reply_to        bigint references referral (id),
    from_facility_id   bigint not null references facility (id),
    to_facility_id     bigint not null references facility (id),
    urgency            text not null check (urgency in ('routine', 'urgent', 'emergency')),
    reason             text not null,
    discharge_summary  text,
    follow_up_plan     text,
    status             text not null default 'requested'
                       check (status in ('requested', 'accepted', 'declined')),
    created_by         bigint not null references app_user (id),
    created_at         timestamptz not null default now(),
    responded_by       bigint references app_user (id),
    responded_at       timestamptz,
    appointment_at     timestamptz,
    decline_reason     text,
    check (direction = 'up' or (discharge_summary is not null and follow_up_plan is not null))
);
create index referral_from_idx on referral (from_facility_id, created_at);
create index referral_to_idx on referral (to_facility_id, created_at);

alter table event add column referral_id bigint references referral (id);
create index event_referral_idx on event (referral_id) where referral_id is not null;

-- A referral is seen by the users of the two facilities, and by administrators above either.
create function referral_visible_to(p_user bigint, p_referral bigint) returns boolean
language sql stable as $$
    select coalesce((
        select u.facility_id in (r.from_facility_id, r.to_facility_id)
            or (u.role = 'admin' and (
                r.from_facility_id in (select facility_subtree(u.facility_id))
                or r.to_facility_id in (select facility_subtree(u.facility_id))))
        from app_user u, referral r
        where u.id = p_user and r.id = p_referral and u.active
    ), false)
$$;

-- The patients linked to a patient record (itself included).
create function linked_patients(p_patient bigint) returns setof bigint
language sql stable as $$
    select p_patient
    union
    select l2.patient_id from patient_link l1 join patient_link l2 on l2.person_id = l1.person_id
    where l1.patient_id = p_patient
$$;

-- Readers see the priors of a patient they read for, across linked records too.
create or replace function study_visible_to(p_user bigint, p_study bigint) returns boolean
language sql stable as $$
    select coalesce((
        select case u.role
            when 'clinic' then s.facility_id = u.facility_id
            when 'admin' then s.facility_id in (select facility_subtree(u.facility_id))
            when 'reader' then exists (
                select 1 from study s2 join reading_case c on c.study_id = s2.id
                where s2.patient_ref in (select linked_patients(s.patient_ref))
                  and case_visible_to(p_user, c.id))
            else false
        end
        from app_user u, study s
        where u.id = p_user and s.id = p_study and u.active
    ), false)
$$;
