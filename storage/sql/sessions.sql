-- name: session_revoke
-- Signing out of the browser revokes the session's token (stored, like every token, as SHA-256).
update api_token set revoked_at = now() where token_sha256 = $1 and revoked_at is null;
