//! Contacts over GraphQL: search and read them with their activity, create, edit, merge.

use async_graphql::connection::{Connection, Edge, OpaqueCursor};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{Contact, ContactId, ContactMatching};
use super::service::ContactInput;
use crate::activity::graphql::{ActivityConnection, ThreadConnection, activity_page, contact_threads_page};
use crate::activity::model::ActivityType;
use crate::activity::store::Feed;
use crate::error::Result;
use crate::graphql::context::ContextExt;
use crate::graphql::loaders::unshare;
use crate::graphql::paging::page_args;
use crate::input::input_or_flat;
use crate::tokens::model::Scope;
use crate::workspace::model::WorkspaceId;

/// A person the workspace talks to.
pub struct ContactNode(pub Contact);

pub type ContactConnection = Connection<OpaqueCursor<Uuid>, ContactNode>;

#[Object(name = "Contact")]
impl ContactNode {
    async fn id(&self) -> ID {
        ID(self.0.contact_id.0.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Its email addresses, the first being the main one.
    async fn emails(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(ctx.loaders()?.contact_emails.load_one(self.0.contact_id).await.map_err(unshare)?.unwrap_or_default())
    }

    async fn workspace_id(&self) -> ID {
        ID(self.0.workspace_id.0.to_string())
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// What happened with this contact, newest first; `types` narrows it to some kinds.
    async fn activity(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        types: Option<Vec<ActivityType>>,
    ) -> Result<ActivityConnection> {
        ctx.viewer_for(Scope::ActivityRead).await?;
        // Reaching this node already proved membership of the contact's workspace.
        activity_page(ctx, Feed::Contact(self.0.contact_id), first, after, types.unwrap_or_default()).await
    }

    /// The conversations this contact takes part in, most recently active first.
    async fn threads(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>) -> Result<ThreadConnection> {
        ctx.viewer_for(Scope::ActivityRead).await?;
        // Reaching this node already proved membership of the contact's workspace.
        contact_threads_page(ctx, self.0.contact_id, first, after).await
    }
}

#[derive(InputObject)]
pub struct CreateContactInput {
    pub workspace_id: ID,
    pub name: Option<String>,
    #[graphql(default)]
    pub emails: Vec<String>,
}

#[derive(InputObject)]
pub struct UpdateContactInput {
    /// The contact (required; the flat `id` argument is deprecated).
    pub id: Option<ID>,
    pub name: Option<String>,
    /// Replaces the addresses.
    pub emails: Option<Vec<String>>,
}

#[derive(Default)]
pub struct ContactQuery;

#[Object]
impl ContactQuery {
    /// A workspace's contacts, oldest first; `search` matches names and addresses.
    /// `workspaceId` may be left out when you belong to one workspace.
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<ContactConnection> {
        let viewer = ctx.viewer_for(Scope::ActivityRead).await?;
        let (first, after) = page_args(first, after)?;
        let services = ctx.services()?;
        let workspace_id = match workspace_id {
            Some(w) => WorkspaceId::parse("workspaceId", &w)?,
            None => services.workspaces.only_workspace(&viewer).await?,
        };
        let (rows, more) = services.contacts.page(&viewer, workspace_id, search.as_deref(), after.map(ContactId), first).await?;
        let mut connection = Connection::new(after.is_some(), more);
        connection.edges.extend(rows.into_iter().map(|c| Edge::new(OpaqueCursor(c.contact_id.0), ContactNode(c))));
        Ok(connection)
    }

    /// Whether mail from unknown senders creates contacts in a workspace you belong to.
    async fn contact_matching(&self, ctx: &Context<'_>, workspace_id: ID) -> Result<ContactMatchingSetting> {
        let viewer = ctx.viewer_for(Scope::ActivityRead).await?;
        let id = WorkspaceId::parse("workspaceId", &workspace_id)?;
        let matching = ctx.services()?.contacts.matching(&viewer, id).await?;
        Ok(ContactMatchingSetting { id: workspace_id, matching })
    }

    /// A contact of a workspace you belong to.
    async fn contact(&self, ctx: &Context<'_>, id: ID) -> Result<ContactNode> {
        let viewer = ctx.viewer_for(Scope::ActivityRead).await?;
        let id = ContactId::parse("id", &id)?;
        Ok(ContactNode(ctx.services()?.contacts.contact(&viewer, id).await?))
    }
}

#[derive(Default)]
pub struct ContactMutation;

#[Object]
impl ContactMutation {
    async fn create_contact(&self, ctx: &Context<'_>, input: CreateContactInput) -> Result<ContactNode> {
        let viewer = ctx.viewer_for(Scope::ContactsWrite).await?;
        let workspace_id = WorkspaceId::parse("workspaceId", &input.workspace_id)?;
        let c =
            ctx.services()?.contacts.create(&viewer, workspace_id, ContactInput { name: input.name, emails: Some(input.emails) }).await?;
        Ok(ContactNode(c))
    }

    async fn update_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(deprecation = "pass it in `input`")] id: Option<ID>,
        input: UpdateContactInput,
    ) -> Result<ContactNode> {
        let id = ContactId::parse("id", &crate::input::id_in_or_beside(id, input.id.clone())?)?;
        let viewer = ctx.viewer_for(Scope::ContactsWrite).await?;
        let c = ctx.services()?.contacts.update(&viewer, id, ContactInput { name: input.name, emails: input.emails }).await?;
        Ok(ContactNode(c))
    }

    /// Folds the source contacts into the target: their addresses and activity move to it.
    async fn merge_contacts(
        &self,
        ctx: &Context<'_>,
        input: Option<MergeContactsInput>,
        #[graphql(deprecation = "pass it in `input`")] target_id: Option<ID>,
        #[graphql(deprecation = "pass it in `input`")] source_ids: Option<Vec<ID>>,
    ) -> Result<ContactNode> {
        let input = input_or_flat!(input, [target_id, source_ids] => MergeContactsInput { target_id, source_ids });
        let viewer = ctx.viewer_for(Scope::ContactsWrite).await?;
        let target = ContactId::parse("targetId", &input.target_id)?;
        let sources = input.source_ids.iter().map(|s| ContactId::parse("sourceIds", s)).collect::<Result<Vec<_>>>()?;
        Ok(ContactNode(ctx.services()?.contacts.merge(&viewer, target, &sources).await?))
    }

    /// Whether mail from unknown senders creates contacts (needs MANAGE_WORKSPACE).
    #[graphql(deprecation = "use updateContactMatching, which answers with the setting")]
    async fn set_contact_matching(&self, ctx: &Context<'_>, workspace_id: ID, matching: ContactMatching) -> Result<ContactMatching> {
        Ok(self.update_contact_matching(ctx, ContactMatchingInput { workspace_id, matching }).await?.matching)
    }

    /// Whether mail from unknown senders creates contacts (needs MANAGE_WORKSPACE).
    async fn update_contact_matching(&self, ctx: &Context<'_>, input: ContactMatchingInput) -> Result<ContactMatchingSetting> {
        let viewer = ctx.viewer_for(Scope::WorkspacesWrite).await?;
        let workspace_id = WorkspaceId::parse("workspaceId", &input.workspace_id)?;
        ctx.services()?.contacts.set_matching(&viewer, workspace_id, input.matching).await?;
        Ok(ContactMatchingSetting { id: input.workspace_id, matching: input.matching })
    }
}

#[derive(InputObject)]
pub struct MergeContactsInput {
    /// The contact that stays.
    pub target_id: ID,
    /// The contacts folded into it.
    pub source_ids: Vec<ID>,
}

#[derive(InputObject)]
pub struct ContactMatchingInput {
    pub workspace_id: ID,
    pub matching: ContactMatching,
}

/// A workspace's contact matching; `id` is the workspace's.
#[derive(SimpleObject)]
pub struct ContactMatchingSetting {
    pub id: ID,
    pub matching: ContactMatching,
}
