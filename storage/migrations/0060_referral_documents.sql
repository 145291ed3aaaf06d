-- Two-way referral with its documents: the referral form (转诊单) raised by a clinic for a
-- patient of its own (with or without a reading case) and the results attached to it; the
-- receiving hospital's answer (接诊单: department, doctor, green channel); the arrival (到诊);
-- the return down to the referring clinic (转回单). Each attached study or report is seen by
-- the receiving facility's users while the referral is not declined.

alter table referral
    add column preliminary_diagnosis  text,
    add column history                text,
    add column findings               text,
    add column department             text,
    add column doctor                 text,
    add column green_channel          boolean not null default false,
    add column arrived_at             timestamptz,
    add column arrived_by             bigint references app_user (id),
    add column return_kind            text check (return_kind in ('outpatient', 'discharge')),
    add column return_diagnosis       text,
    add column return_orders          text,
    add column return_follow_up       text,
    add column returned_at            timestamptz,
    add column returned_by            bigint references app_user (id);

alter table referral drop constraint referral_status_check;
alter table referral add constraint referral_status_check
    check (status in ('requested', 'accepted', 'declined', 'arrived', 'returned'));
alter table referral add constraint referral_arrival_check
    check ((status in ('arrived', 'returned')) = (arrived_at is not null));
alter table referral add constraint referral_return_check
    check ((status = 'returned') = (returned_at is not null and return_kind is not null
                                     and return_diagnosis is not null
                                     and return_follow_up is not null));

-- A result attached to a referral form: a study (images or an ECG) or a report.
create table referral_attachment (
    id           bigint generated always as identity primary key,
    referral_id  bigint not null references referral (id) on delete cascade,
    study_id     bigint references study (id),
    report_id    bigint references report (id),
    check ((study_id is null) <> (report_id is null)),
    unique (referral_id, study_id),
    unique (referral_id, report_id)
);
create index referral_attachment_study_idx on referral_attachment (study_id)
    where study_id is not null;
create index referral_attachment_report_idx on referral_attachment (report_id)
    where report_id is not null;
create index referral_month_idx on referral (created_at);

-- Whether a study or report is attached to a referral the user's facility receives (and has
-- not declined).
create function attachment_granted(p_user bigint, p_study bigint, p_report bigint)
returns boolean
language sql stable as $$
    select exists (
        select 1 from referral_attachment a
        join referral r on r.id = a.referral_id
        join app_user u on u.id = p_user and u.active and u.facility_id = r.to_facility_id
        where r.status <> 'declined'
          and (a.study_id = p_study or a.report_id = p_report))
$$;

-- As in 0023, and a study attached to a referral the user's facility receives.
create or replace function study_visible_to(p_user bigint, p_study bigint) returns boolean
language sql stable as $$
    select coalesce((
        select case u.role
            when 'clinic' then s.facility_id = u.facility_id
            when 'admin' then s.facility_id in (select facility_subtree(u.facility_id))
            when 'reader' then exists (
                select 1 from study s2 join reading_case c on c.study_id = s2.id
                where s2.patient_ref in (select linked_patients(s.patient_ref))
                  and case_visible_to(p_user, c.id))
            else false
        end or attachment_granted(p_user, s.id, null)
        from app_user u, study s
        where u.id = p_user and s.id = p_study and u.active
    ), false)
$$;

-- As in 0055, and a report attached to a referral the user's facility receives.
create or replace function report_visible_to(p_user bigint, p_report bigint) returns boolean
language sql stable as $$
    select coalesce((
        select (case u.role
            when 'clinic' then r.status = 'final' and r.delivered_at is not null
            else true
        end and case_visible_to(p_user, r.case_id)) or attachment_granted(p_user, null, r.id)
        from app_user u, report r
        where u.id = p_user and r.id = p_report and u.active
    ), false)
$$;
