-- Password age and two-factor authentication (TOTP, RFC 6238).
-- The TOTP secrets are sealed with XChaCha20-Poly1305 (nonce || ciphertext) under the
-- gateway's secret key, bound to the account id; totp_last_step blocks a code's replay.
ALTER TABLE account ADD COLUMN password_changed_at TIMESTAMPTZ;
ALTER TABLE account ADD COLUMN totp_secret BYTEA;
ALTER TABLE account ADD COLUMN totp_pending_secret BYTEA;
ALTER TABLE account ADD COLUMN totp_enabled_at TIMESTAMPTZ;
ALTER TABLE account ADD COLUMN totp_last_step BIGINT;

-- Single-use recovery codes, stored as SHA-256 (each code carries 80 random bits).
CREATE TABLE recovery_code (
    recovery_code_id UUID PRIMARY KEY,
    account_id       UUID NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    code_hash        BYTEA NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    used_at          TIMESTAMPTZ
);
CREATE INDEX recovery_code_account_idx ON recovery_code (account_id);

-- A log-in that passed the password and waits for its second factor. Single use, short-lived,
-- and dropped after a few wrong codes.
CREATE TABLE login_challenge (
    login_challenge_id UUID PRIMARY KEY,
    account_id         UUID NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    token_hash         BYTEA NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    expires_at         TIMESTAMPTZ NOT NULL,
    used_at            TIMESTAMPTZ,
    attempts           INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT login_challenge_token_hash_key UNIQUE (token_hash)
);
