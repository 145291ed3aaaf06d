-- A referral is also seen by whoever raised it: a county reader who refers a village patient
-- up to the city works at neither end of the referral, and follows it all the same.
create or replace function referral_visible_to(p_user bigint, p_referral bigint) returns boolean
language sql stable as $$
    select coalesce((
        select u.facility_id in (r.from_facility_id, r.to_facility_id)
            or r.created_by = u.id
            or (u.role = 'admin' and (
                r.from_facility_id in (select facility_subtree(u.facility_id))
                or r.to_facility_id in (select facility_subtree(u.facility_id))))
        from app_user u, referral r
        where u.id = p_user and r.id = p_referral and u.active
    ), false)
$$;
