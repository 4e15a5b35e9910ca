-- Passkeys (WebAuthn credentials). `credential` is webauthn-rs's own JSON for the credential:
-- its public key, sign counter and flags; nothing in it lets anyone sign in.
CREATE TABLE passkey (
    passkey_id    UUID PRIMARY KEY,
    account_id    UUID NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    credential_id BYTEA NOT NULL,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ,
    CONSTRAINT passkey_credential_id_key UNIQUE (credential_id)
);
CREATE INDEX passkey_account_idx ON passkey (account_id);

-- A WebAuthn ceremony waiting for the browser's answer: registration (for a signed-in
-- account), passwordless sign-in (no account yet), or the second factor of a log-in
-- (`login_challenge_id`). `state` is webauthn-rs's ceremony state, sealed. A ceremony is
-- deleted as it is answered, so it works once.
CREATE TABLE passkey_ceremony (
    passkey_ceremony_id UUID PRIMARY KEY,
    purpose             TEXT NOT NULL CHECK (purpose IN ('REGISTER', 'SIGN_IN', 'SECOND_FACTOR')),
    account_id          UUID REFERENCES account (account_id) ON DELETE CASCADE,
    login_challenge_id  UUID,
    state               BYTEA NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    expires_at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX passkey_ceremony_expiry_idx ON passkey_ceremony (expires_at);
