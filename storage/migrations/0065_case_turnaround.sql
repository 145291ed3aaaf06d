-- The administrator's dashboard reads one row per case: who sent it (facility and tier),
-- what it is (specialty, modality, priority), who signed its first final report, and the
-- server-clock times it went through (received, final, acknowledged, returned). The rows
-- are kept by statement-level triggers on reading_case and event, so a bulk insert costs
-- one statement, and filled here from the cases and events already recorded.

create table case_turnaround (
    case_id           bigint primary key references reading_case (id),
    study_id          bigint not null references study (id),
    facility_id       bigint not null references facility (id),
    tier              text not null,
    pool_facility_id  bigint not null references facility (id),
    specialty         text not null,
    modality          text not null,
    priority          text not null,
    received_at       timestamptz not null,
    created_at        timestamptz not null,
    deadline          timestamptz not null,
    final_at          timestamptz,
    reader_id         bigint references app_user (id),
    sla_met           boolean,
    acknowledged_at   timestamptz,
    returned_at       timestamptz,
    return_code       text,
    final_s           double precision
                      generated always as (extract(epoch from (final_at - received_at))::float8)
                      stored,
    ack_s             double precision
                      generated always as (extract(epoch from (acknowledged_at - final_at))::float8)
                      stored
);
create index case_turnaround_final_idx on case_turnaround (final_at) where final_at is not null;
create index case_turnaround_received_idx on case_turnaround (received_at);

-- New cases: one row each, received at the study's first 'received' event.
create function case_turnaround_add(p_cases bigint[]) returns void
language sql as $$
    insert into case_turnaround (case_id, study_id, facility_id, tier, pool_facility_id,
                                 specialty, modality, priority, received_at, created_at,
                                 deadline)
    select c.id, c.study_id, c.facility_id, f.tier, c.pool_facility_id, c.specialty,
           coalesce((select m from unnest(st.modalities) m
                     where m not in ('SR', 'PR', 'KO', 'DOC') order by m limit 1),
                    case c.specialty when 'ecg' then 'ECG' else '' end),
           c.priority,
           coalesce((select min(e.at) from event e
                     where e.study_id = c.study_id and e.kind = 'received'),
                    st.first_received_at),
           c.created_at, c.deadline
    from reading_case c
    join study st on st.id = c.study_id
    join facility f on f.id = c.facility_id
    join unnest(p_cases) as x(id) on x.id = c.id
    on conflict (case_id) do nothing
$$;

-- Events of cases: the first final report (its signer, and whether it met the deadline),
-- the first acknowledgement, the latest return to the clinic, and the priority now.
create function case_turnaround_apply(p_events bigint[]) returns void
language sql as $$
    update case_turnaround t set
        final_at = coalesce(t.final_at, a.final_at),
        reader_id = case when t.final_at is null then a.reader_id else t.reader_id end,
        sla_met = case when t.final_at is null and a.final_at is not null
                       then a.final_at <= c.deadline else t.sla_met end,
        pool_facility_id = c.pool_facility_id,
        priority = c.priority,
        deadline = case when t.final_at is null then c.deadline else t.deadline end,
        acknowledged_at = coalesce(t.acknowledged_at, a.ack_at),
        returned_at = coalesce(a.returned_at, t.returned_at),
        return_code = coalesce(c.return_code, t.return_code)
    from (
        select e.case_id,
               min(e.at) filter (where e.kind = 'final') as final_at,
               (array_agg(e.user_id order by e.at) filter (where e.kind = 'final'))[1]
                   as reader_id,
               min(e.at) filter (where e.kind = 'acknowledged') as ack_at,
               max(e.at) filter (where e.kind = 'returned') as returned_at
        from event e
        join unnest(p_events) as x(id) on x.id = e.id
        group by e.case_id
    ) a
    join reading_case c on c.id = a.case_id
    where t.case_id = a.case_id
$$;

create function case_turnaround_cases_added() returns trigger
language plpgsql as $$
begin
    perform case_turnaround_add(array(select id from added));
    return null;
end
$$;

create function case_turnaround_events_added() returns trigger
language plpgsql as $$
begin
    perform case_turnaround_apply(array(
        select id from added
        where case_id is not null
          and kind in ('final', 'acknowledged', 'returned', 'priority', 'escalated')));
    return null;
end
$$;

create trigger case_turnaround_cases after insert on reading_case
    referencing new table as added for each statement
    execute function case_turnaround_cases_added();
create trigger case_turnaround_events after insert on event
    referencing new table as added for each statement
    execute function case_turnaround_events_added();

select case_turnaround_add(array(select id from reading_case));
select case_turnaround_apply(array(
    select id from event
    where case_id is not null
      and kind in ('final', 'acknowledged', 'returned', 'priority', 'escalated')));

-- The cases of a network (the subtree of p_root) that the dashboard's filters keep; a null
-- filter keeps all. Inlined by the planner, so the caller's time range still uses the
-- indexes above.
create function dashboard_cases(
    p_root bigint, p_tier text, p_facility bigint, p_specialty text, p_modality text,
    p_priority text, p_reader bigint
) returns setof case_turnaround
language sql stable as $$
    select t.* from case_turnaround t
    where t.facility_id in (select facility_subtree(p_root))
      and (p_facility is null or t.facility_id in (select facility_subtree(p_facility)))
      and (p_tier is null or t.tier = p_tier)
      and (p_specialty is null or t.specialty = p_specialty)
      and (p_modality is null or t.modality = p_modality)
      and (p_priority is null or t.priority = p_priority)
      and (p_reader is null or t.reader_id = p_reader)
$$;
