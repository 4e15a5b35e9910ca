-- Passkeys (WebAuthn credentials). `credential` is webauthn-rs's own JSON for the credential:
-- its public key, sign counter and flags; nothing in it lets anyone sign in.
CREATE TABLE passkey (
    passkey_id    BLOB PRIMARY KEY NOT NULL,
    account_id    BLOB NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    credential_id BLOB NOT NULL,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    CONSTRAINT passkey_credential_id_key UNIQUE (credential_id)
);
CREATE INDEX passkey_account_idx ON passkey (account_id);

-- A WebAuthn ceremony waiting for the browser's answer: registration (for a signed-in
-- account), passwordless sign-in (no account yet), or the second factor of a log-in
-- (`login_challenge_id`). `state` is webauthn-rs's ceremony state, sealed. A ceremony is
-- deleted as it is answered, so it works once.
CREATE TABLE passkey_ceremony (
    passkey_ceremony_id BLOB PRIMARY KEY NOT NULL,
    purpose             TEXT NOT NULL CHECK (purpose IN ('REGISTER', 'SIGN_IN', 'SECOND_FACTOR')),
    account_id          BLOB REFERENCES account (account_id) ON DELETE CASCADE,
    login_challenge_id  BLOB,
    state               BLOB NOT NULL,
    created_at          TEXT NOT NULL,
    expires_at          TEXT NOT NULL
);
CREATE INDEX passkey_ceremony_expiry_idx ON passkey_ceremony (expires_at);
