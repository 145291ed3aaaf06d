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

-- The period's compared reports by the time they were signed, and the period's escalated
-- cases by the time they went up: both are a few percent of the reports and cases.
create index report_compared_signed_idx on report (signed_at) where agreed is not null;
create index case_turnaround_escalated_idx on case_turnaround (escalated_at)
    where escalated_at is not null;
