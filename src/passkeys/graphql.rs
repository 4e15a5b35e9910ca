//! Passkeys over GraphQL: registering, naming, listing and removing them, and signing in
//! with one (passwordless, or as the second factor of a password log-in).

use async_graphql::{Context, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::PasskeyInfo;
use super::service::Ceremony;
use crate::error::{Error, Result};
use crate::graphql::context::ContextExt;
use crate::identity::graphql::{LogInPayload, User};
use crate::input::input_or_flat;

/// A registered passkey. Its key stays with the authenticator; the gateway keeps only the
/// public key and sign counter, and shows neither.
pub struct PasskeyNode(pub PasskeyInfo);

#[Object(name = "Passkey")]
impl PasskeyNode {
    async fn id(&self) -> ID {
        ID(self.0.passkey_id.to_string())
    }

    /// The holder's name for it ("Laptop", "Phone").
    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it last signed in or confirmed a log-in; null if never.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
}

/// A WebAuthn ceremony in progress. Give `options.publicKey` (binary fields are base64url)
/// to `navigator.credentials.create()` (registration) or `.get()` (sign-in), and send the
/// browser's answer back with `id` before `expiresAt`. A ceremony takes one answer.
#[derive(SimpleObject)]
pub struct PasskeyCeremony {
    pub id: ID,
    /// WebAuthn's `PublicKeyCredentialCreationOptions` or `…RequestOptions`, as JSON under
    /// `publicKey`: the challenge, the relying party (`rp` / `rpId`), the user, the algorithms.
    pub options: Json<serde_json::Value>,
    pub expires_at: DateTime<Utc>,
}

impl From<Ceremony> for PasskeyCeremony {
    fn from(c: Ceremony) -> Self {
        PasskeyCeremony { id: ID(c.id.to_string()), options: Json(c.options), expires_at: c.expires_at }
    }
}

fn parse_id(field: &'static str, id: &ID) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| Error::invalid(field, "not a valid id"))
}

/// The viewer's passkeys (`me.passkeys`), oldest first.
pub async fn passkeys(ctx: &Context<'_>, viewer: &crate::identity::service::Viewer) -> Result<Vec<PasskeyNode>> {
    Ok(ctx.services()?.passkeys.list(viewer).await?.into_iter().map(PasskeyNode).collect())
}

#[derive(Default)]
pub struct PasskeyMutation;

#[Object]
impl PasskeyMutation {
    /// Starts adding a passkey to the signed-in account (a session, not an access token).
    /// The passkey will be discoverable and verify its user (PIN or biometrics).
    async fn begin_passkey_registration(&self, ctx: &Context<'_>) -> Result<PasskeyCeremony> {
        let viewer = ctx.viewer().await?;
        Ok(ctx.services()?.passkeys.begin_registration(&viewer).await?.into())
    }

    /// Completes it with the browser's answer (`PublicKeyCredential.toJSON()`, or the same
    /// shape with base64url fields) and keeps the passkey under `name` (default "Passkey").
    async fn finish_passkey_registration(
        &self,
        ctx: &Context<'_>,
        input: Option<FinishPasskeyRegistrationInput>,
        #[graphql(deprecation = "pass it in `input`")] ceremony: Option<ID>,
        #[graphql(deprecation = "pass it in `input`")] credential: Option<Json<serde_json::Value>>,
        #[graphql(deprecation = "pass it in `input`")] name: Option<String>,
    ) -> Result<PasskeyNode> {
        let input = input_or_flat!(input, [ceremony, credential], [name] =>
            FinishPasskeyRegistrationInput { ceremony, credential, name });
        let viewer = ctx.viewer().await?;
        let ceremony = parse_id("ceremony", &input.ceremony)?;
        let passkeys = &ctx.services()?.passkeys;
        let info = passkeys.finish_registration(&viewer, ceremony, input.credential.0, input.name.as_deref()).await?;
        Ok(PasskeyNode(info))
    }

    async fn rename_passkey(
        &self,
        ctx: &Context<'_>,
        input: Option<RenamePasskeyInput>,
        #[graphql(deprecation = "pass it in `input`")] id: Option<ID>,
        #[graphql(deprecation = "pass it in `input`")] name: Option<String>,
    ) -> Result<PasskeyNode> {
        let input = input_or_flat!(input, [id, name] => RenamePasskeyInput { id, name });
        let viewer = ctx.viewer().await?;
        Ok(PasskeyNode(ctx.services()?.passkeys.rename(&viewer, parse_id("id", &input.id)?, &input.name).await?))
    }

    /// Removes a passkey; needs the password or a second-factor code (TOTP or recovery code).
    #[graphql(deprecation = "use deletePasskey")]
    async fn remove_passkey(&self, ctx: &Context<'_>, id: ID, password: Option<String>, code: Option<String>) -> Result<bool> {
        self.delete_passkey(ctx, DeletePasskeyInput { id, password, code }).await.map(|_| true)
    }

    /// Removes a passkey; needs the password or a second-factor code (TOTP or recovery code).
    /// The payload's `user` lists the passkeys left.
    async fn delete_passkey(&self, ctx: &Context<'_>, input: DeletePasskeyInput) -> Result<DeletePasskeyPayload> {
        let viewer = ctx.viewer().await?;
        let id = parse_id("id", &input.id)?;
        ctx.services()?.passkeys.remove(&viewer, id, input.password, input.code.as_deref()).await?;
        Ok(DeletePasskeyPayload { passkey_id: input.id, user: User(viewer.account) })
    }

    /// Starts a passkey sign-in. Without `challenge`: passwordless, with whichever passkey
    /// the browser holds for this site (it names the account). With the `challenge` of a
    /// `logIn` that asked for a second factor: one of that account's passkeys confirms it,
    /// instead of a TOTP code. Throttled per client address.
    async fn begin_passkey_log_in(
        &self,
        ctx: &Context<'_>,
        input: Option<BeginPasskeyLogInInput>,
        #[graphql(deprecation = "pass it in `input`")] challenge: Option<String>,
    ) -> Result<PasskeyCeremony> {
        let input = input_or_flat!(input, [], [challenge] => BeginPasskeyLogInInput { challenge });
        let meta = ctx.auth().map(|a| a.meta.clone()).unwrap_or_default();
        Ok(ctx.services()?.passkeys.begin_sign_in(input.challenge.as_deref(), &meta).await?.into())
    }

    /// Completes it with the browser's answer and opens a session. The passkey verified its
    /// user, so no further factor is asked for.
    async fn finish_passkey_log_in(
        &self,
        ctx: &Context<'_>,
        input: Option<FinishPasskeyLogInInput>,
        #[graphql(deprecation = "pass it in `input`")] ceremony: Option<ID>,
        #[graphql(deprecation = "pass it in `input`")] credential: Option<Json<serde_json::Value>>,
    ) -> Result<LogInPayload> {
        let input = input_or_flat!(input, [ceremony, credential] => FinishPasskeyLogInInput { ceremony, credential });
        let meta = ctx.auth().map(|a| a.meta.clone()).unwrap_or_default();
        let ceremony = parse_id("ceremony", &input.ceremony)?;
        let issued = ctx.services()?.passkeys.finish_sign_in(ceremony, input.credential.0, meta).await?;
        Ok(LogInPayload::signed_in(ctx, issued))
    }
}

#[derive(InputObject)]
pub struct FinishPasskeyRegistrationInput {
    /// `beginPasskeyRegistration`'s id.
    pub ceremony: ID,
    /// The browser's `PublicKeyCredential.toJSON()`.
    pub credential: Json<serde_json::Value>,
    /// Default "Passkey".
    pub name: Option<String>,
}

#[derive(InputObject)]
pub struct RenamePasskeyInput {
    pub id: ID,
    pub name: String,
}

#[derive(InputObject)]
pub struct DeletePasskeyInput {
    pub id: ID,
    /// Your password, or else `code`.
    pub password: Option<String>,
    /// A TOTP or recovery code, or else `password`.
    pub code: Option<String>,
}

#[derive(SimpleObject)]
pub struct DeletePasskeyPayload {
    /// The passkey removed.
    pub passkey_id: ID,
    /// You, with the passkeys left.
    pub user: User,
}

#[derive(InputObject)]
pub struct BeginPasskeyLogInInput {
    /// A `logIn`'s second-factor challenge; none for a passwordless sign-in.
    pub challenge: Option<String>,
}

#[derive(InputObject)]
pub struct FinishPasskeyLogInInput {
    /// `beginPasskeyLogIn`'s id.
    pub ceremony: ID,
    /// The browser's `PublicKeyCredential.toJSON()`.
    pub credential: Json<serde_json::Value>,
}
