-- The language each user reads the pages, PDFs and e-mails in: zh-CN by default, English
-- on their own switch.
alter table app_user
    add column language text not null default 'zh-CN' check (language in ('zh-CN', 'en'));
