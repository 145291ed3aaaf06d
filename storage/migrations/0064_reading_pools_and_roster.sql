-- Reading pools by name, duty roster exceptions, and routing rules that name a pool.
--
-- A reading pool is a named group of readers of one specialty at one reading facility (a
-- county or city hospital). A routing rule may send its cases to a pool: the case is read
-- at the pool's facility, and the pool counts as staffed when one of its members is on duty.
create table reading_pool (
    id           bigint generated always as identity primary key,
    code         text not null unique check (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$'),
    name         text not null check (length(name) between 1 and 200),
    specialty    text not null check (specialty in ('radiology', 'ecg')),
    facility_id  bigint not null references facility (id) on delete cascade,
    active       boolean not null default true,
    updated_at   timestamptz not null default now()
);
create index reading_pool_facility_idx on reading_pool (facility_id);

create table reading_pool_member (
    pool_id  bigint not null references reading_pool (id) on delete cascade,
    user_id  bigint not null references app_user (id) on delete cascade,
    primary key (pool_id, user_id)
);
create index reading_pool_member_user_idx on reading_pool_member (user_id);

-- Exceptions to a user's weekly shifts on one local date: leave (from `starts` to `ends`,
-- both null: the whole day) or an extra shift (`starts` to `ends`; an end not after the
-- start runs past midnight into the next day).
create table duty_exception (
    id              bigint generated always as identity primary key,
    user_id         bigint not null references app_user (id) on delete cascade,
    day             date not null,
    exception_kind  text not null check (exception_kind in ('leave', 'extra')),
    starts          time,
    ends            time,
    created_at      timestamptz not null default now(),
    check ((starts is null) = (ends is null)),
    check (exception_kind = 'leave' or starts is not null)
);
create index duty_exception_user_idx on duty_exception (user_id, day);

alter table routing_rule add column pool_id bigint references reading_pool (id) on delete set null;
alter table reading_case add column reading_pool_id bigint
    references reading_pool (id) on delete set null;

-- Whether local time `t` falls within an exception of date `day` from `starts` to `ends`.
create function duty_exception_covers(day date, starts time, ends time, t timestamp)
returns boolean language sql immutable as $$
    select t >= day + coalesce(starts, time '00:00')
       and t < case
                   when ends is null then (day + 1) + time '00:00'
                   when ends > starts then day + ends
                   else (day + 1) + ends
               end
$$;

-- On duty at `p_at`: not on leave then, and within an extra shift or a weekly shift. A user
-- with neither weekly nor extra shifts is on duty whenever not on leave, so a network
-- without rosters routes as before.
create or replace function on_duty(p_user bigint, p_at timestamptz) returns boolean
language sql stable as $$
    with l as (
        select p_at at time zone coalesce((network_policy_of(u.facility_id)).timezone,
                                          'Asia/Shanghai') as t
        from app_user u where u.id = p_user
    )
    select not exists (
            select 1 from duty_exception e, l
            where e.user_id = p_user and e.exception_kind = 'leave'
              and duty_exception_covers(e.day, e.starts, e.ends, l.t))
       and (
            (not exists (select 1 from duty_shift d where d.user_id = p_user)
             and not exists (select 1 from duty_exception e
                             where e.user_id = p_user and e.exception_kind = 'extra'))
            or exists (
                select 1 from duty_exception e, l
                where e.user_id = p_user and e.exception_kind = 'extra'
                  and duty_exception_covers(e.day, e.starts, e.ends, l.t))
            or exists (
                select 1 from duty_shift d, l
                where d.user_id = p_user and (
                    (d.starts < d.ends
                        and extract(isodow from l.t)::int = any(d.weekdays)
                        and l.t::time >= d.starts and l.t::time < d.ends)
                    or (d.starts >= d.ends and (
                        (extract(isodow from l.t)::int = any(d.weekdays) and l.t::time >= d.starts)
                        or (extract(isodow from l.t - interval '1 day')::int = any(d.weekdays)
                            and l.t::time < d.ends))))))
$$;
