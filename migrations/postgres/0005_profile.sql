-- Profile: personal data beyond the name, the language emails are written in, the photo (a
-- blob-store key prefix) and the email signature (sanitised HTML, custom values unrendered).
ALTER TABLE account ADD COLUMN display_name TEXT;
ALTER TABLE account ADD COLUMN phone TEXT;
ALTER TABLE account ADD COLUMN phone_e164 TEXT;
ALTER TABLE account ADD COLUMN job_title TEXT;
ALTER TABLE account ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
ALTER TABLE account ADD COLUMN photo_key TEXT;
ALTER TABLE account ADD COLUMN signature_html TEXT NOT NULL DEFAULT '';

-- A pending login-email change: the link's token is stored as SHA-256, used once, expires.
CREATE TABLE email_change (
    email_change_id UUID PRIMARY KEY,
    account_id      UUID NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    new_email       TEXT NOT NULL,
    token_hash      BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    used_at         TIMESTAMPTZ,
    CONSTRAINT email_change_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX email_change_account_idx ON email_change (account_id);
