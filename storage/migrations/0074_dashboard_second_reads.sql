-- The dashboard's second-read discrepancy rates and escalations to the city.
--
-- A final report compared with an earlier read records that read: on an escalated case the
-- first reader's latest preliminary report, on a second read (double reading) the first
-- read's first final report. Its author is the first reader the discrepancy rate counts
-- against; the reports compared before this column existed take the latest preliminary
-- report signed before them, which is what they were compared with.

alter table report add column compared_report_id bigint references report (id);

update report r set compared_report_id = (
    select p.id from report p
    where p.case_id = r.case_id and p.status = 'preliminary' and p.id < r.id
    order by p.id desc limit 1)
where r.agreed is not null;

-- Each case's turnaround row keeps the pool that first had it (set when the case is made,
-- never changed: the pool an escalation went up from), and the period's escalated cases
-- are read by the time they went up from an index that carries what the table counts.
-- Of the cases made before, only the escalated ones (a few percent) take it: no other row
-- is read for it, and rewriting every row would leave each index of the table twice its
-- size.
alter table case_turnaround add column first_pool_facility_id bigint references facility (id);
update case_turnaround t set first_pool_facility_id = c.first_pool_facility_id
from reading_case c where c.id = t.case_id and t.escalated_at is not null;

create or replace function case_turnaround_add(p_cases bigint[]) returns void
language sql as $$
    insert into case_turnaround (case_id, study_id, facility_id, tier, pool_facility_id,
                                 first_pool_facility_id, specialty, modality, priority,
                                 received_at, created_at, deadline)
    select c.id, c.study_id, c.facility_id, f.tier, c.pool_facility_id,
           c.first_pool_facility_id, c.specialty,
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

create index case_turnaround_escalated_idx on case_turnaround (escalated_at)
    include (facility_id, tier, specialty, modality, priority, reader_id,
             first_pool_facility_id, final_at, sla_met)
    where escalated_at is not null;

-- Each case's row keeps whether its first final report agreed with the earlier read it was
-- compared with (null: not compared) and that read's author (or who escalated the case,
-- when it had no earlier report), set by the report's 'final' event, which is recorded
-- after the report in the same transaction. The period's compared cases are read by the
-- time of that report from an index of them alone.
alter table case_turnaround
    add column agreed boolean,
    add column first_reader_id bigint references app_user (id);

create function case_turnaround_compared(p_events bigint[]) returns void
language sql as $$
    update case_turnaround t set agreed = r.agreed,
           first_reader_id = coalesce(p.author_id, c.escalated_by)
    from event e
    join unnest(p_events) as x(id) on x.id = e.id
    join reading_case c on c.id = e.case_id
    cross join lateral (
        select f.agreed, f.compared_report_id from report f
        where f.case_id = e.case_id and f.status = 'final'
        order by f.id limit 1) r
    left join report p on p.id = r.compared_report_id
    where e.kind = 'final' and t.case_id = e.case_id and r.agreed is not null
$$;

create or replace function case_turnaround_events_added() returns trigger
language plpgsql as $$
declare
    v_steps bigint[];
    v_final bigint[];
begin
    perform case_turnaround_apply(array(
        select id from added
        where case_id is not null
          and kind in ('final', 'acknowledged', 'returned', 'priority', 'escalated')));
    v_steps := array(
        select id from added
        where kind in ('complete', 'routed', 'claimed', 'escalated', 'preliminary',
                       'delivered'));
    -- most inserts are an ingest statement's 'received' events: nothing to do for them
    if cardinality(v_steps) > 0 then
        perform case_turnaround_steps(v_steps);
    end if;
    v_final := array(select id from added where kind = 'final' and case_id is not null);
    if cardinality(v_final) > 0 then
        perform case_turnaround_compared(v_final);
    end if;
    return null;
end
$$;

select case_turnaround_compared(array(
    select e.id from event e join report r on r.case_id = e.case_id
    where e.kind = 'final' and r.agreed is not null));

create index case_turnaround_compared_idx on case_turnaround (final_at)
    include (facility_id, tier, specialty, modality, priority, reader_id, first_reader_id,
             agreed)
    where agreed is not null;
-- after commit: vacuum (analyze) case_turnaround
