-- Open DICOM associations across processes (see migration 0044).

-- name: association_lock
-- Serialises the count and the insert of one facility's associations.
select pg_advisory_xact_lock(hashtextextended('dicom_association:' || $1, 0));

-- name: association_count
-- Associations of facility $1 still fresh (seen within $2 seconds).
select count(*) from dicom_association
where facility = $1 and seen_at > now() - make_interval(secs => $2);

-- name: association_open
insert into dicom_association (facility, holder) values ($1, $2) returning id;

-- name: association_close
delete from dicom_association where id = $1;

-- name: association_keep
-- The holder's associations are still open; and the stale ones of any holder are gone.
with kept as (
    update dicom_association set seen_at = now() where holder = $1
)
delete from dicom_association where seen_at < now() - make_interval(secs => $2);

-- name: association_forget
-- A stopping holder's associations.
delete from dicom_association where holder = $1;

-- name: association_counts
select facility, count(*) as open from dicom_association
where seen_at > now() - make_interval(secs => $1)
group by facility order by facility;
