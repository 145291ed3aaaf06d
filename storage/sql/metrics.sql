-- Network-wide gauges for /metrics: counts only, never patient data. Labels are facility
-- codes, specialties, states and priorities.

-- name: metrics_open_cases
select f.code as pool, c.specialty, c.status, c.priority,
       count(*) as cases,
       count(*) filter (where c.deadline < now()) as overdue
from reading_case c
join facility f on f.id = c.pool_facility_id
where c.status in ('scheduled', 'in_progress')
group by f.code, c.specialty, c.status, c.priority

-- name: metrics_reports
select f.code as facility, r.conclusion,
       count(*) filter (where r.status = 'final' and r.acknowledged_at is null) as unacknowledged
from report r
join reading_case c on c.id = r.case_id
join facility f on f.id = c.facility_id
where r.status = 'final' and r.acknowledged_at is null
group by f.code, r.conclusion

-- name: metrics_dicom_sends
select status, count(*) as sends from dicom_send group by status

-- name: metrics_totals
select (select count(*) from study) as studies,
       (select count(*) from instance) as instances,
       (select coalesce(sum(size_bytes), 0) from instance) as instance_bytes,
       (select count(*) from ingest_rejection) as rejections
