//! Passkey rules: who may register, remove and use one, and what a ceremony proves.
//!
//! webauthn-rs does the verifying (challenge, origin, relying party id, signature, user
//! verification, sign counter); this keeps each ceremony's state sealed until its single
//! answer, and the credentials with their counters.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::instrument;
use url::Url;
use uuid::Uuid;
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Webauthn, WebauthnBuilder,
};
use webauthn_rs_proto::{ResidentKeyRequirement, UserVerificationPolicy};

use super::model::{self, CEREMONY_TTL, CeremonyRow, MAX_ANSWER_BYTES, MAX_PER_ACCOUNT, PasskeyInfo, Purpose, StoredPasskey};
use super::store::{self, NewCeremony, NewPasskey};
use crate::config::Config;
use crate::crypto::SecretBox;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::identity::model::{Account, AccountId};
use crate::identity::service::{ClientMeta, IdentityService, IssuedSession, Viewer};
use crate::security::log::{SecurityEventKind, SecurityLog};
use crate::security::service::SecurityService;
use crate::security::throttle::{AddressLimit, Throttle};

/// A ceremony for the browser: its id, to send back with the answer, and the options to give
/// `navigator.credentials.create()` or `.get()` (binary fields base64url-encoded).
pub struct Ceremony {
    pub id: Uuid,
    pub options: serde_json::Value,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct PasskeyService {
    db: Db,
    secrets: SecretBox,
    webauthn: Arc<Webauthn>,
    identity: IdentityService,
    security: SecurityService,
    log: SecurityLog,
    /// Failed passkey sign-ins, per account and per client address.
    throttle: Arc<Throttle>,
    /// Anonymous ceremonies started, per client address.
    starts: Arc<AddressLimit>,
}

/// The relying party the configuration describes: its id and the origins allowed to use it.
pub fn relying_party(config: &Config) -> anyhow::Result<Webauthn> {
    let public = Url::parse(&config.public_url())?;
    let loopback = match public.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    // Browsers refuse an IP address as a relying party id; a loopback gateway is `localhost`.
    let default_id = if loopback { "localhost".to_owned() } else { public.host_str().unwrap_or("localhost").to_owned() };
    let rp_id = config.webauthn_rp_id.clone().unwrap_or(default_id);
    let mut origins: Vec<Url> = Vec::new();
    for raw in &config.webauthn_origins {
        let url = Url::parse(raw.trim()).map_err(|e| anyhow::anyhow!("CONCIERGE_WEBAUTHN_ORIGINS: {raw:?}: {e}"))?;
        origins.push(url);
    }
    if origins.is_empty() {
        // Pages on a loopback gateway use passkeys from `localhost:<port>`.
        let mut origin = public.clone();
        if loopback {
            origin.set_host(Some("localhost"))?;
        }
        origins.push(origin);
    }
    let mut builder = WebauthnBuilder::new(&rp_id, &origins[0])
        .map_err(|e| anyhow::anyhow!("WebAuthn relying party {rp_id:?} with origin {}: {e}", origins[0]))?
        .rp_name("Concierge");
    for origin in &origins[1..] {
        builder = builder.append_allowed_origin(origin);
    }
    builder.build().map_err(|e| anyhow::anyhow!("WebAuthn relying party {rp_id:?}: {e}"))
}

impl PasskeyService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Db,
        secrets: SecretBox,
        webauthn: Webauthn,
        identity: IdentityService,
        security: SecurityService,
        log: SecurityLog,
        throttle: Arc<Throttle>,
        starts: Arc<AddressLimit>,
    ) -> Self {
        PasskeyService { db, secrets, webauthn: Arc::new(webauthn), identity, security, log, throttle, starts }
    }

    /// The viewer's passkeys, oldest first.
    pub async fn list(&self, viewer: &Viewer) -> Result<Vec<PasskeyInfo>> {
        viewer.require_session()?;
        Ok(store::list(&self.db, viewer.account_id()).await?)
    }

    /// Creation options for a new passkey of the signed-in viewer. The passkey must be
    /// discoverable (so it can sign in without an address) and verify the user.
    pub async fn begin_registration(&self, viewer: &Viewer) -> Result<Ceremony> {
        viewer.require_session()?;
        let account = &viewer.account;
        let existing = self.credentials_of(account.account_id).await?;
        room_for_one_more(existing.len())?;
        let exclude = existing.iter().map(|(_, k)| k.cred_id().clone()).collect();
        let (mut options, state) = self
            .webauthn
            .start_passkey_registration(account.account_id.0, &account.email, &account.shown_name(), Some(exclude))
            .map_err(|e| Error::Internal(anyhow::anyhow!("passkey registration options: {e}")))?;
        // A discoverable credential, so the passkey alone can sign in.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Required);
            selection.require_resident_key = true;
            selection.user_verification = UserVerificationPolicy::Required;
        }
        self.open_ceremony(Purpose::Register, Some(account.account_id), None, &state, &options).await
    }

    /// Checks the browser's answer to a registration and keeps the passkey.
    #[instrument(skip_all)]
    pub async fn finish_registration(
        &self,
        viewer: &Viewer,
        ceremony: Uuid,
        answer: serde_json::Value,
        name: Option<&str>,
    ) -> Result<PasskeyInfo> {
        viewer.require_session()?;
        let name = model::clean_name(name, "Passkey").map_err(|m| Error::invalid("name", m))?;
        let account_id = viewer.account_id();
        let row = store::take_registration(&self.db, ceremony, account_id, Utc::now()).await?.ok_or_else(unknown_ceremony)?;
        let state: PasskeyRegistration = self.open_state(&row)?;
        let answer: RegisterPublicKeyCredential = parse_answer(answer)?;
        let passkey = self.webauthn.finish_passkey_registration(&answer, &state).map_err(|e| refused(&e))?;
        room_for_one_more(store::list(&self.db, account_id).await?.len())?;
        let id = Uuid::now_v7();
        let now = Utc::now();
        let credential = serde_json::to_string(&passkey).map_err(anyhow::Error::new)?;
        let stored = store::insert_passkey(
            &self.db,
            &NewPasskey { id, account_id, credential_id: passkey.cred_id().as_ref(), name: &name, credential: &credential, now },
        )
        .await;
        match stored {
            Err(e) if store::CREDENTIAL_KEY.violated_by(&e) => {
                return Err(Error::conflict("credential", "this passkey is registered already"));
            }
            other => other?,
        }
        tracing::info!(account_id = %account_id, "passkey added");
        self.log.record(account_id, SecurityEventKind::PasskeyAdded, &viewer.meta, Some(&name)).await;
        Ok(PasskeyInfo { passkey_id: id, account_id, name, created_at: now, last_used_at: None })
    }

    pub async fn rename(&self, viewer: &Viewer, id: Uuid, name: &str) -> Result<PasskeyInfo> {
        viewer.require_session()?;
        let name = model::clean_name(Some(name), "Passkey").map_err(|m| Error::invalid("name", m))?;
        store::rename(&self.db, viewer.account_id(), id, &name).await?.ok_or(Error::NotFound("passkey"))
    }

    /// Removes a passkey, once the holder has given the password or a second-factor code.
    pub async fn remove(&self, viewer: &Viewer, id: Uuid, password: Option<String>, code: Option<&str>) -> Result<()> {
        let account_id = viewer.account_id();
        // A stranger's id is "not found" before any password is asked for.
        if !store::list(&self.db, account_id).await?.iter().any(|k| k.passkey_id == id) {
            return Err(Error::NotFound("passkey"));
        }
        self.security.confirm_password_or_code(viewer, password, code).await?;
        let name = store::delete(&self.db, account_id, id).await?.ok_or(Error::NotFound("passkey"))?;
        tracing::info!(account_id = %account_id, "passkey removed");
        self.log.record(account_id, SecurityEventKind::PasskeyRemoved, &viewer.meta, Some(&name)).await;
        Ok(())
    }

    /// Request options for a passkey sign-in. Without `challenge`: passwordless, the browser
    /// offers the passkeys it holds for this site. With a log-in's two-factor `challenge`:
    /// one of that account's passkeys, as the second factor.
    pub async fn begin_sign_in(&self, challenge: Option<&str>, meta: &ClientMeta) -> Result<Ceremony> {
        self.starts.attempt(meta.ip.as_deref()).await?;
        match challenge {
            None => {
                let (mut options, state) = self
                    .webauthn
                    .start_discoverable_authentication()
                    .map_err(|e| Error::Internal(anyhow::anyhow!("passkey sign-in options: {e}")))?;
                // Started by the user (a button), not by an autofill field.
                options.mediation = None;
                self.open_ceremony(Purpose::SignIn, None, None, &state, &options).await
            }
            Some(challenge) => {
                let invalid = || Error::invalid("challenge", "the log-in challenge is unknown, used or expired; log in again");
                let found = self.security.live_challenge(challenge).await?.ok_or_else(invalid)?;
                let keys: Vec<Passkey> = self.credentials_of(found.account_id).await?.into_iter().map(|(_, k)| k).collect();
                if keys.is_empty() {
                    return Err(Error::invalid("challenge", "this account has no passkey: give a code instead"));
                }
                let (options, state) = self
                    .webauthn
                    .start_passkey_authentication(&keys)
                    .map_err(|e| Error::Internal(anyhow::anyhow!("passkey options: {e}")))?;
                self.open_ceremony(Purpose::SecondFactor, Some(found.account_id), Some(found.login_challenge_id), &state, &options).await
            }
        }
    }

    /// Checks the browser's answer to a sign-in ceremony and opens a session.
    #[instrument(skip_all)]
    pub async fn finish_sign_in(&self, ceremony: Uuid, answer: serde_json::Value, meta: ClientMeta) -> Result<IssuedSession> {
        let row = store::take_ceremony(&self.db, ceremony, Utc::now()).await?.ok_or_else(unknown_ceremony)?;
        let answer: PublicKeyCredential = parse_answer(answer)?;
        let (account, passkey_id) = match (Purpose::from_row(&row), row.account_id, row.login_challenge_id) {
            (Some(Purpose::SignIn), _, _) => self.finish_passwordless(&row, &answer, &meta).await?,
            (Some(Purpose::SecondFactor), Some(account_id), Some(challenge_id)) => {
                let account = self.account(account_id).await?;
                let state: PasskeyAuthentication = self.open_state(&row)?;
                self.throttle.attempt(&account_id.to_string(), meta.ip.as_deref()).await?;
                let used = match self.webauthn.finish_passkey_authentication(&answer, &state) {
                    Ok(result) => match store::find_by_credential_id(&self.db, result.cred_id().as_ref()).await? {
                        Some(stored) if stored.account_id == account_id => {
                            Some(self.record_use(&stored, parse_stored(&stored)?, &result).await?)
                        }
                        _ => None,
                    },
                    Err(e) => {
                        tracing::debug!(error = %e, "passkey answer refused");
                        None
                    }
                };
                let Some(passkey_id) = used else {
                    crate::security::store::count_failed_attempt(&self.db, challenge_id).await?;
                    self.log.record(account_id, SecurityEventKind::SignInFailed, &meta, Some("passkey refused")).await;
                    return Err(Error::invalid("credential", "the passkey was not accepted"));
                };
                if !crate::security::store::use_challenge(&self.db, challenge_id, Utc::now()).await? {
                    return Err(Error::invalid("challenge", "the log-in challenge is unknown, used or expired; log in again"));
                }
                (account, passkey_id)
            }
            _ => return Err(unknown_ceremony()),
        };
        tracing::info!(account_id = %account.account_id, passkey_id = %passkey_id, "signed in with a passkey");
        self.identity.issue_session(account, meta).await
    }

    /// A discoverable credential: the answer names the account (its user handle) and the
    /// credential; both must match a stored passkey before its signature is checked.
    async fn finish_passwordless(&self, row: &CeremonyRow, answer: &PublicKeyCredential, meta: &ClientMeta) -> Result<(Account, Uuid)> {
        let refused_answer = || Error::invalid("credential", "the passkey was not accepted");
        let state: DiscoverableAuthentication = self.open_state(row)?;
        let (user, credential_id) = self.webauthn.identify_discoverable_authentication(answer).map_err(|e| refused(&e))?;
        let stored = store::find_by_credential_id(&self.db, credential_id).await?.ok_or_else(refused_answer)?;
        if stored.account_id.0 != user {
            return Err(refused_answer());
        }
        self.throttle.attempt(&stored.account_id.to_string(), meta.ip.as_deref()).await?;
        let passkey = parse_stored(&stored)?;
        let result = match self.webauthn.finish_discoverable_authentication_v2(answer, state, &passkey) {
            Ok(result) => result,
            Err(e) => {
                self.log.record(stored.account_id, SecurityEventKind::SignInFailed, meta, Some("passkey refused")).await;
                return Err(refused(&e));
            }
        };
        let account = self.account(stored.account_id).await?;
        self.identity.admit(&account)?;
        let passkey_id = self.record_use(&stored, passkey, &result).await?;
        Ok((account, passkey_id))
    }

    /// Keeps the new sign counter of the passkey an authentication used, and when; its id.
    async fn record_use(&self, stored: &StoredPasskey, mut passkey: Passkey, result: &AuthenticationResult) -> Result<Uuid> {
        passkey.update_credential(result);
        let credential = serde_json::to_string(&passkey).map_err(anyhow::Error::new)?;
        store::record_use(&self.db, stored.passkey_id, &credential, Utc::now()).await?;
        Ok(stored.passkey_id)
    }

    async fn account(&self, id: AccountId) -> Result<Account> {
        self.identity.accounts(&[id]).await?.pop().ok_or_else(|| Error::invalid("credential", "the passkey was not accepted"))
    }

    async fn credentials_of(&self, account_id: AccountId) -> Result<Vec<(Uuid, Passkey)>> {
        store::credentials_of(&self.db, account_id).await?.iter().map(|s| Ok((s.passkey_id, parse_stored(s)?))).collect()
    }

    async fn open_ceremony<S: Serialize, O: Serialize>(
        &self,
        purpose: Purpose,
        account_id: Option<AccountId>,
        login_challenge_id: Option<Uuid>,
        state: &S,
        options: &O,
    ) -> Result<Ceremony> {
        let id = Uuid::now_v7();
        let now = Utc::now();
        let expires_at = now + CEREMONY_TTL;
        let plain = serde_json::to_vec(state).map_err(anyhow::Error::new)?;
        let sealed = self.secrets.seal(&plain, &bound(id))?;
        let row = NewCeremony { id, purpose, account_id, login_challenge_id, state: &sealed, now, expires_at };
        store::insert_ceremony(&self.db, &row).await?;
        let options = serde_json::to_value(options).map_err(anyhow::Error::new)?;
        Ok(Ceremony { id, options, expires_at })
    }

    fn open_state<T: DeserializeOwned>(&self, row: &CeremonyRow) -> Result<T> {
        let plain = self.secrets.open(&row.state, &bound(row.passkey_ceremony_id))?;
        Ok(serde_json::from_slice(&plain).map_err(anyhow::Error::new)?)
    }
}

impl Purpose {
    fn from_row(row: &CeremonyRow) -> Option<Purpose> {
        [Purpose::Register, Purpose::SignIn, Purpose::SecondFactor].into_iter().find(|p| p.as_str() == row.purpose)
    }
}

/// Refuses a new passkey to an account that holds the most it may.
fn room_for_one_more(held: usize) -> Result<()> {
    if held >= MAX_PER_ACCOUNT {
        return Err(Error::conflict("passkeys", format!("an account holds at most {MAX_PER_ACCOUNT} passkeys: remove one first")));
    }
    Ok(())
}

/// What a sealed ceremony state is bound to.
pub fn bound(id: Uuid) -> Vec<u8> {
    format!("passkey-ceremony:{id}").into_bytes()
}

fn unknown_ceremony() -> Error {
    Error::invalid("ceremony", "the passkey ceremony is unknown, used or expired; start again")
}

/// The one answer for a refused passkey, whatever webauthn-rs found (logged at debug).
fn refused(e: &webauthn_rs::prelude::WebauthnError) -> Error {
    tracing::debug!(error = %e, "passkey answer refused");
    Error::invalid("credential", "the passkey was not accepted")
}

/// The browser's answer, as webauthn-rs reads it; a bounded size, and a typed error for any
/// other shape.
fn parse_answer<T: DeserializeOwned>(answer: serde_json::Value) -> Result<T> {
    let size = serde_json::to_vec(&answer).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_ANSWER_BYTES {
        return Err(Error::invalid("credential", "the answer is too large"));
    }
    serde_json::from_value(answer)
        .map_err(|e| Error::invalid("credential", format!("not a WebAuthn credential as the browser gives it: {e}")))
}

fn parse_stored(stored: &StoredPasskey) -> Result<Passkey> {
    serde_json::from_str(&stored.credential).map_err(|e| Error::Internal(anyhow::anyhow!("stored passkey {}: {e}", stored.passkey_id)))
}
