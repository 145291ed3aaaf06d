-- The reading workflow beyond claim and report: escalation with a question, return to the
-- clinic for poor quality, double reading, suspected STEMI, deadline handling; report
-- versions (addenda), the finalising reader's agreement, critical-result acknowledgement.

alter table study
    add column returned_at timestamptz,
    add column suspected_stemi boolean not null default false;

alter table reading_case
    add column first_pool_facility_id bigint references facility (id),
    add column question text,
    add column escalated_at timestamptz,
    add column escalated_by bigint references app_user (id),
    add column stemi boolean not null default false,
    add column second_read_of bigint references reading_case (id),
    add column return_code text,
    add column return_note text,
    -- the deadline the periodic job last acted on: each deadline is handled once
    add column deadline_handled timestamptz;
update reading_case set first_pool_facility_id = pool_facility_id;
alter table reading_case alter column first_pool_facility_id set not null;

-- One open first read and one open second read per study and specialty.
drop index reading_case_open_uniq;
create unique index reading_case_open_uniq on reading_case (study_id, specialty, (second_read_of is not null))
    where status in ('scheduled', 'in_progress');
create index reading_case_open_deadline_idx on reading_case (deadline)
    where status in ('scheduled', 'in_progress');

alter table report
    add column amends_report_id bigint references report (id),
    add column version integer not null default 1,
    add column agreed boolean,
    add column discrepancy text,
    add column pdf_key text,
    add column acknowledged_name text,
    add column critical_due_at timestamptz,
    add column critical_resends integer not null default 0,
    add column critical_alerted_at timestamptz;
create index report_critical_due_idx on report (critical_due_at)
    where critical_due_at is not null and acknowledged_at is null;

-- A reader sees the cases of the pool they read for now, and the cases their pool escalated
-- (so a county reader follows the case up to the city); clinics and administrators as in 0003.
create or replace function case_visible_to(p_user bigint, p_case bigint) returns boolean
language sql stable as $$
    select coalesce((
        select case u.role
            when 'clinic' then c.facility_id = u.facility_id
            when 'admin' then c.facility_id in (select facility_subtree(u.facility_id))
            when 'reader' then c.specialty = any(u.specialties)
                and (c.pool_facility_id = u.facility_id
                     or (c.escalated_at is not null
                         and c.first_pool_facility_id = u.facility_id))
            else false
        end
        from app_user u, reading_case c
        where u.id = p_user and c.id = p_case and u.active
    ), false)
$$;

-- Report templates per specialty and modality (zh-CN first), edited by administrators.
create table report_template (
    id          bigint generated always as identity primary key,
    specialty   text not null check (specialty in ('radiology', 'ecg')),
    modality    text,
    name        text not null,
    language    text not null default 'zh-CN',
    findings    text not null,
    impression  text not null,
    updated_by  bigint references app_user (id),
    updated_at  timestamptz not null default now()
);
create unique index report_template_uniq
    on report_template (specialty, coalesce(modality, ''), name, language);

insert into report_template (specialty, modality, name, findings, impression) values
('radiology', 'DX', '胸部正位片 正常',
 '胸廓对称，气管居中。双肺纹理清晰，未见明确实变及占位影。双肺门不大。心影大小、形态未见异常。双侧膈面光整，肋膈角锐利。',
 '胸部正位片未见明显异常。'),
('radiology', 'CR', '胸部正位片 正常',
 '胸廓对称，气管居中。双肺纹理清晰，未见明确实变及占位影。双肺门不大。心影大小、形态未见异常。双侧膈面光整，肋膈角锐利。',
 '胸部正位片未见明显异常。'),
('radiology', 'CT', '头颅CT平扫 正常',
 '脑实质内未见异常密度影，灰白质分界清楚。脑室系统大小、形态未见异常，中线结构居中。颅骨未见骨折。',
 '头颅CT平扫未见明显异常。'),
('radiology', 'US', '腹部超声 正常',
 '肝脏大小形态正常，实质回声均匀。胆囊壁光滑，腔内未见异常回声。胰、脾、双肾未见明显异常。',
 '腹部超声未见明显异常。'),
('ecg', 'ECG', '十二导联心电图 正常',
 '窦性心律，心率  次/分。PR间期  ms，QRS时限  ms，QT/QTc  /  ms。电轴正常。各导联ST段未见明显偏移，T波未见异常。',
 '窦性心律，正常心电图。'),
('ecg', 'ECG', '急性ST段抬高型心肌梗死',
 '窦性心律，心率  次/分。  导联ST段抬高  mm，对应导联ST段压低。',
 '急性ST段抬高型心肌梗死（危急值），请立即按胸痛中心流程处置。');
