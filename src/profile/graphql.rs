//! The profile over GraphQL: `updateProfile`, the login-email change, the photo upload, the
//! signature, and the languages and custom values a frontend offers.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject, Upload};

use super::model::{self, Phone, ProfileChanges};
use super::service::SignatureView;
use super::signature::CUSTOM_VALUES;
use crate::error::{Checks, Error, Reason, Result};
use crate::graphql::context::ContextExt;
use crate::i18n;
use crate::identity::graphql::User;
use crate::identity::model::{AccountId, PersonName};
use crate::input::input_or_flat;
use crate::tokens::model::Scope;

/// The fields to change; the others keep their value. `displayName`, `phone` and `jobTitle`
/// are cleared by null or an empty string.
#[derive(InputObject)]
pub struct UpdateProfileInput {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: MaybeUndefined<String>,
    /// Any notation people write phone numbers in; kept as entered.
    pub phone: MaybeUndefined<String>,
    /// How the user describes their role in the company.
    pub job_title: MaybeUndefined<String>,
    /// A BCP 47 tag; the nearest of `supportedLanguages` is chosen (`pl-PL` gives `pl`).
    pub language: Option<String>,
    /// The person's IANA time zone (`Europe/Warsaw`). Availability and the daily summary
    /// follow it, unless a zone of their own was set there.
    pub time_zone: Option<String>,
}

/// A cleared (null or empty) or a new value; `None` when the field was not sent.
fn clearable<T>(value: MaybeUndefined<String>, parse: impl FnOnce(&str) -> Result<Option<T>>) -> Result<Option<Option<T>>> {
    match value {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(v) => parse(&v).map(Some),
    }
}

impl TryFrom<UpdateProfileInput> for ProfileChanges {
    type Error = Error;
    /// Every refused field is reported at once.
    fn try_from(input: UpdateProfileInput) -> Result<ProfileChanges> {
        let mut checks = Checks::default();
        let changes = ProfileChanges {
            first_name: checks.take(input.first_name.map(|n| PersonName::parse("firstName", &n)).transpose()).flatten(),
            last_name: checks.take(input.last_name.map(|n| PersonName::parse("lastName", &n)).transpose()).flatten(),
            display_name: checks
                .take(clearable(input.display_name, |v| model::optional_text("displayName", v, model::DISPLAY_NAME_MAX)))
                .flatten(),
            phone: checks
                .take(clearable(input.phone, |v| if v.trim().is_empty() { Ok(None) } else { Phone::parse("phone", v).map(Some) }))
                .flatten(),
            job_title: checks.take(clearable(input.job_title, |v| model::optional_text("jobTitle", v, model::JOB_TITLE_MAX))).flatten(),
            language: checks
                .take(
                    input
                        .language
                        .map(|l| i18n::nearest(&l).ok_or_else(|| Error::because("language", Reason::UnsupportedLanguage)))
                        .transpose(),
                )
                .flatten(),
            time_zone: checks
                .take(input.time_zone.map(|z| crate::notifications::model::parse_time_zone("timeZone", &z)).transpose())
                .flatten(),
        };
        checks.finish()?;
        Ok(changes)
    }
}

/// A language Concierge writes emails in.
#[derive(SimpleObject)]
pub struct Language {
    /// BCP 47 tag, e.g. `pl`.
    pub tag: String,
    /// The language's name in itself, e.g. `Polski`.
    pub native_name: String,
}

/// A value an email signature can contain, written `{{name}}`.
#[derive(SimpleObject)]
pub struct SignatureCustomValue {
    /// e.g. `user.full_name`.
    pub name: String,
    /// What to type: `{{user.full_name}}`.
    pub placeholder: String,
    pub description: String,
}

/// An email signature.
#[derive(SimpleObject)]
pub struct Signature {
    /// The owner's user id, so a client cache updates `me.signature` from a mutation's
    /// answer; null on a preview, which is not stored.
    pub id: Option<ID>,
    /// Sanitised HTML as stored, custom values not rendered.
    pub html: String,
    /// With custom values rendered, as it is appended to messages.
    pub rendered: String,
    /// Plain-text version of `rendered`.
    pub text: String,
}

impl Signature {
    /// The stored signature of `owner`.
    pub fn of(owner: AccountId, v: SignatureView) -> Self {
        Signature { id: Some(ID(owner.to_string())), ..Self::preview(v) }
    }

    /// A signature rendered but not stored.
    pub fn preview(v: SignatureView) -> Self {
        Signature { id: None, html: v.html, rendered: v.rendered, text: v.text }
    }
}

/// A profile photo, served by the gateway in square renditions.
pub struct Photo {
    pub key: String,
}

#[Object]
impl Photo {
    /// The URL of the stored rendition nearest to `size` pixels (see `sizes`; `rendition`
    /// also says which it is). The URL changes with every upload, so it may be cached for good.
    async fn url(&self, ctx: &Context<'_>, #[graphql(default = 512)] size: i32) -> Result<String> {
        let size = super::photo::nearest_size(wanted_size(size)?);
        Ok(ctx.services()?.profile.photo_url(&self.key, size))
    }

    /// The stored rendition nearest to `size` pixels: its URL and its actual size, so an
    /// `<img>` can be given the right `width` and `height`.
    async fn rendition(&self, ctx: &Context<'_>, size: i32) -> Result<PhotoRendition> {
        let size = super::photo::nearest_size(wanted_size(size)?);
        Ok(PhotoRendition { url: ctx.services()?.profile.photo_url(&self.key, size), size })
    }

    /// The stored rendition sizes, in pixels.
    async fn sizes(&self) -> Vec<u32> {
        super::photo::SIZES.to_vec()
    }
}

/// One stored rendition of a photo.
#[derive(SimpleObject)]
pub struct PhotoRendition {
    pub url: String,
    /// Its width and height, in pixels (renditions are square).
    pub size: u32,
}

fn wanted_size(size: i32) -> Result<u32> {
    u32::try_from(size).ok().filter(|s| (1..=4096).contains(s)).ok_or_else(|| Error::invalid("size", "must be between 1 and 4096"))
}

/// Whether the login email was switched.
#[derive(SimpleObject)]
pub struct EmailChangeConfirmed {
    /// The new login email.
    pub email: String,
}

#[derive(Default)]
pub struct ProfileQuery;

#[Object]
impl ProfileQuery {
    /// The languages a user can choose, each with its own name.
    async fn supported_languages(&self) -> Vec<Language> {
        i18n::supported().into_iter().map(|l| Language { tag: l.tag, native_name: l.native_name }).collect()
    }

    /// The custom values a signature may contain, for the editor's picker.
    async fn signature_custom_values(&self) -> Vec<SignatureCustomValue> {
        CUSTOM_VALUES
            .iter()
            .map(|v| SignatureCustomValue {
                name: v.name.to_owned(),
                placeholder: format!("{{{{{}}}}}", v.name),
                description: v.description.to_owned(),
            })
            .collect()
    }

    /// Sanitises and renders a signature for the viewer without saving it.
    async fn preview_signature(&self, ctx: &Context<'_>, html: String) -> Result<Signature> {
        let viewer = ctx.viewer_for(Scope::ProfileRead).await?;
        Ok(Signature::preview(ctx.services()?.profile.preview_signature(&viewer, &html).await?))
    }
}

#[derive(Default)]
pub struct ProfileMutation;

#[Object]
impl ProfileMutation {
    /// Changes any of the viewer's personal data. Every field is checked first: a refused
    /// request changes nothing.
    async fn update_profile(&self, ctx: &Context<'_>, input: UpdateProfileInput) -> Result<User> {
        let viewer = ctx.viewer_for(Scope::ProfileWrite).await?;
        let changes = ProfileChanges::try_from(input)?;
        let zone_changed = changes.time_zone.is_some();
        let services = ctx.services()?;
        let account = services.profile.update(&viewer, changes).await?;
        if zone_changed {
            // The daily summary follows the new zone (unless it has one of its own).
            services.notifications.reschedule_summary(account.account_id).await?;
        }
        Ok(User(account))
    }

    /// Starts a login-email change: needs the current password, mails a link to the new address
    /// (and a notice to the current one). Nothing changes until `confirmEmailChange`.
    #[graphql(deprecation = "use startEmailChange")]
    async fn request_email_change(&self, ctx: &Context<'_>, new_email: String, password: String) -> Result<bool> {
        self.start_email_change(ctx, StartEmailChangeInput { new_email, password }).await.map(|_| true)
    }

    /// Starts a login-email change: needs the current password, mails a link to the new address
    /// (and a notice to the current one). Nothing changes until `confirmEmailChange`.
    async fn start_email_change(&self, ctx: &Context<'_>, input: StartEmailChangeInput) -> Result<StartEmailChangePayload> {
        let viewer = ctx.viewer().await?;
        ctx.services()?.profile.request_email_change(&viewer, &input.new_email, input.password).await?;
        Ok(StartEmailChangePayload { new_email: input.new_email.trim().to_owned(), user: User(viewer.account) })
    }

    /// Completes a login-email change with the token from the emailed link (single use, 24 hours).
    async fn confirm_email_change(
        &self,
        ctx: &Context<'_>,
        input: Option<ConfirmEmailChangeInput>,
        #[graphql(deprecation = "pass it in `input`")] token: Option<String>,
    ) -> Result<EmailChangeConfirmed> {
        let input = input_or_flat!(input, [token] => ConfirmEmailChangeInput { token });
        let meta = ctx.auth().map(|a| a.meta.clone()).unwrap_or_default();
        let account = ctx.services()?.profile.confirm_email_change(input.token.trim(), &meta).await?;
        Ok(EmailChangeConfirmed { email: account.email })
    }

    /// Sets the profile photo from a GraphQL multipart upload (PNG, JPEG, WebP or GIF).
    async fn upload_profile_photo(
        &self,
        ctx: &Context<'_>,
        input: Option<UploadProfilePhotoInput>,
        #[graphql(deprecation = "pass it in `input`")] file: Option<Upload>,
    ) -> Result<User> {
        let input = input_or_flat!(input, [file] => UploadProfilePhotoInput { file });
        let viewer = ctx.viewer_for(Scope::ProfileWrite).await?;
        let services = ctx.services()?;
        let upload = input.file.value(ctx).map_err(|_| Error::invalid("file", "no file was uploaded under this name"))?;
        let max = services.profile.photo_limits().max_bytes;
        let data = crate::transport::upload::read_limited(upload, max)
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("reading an upload: {e}")))?;
        Ok(User(services.profile.upload_photo(&viewer, data).await?))
    }

    /// Removes the profile photo and its files.
    async fn remove_profile_photo(&self, ctx: &Context<'_>) -> Result<User> {
        let viewer = ctx.viewer_for(Scope::ProfileWrite).await?;
        Ok(User(ctx.services()?.profile.remove_photo(&viewer).await?))
    }

    /// Stores the email signature: sanitised rich text whose custom values (`{{user.full_name}}`)
    /// are rendered when a message is sent.
    async fn update_signature(
        &self,
        ctx: &Context<'_>,
        input: Option<UpdateSignatureInput>,
        #[graphql(deprecation = "pass it in `input`")] html: Option<String>,
    ) -> Result<Signature> {
        let input = input_or_flat!(input, [html] => UpdateSignatureInput { html });
        let viewer = ctx.viewer_for(Scope::ProfileWrite).await?;
        let stored = ctx.services()?.profile.update_signature(&viewer, &input.html).await?;
        Ok(Signature::of(viewer.account_id(), stored))
    }
}

#[derive(InputObject)]
pub struct StartEmailChangeInput {
    pub new_email: String,
    /// Your current password.
    pub password: String,
}

#[derive(SimpleObject)]
pub struct StartEmailChangePayload {
    /// Where the confirmation link went.
    pub new_email: String,
    /// You, still with the current email until the link is followed.
    pub user: User,
}

#[derive(InputObject)]
pub struct ConfirmEmailChangeInput {
    /// From the emailed link.
    pub token: String,
}

#[derive(InputObject)]
pub struct UploadProfilePhotoInput {
    /// The image, as a GraphQL multipart upload.
    pub file: Upload,
}

#[derive(InputObject)]
pub struct UpdateSignatureInput {
    /// Rich text; it is sanitised, and custom values (`{{user.full_name}}`) are kept.
    pub html: String,
}
