-- Exam orders (检查申请) a clinic registers before the exam, offered to its modalities as the
-- DICOM Modality Worklist; the modalities' performed procedure steps (MPPS) and storage
-- commitment requests, which tell when a study is whole.

-- The accession numbers a facility has handed out, by day: the next is one more.
create table order_counter (
    facility_id bigint not null references facility(id) on delete cascade,
    day         date   not null,
    last_number integer not null,
    primary key (facility_id, day)
);

create table exam_order (
    id                       bigserial primary key,
    facility_id              bigint not null references facility(id) on delete cascade,
    accession_number         text not null,
    requested_procedure_id   text not null,
    sps_id                   text not null,
    patient_id               text not null,
    patient_name             text not null,
    patient_sex              text check (patient_sex in ('M', 'F', 'O')),
    patient_birth_date       date,
    modality                 text not null,
    station_ae               text,
    procedure_description    text,
    urgency                  text not null check (urgency in ('routine', 'urgent')),
    clinical_question        text,
    history                  text,
    scheduled_date           date not null,
    scheduled_time           time,
    status                   text not null default 'scheduled'
        check (status in ('scheduled', 'in_progress', 'completed', 'discontinued', 'canceled')),
    study_instance_uid       text not null,
    study_id                 bigint references study(id) on delete set null,
    created_by               bigint references app_user(id) on delete set null,
    created_at               timestamptz not null default now(),
    updated_at               timestamptz not null default now(),
    unique (facility_id, accession_number)
);
create index exam_order_open_idx on exam_order (facility_id, scheduled_date)
    where status in ('scheduled', 'in_progress');
create index exam_order_study_uid_idx on exam_order (study_instance_uid);

-- A modality's performed procedure step (N-CREATE, then N-SET), keyed by its SOP Instance
-- UID; the instances its COMPLETED step names; when the study was found whole.
create table performed_step (
    sop_instance_uid     text primary key,
    facility_id          bigint not null references facility(id) on delete cascade,
    calling_ae           text not null,
    status               text not null
        check (status in ('in_progress', 'completed', 'discontinued')),
    study_instance_uid   text,
    order_id             bigint references exam_order(id) on delete set null,
    referenced_sops      text[] not null default '{}',
    reason_code          text,
    reason_meaning       text,
    ready_at             timestamptz,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now()
);
create index performed_step_waiting_idx on performed_step (study_instance_uid)
    where status = 'completed' and ready_at is null;
create index performed_step_study_idx on performed_step (study_instance_uid);
