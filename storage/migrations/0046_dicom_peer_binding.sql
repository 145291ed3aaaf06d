-- DICOM peers prove who they are. A calling AE title may be bound to where it calls from
-- (peer_host: an IP address, a CIDR block or a host name) and to a TLS client certificate
-- (cert_sha256: the SHA-256 of its DER form, 64 lowercase hex digits). A title bound to a
-- certificate is refused without it; one bound to a host is refused from elsewhere.
alter table facility_ae
    add column peer_host text,
    add column cert_sha256 text check (cert_sha256 ~ '^[0-9a-f]{64}$');

-- A node's host (where C-MOVE sends) also binds it as a caller unless peer_host says more.
alter table dicom_node
    add column peer_host text,
    add column cert_sha256 text check (cert_sha256 ~ '^[0-9a-f]{64}$');

-- Report copies go to this workstation over DICOM TLS.
alter table report_destination add column tls boolean not null default false;
alter table dicom_send add column tls boolean not null default false;
