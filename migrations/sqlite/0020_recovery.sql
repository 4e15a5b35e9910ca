-- Account recovery and verified addresses.

-- When the login email was last proven to belong to the account holder (a verification link,
-- a password-reset link or an email change used). NULL: never. Accounts that predate this
-- migration start unverified, like new ones.
ALTER TABLE account ADD COLUMN email_verified_at TEXT;

-- A single-use link mailed to an account: a password reset or an address verification. Only
-- the SHA-256 of the token is kept. `email` is the address it was sent to: a verification
-- counts only while that is still the login email.
CREATE TABLE account_link (
    account_link_id BLOB PRIMARY KEY NOT NULL,
    account_id      BLOB NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    purpose         TEXT NOT NULL CHECK (purpose IN ('PASSWORD_RESET', 'VERIFY_EMAIL')),
    email           TEXT NOT NULL,
    token_hash      BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    used_at         TEXT,
    CONSTRAINT account_link_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX account_link_account_idx ON account_link (account_id, purpose);
