-- name: intake_reserve
-- $1 facility, $2 bytes, $3 default bytes per day, $4 default instances per day (0: no limit).
-- One row back (the day reserved on) when the instance fits the facility's limits, none when
-- it does not; the counters move only when it fits. The counters commit without waiting for
-- the disk (synchronous_commit off, this statement only): the instance's own index commit,
-- which waits, writes them durably before it, and a count lost to a crash belongs to an
-- instance that was never acknowledged.
with limits as (
    select coalesce(q.bytes_per_day, $3::bigint) as max_bytes,
           coalesce(q.instances_per_day, $4::integer) as max_instances,
           set_config('synchronous_commit', 'off', true) as unwaited
    from (select $1::bigint as facility_id) f
    left join facility_quota q on q.facility_id = f.facility_id
)
insert into facility_intake as i (facility_id, day, bytes, instances)
select $1, (now() at time zone 'utc')::date, $2, 1
from limits
where (max_bytes = 0 or $2 <= max_bytes) and (max_instances = 0 or 1 <= max_instances)
on conflict (facility_id, day) do update
    set bytes = i.bytes + excluded.bytes, instances = i.instances + 1
    where ((select max_bytes from limits) = 0
           or i.bytes + excluded.bytes <= (select max_bytes from limits))
      and ((select max_instances from limits) = 0
           or i.instances + 1 <= (select max_instances from limits))
returning day;

-- name: intake_release
-- Committed without waiting for the disk, as intake_reserve's count.
update facility_intake
set bytes = greatest(0, bytes - $3), instances = greatest(0, instances - 1)
where facility_id = $1 and day = $2
  and set_config('synchronous_commit', 'off', true) is not null;

-- name: intake_today
select coalesce(i.bytes, 0) as bytes, coalesce(i.instances, 0) as instances,
       q.bytes_per_day, q.instances_per_day
from (select $1::bigint as facility_id) f
left join facility_intake i
    on i.facility_id = f.facility_id and i.day = (now() at time zone 'utc')::date
left join facility_quota q on q.facility_id = f.facility_id;

-- name: quota_set
insert into facility_quota (facility_id, bytes_per_day, instances_per_day)
values ($1, $2, $3)
on conflict (facility_id) do update
    set bytes_per_day = excluded.bytes_per_day,
        instances_per_day = excluded.instances_per_day,
        updated_at = now();

-- name: intake_known_instance
select exists (select 1 from instance where sop_instance_uid = $1);
