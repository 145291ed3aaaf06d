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

-- The period's compared reports by the time they were signed (a few percent of them), with
-- what the dashboard reads of each.
create index report_compared_signed_idx on report (signed_at)
    include (case_id, agreed, compared_report_id)
    where agreed is not null;

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
-- after commit: vacuum (analyze) case_turnaround
