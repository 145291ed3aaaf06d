-- "Arrived is not complete": while its sender's upload session is open (and the sender was
-- active within a day), a study waits for the commit, not for the stable age. The sweep's
-- stable-age branch asks this function; a commit (ready_at) completes the study regardless.
-- The day bounds what an abandoned session can hold back: then the stable age applies again.

create index upload_session_open_study_idx on upload_session (study_instance_uid)
    where state = 'open';

create function upload_holds_study(p_study_instance_uid text, p_facility_id bigint)
returns boolean
language sql stable
as $$
    select exists (
        select 1 from upload_session u
        where u.study_instance_uid = p_study_instance_uid
          and u.facility_id = p_facility_id
          and u.state = 'open'
          and u.updated_at > now() - interval '1 day')
$$;
