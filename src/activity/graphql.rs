//! Activity over GraphQL: events as Relay connections (a contact's, or a workspace's), and
//! the `activityEvents` subscription.

use async_graphql::connection::{Connection, Edge, OpaqueCursor};
use async_graphql::{Context, ID, Object, Subscription};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt as _, future};
use uuid::Uuid;

use super::model::{ActivityEvent, ActivityType, Address, Attachment, EventId, MessageData};
use super::store::{Feed, Position};
use crate::contacts::graphql::ContactNode;
use crate::contacts::model::ContactId;
use crate::error::Result;
use crate::fanout::{Change, Lagged, Topic};
use crate::graphql::context::ContextExt;
use crate::graphql::loaders::unshare;
use crate::graphql::paging::page_args;
use crate::identity::graphql::loaders;
use crate::tokens::model::Scope;
use crate::workspace::model::WorkspaceId;

/// Something that happened with a contact.
pub struct ActivityEventNode {
    event: ActivityEvent,
    message: Option<MessageData>,
}

impl ActivityEventNode {
    pub fn new(event: ActivityEvent) -> Self {
        let message = (event.kind == ActivityType::MessageReceive.as_str()).then(|| serde_json::from_str(&event.data).unwrap_or_default());
        ActivityEventNode { event, message }
    }
}

/// Activity is ordered by when it happened (mail recorded late, after a backfill, still
/// lands in its place), so a cursor names a time and an id.
pub type ActivityConnection = Connection<OpaqueCursor<(DateTime<Utc>, Uuid)>, ActivityEventNode>;

/// `first` as every connection reads it, and `after` as an activity cursor.
fn activity_page_args(first: Option<i32>, after: Option<String>) -> Result<(usize, Option<Position>)> {
    use async_graphql::connection::CursorType as _;
    let (first, _) = page_args(first, None)?;
    let after = after
        .map(|c| OpaqueCursor::<(DateTime<Utc>, Uuid)>::decode_cursor(&c).map(|c| (c.0.0, EventId(c.0.1))))
        .transpose()
        .map_err(|_| crate::error::Error::invalid("after", "not a cursor from this connection"))?;
    Ok((first, after))
}

/// The email a `MESSAGE_RECEIVE` event records.
pub struct MailMessageNode<'a>(&'a MessageData);

#[Object(name = "MailMessage")]
impl MailMessageNode<'_> {
    /// The decoded subject ("" when it had none).
    async fn title(&self) -> &str {
        &self.0.title
    }

    /// The text: the plain-text part, or text made from the HTML.
    async fn contents(&self) -> &str {
        &self.0.contents
    }

    /// The HTML part, sanitised (no scripts, no event handlers, no styles).
    async fn html(&self) -> Option<String> {
        self.0.html_source.as_deref().map(crate::mailboxes::parse::sanitise_html)
    }

    async fn from(&self) -> &[Address] {
        &self.0.from
    }

    async fn to(&self) -> &[Address] {
        &self.0.to
    }

    async fn cc(&self) -> &[Address] {
        &self.0.cc
    }

    async fn reply_to(&self) -> &[Address] {
        &self.0.reply_to
    }

    /// The Date header.
    async fn date(&self) -> Option<DateTime<Utc>> {
        self.0.date
    }

    /// Without angle brackets.
    async fn message_id(&self) -> Option<&str> {
        self.0.message_id.as_deref()
    }

    async fn in_reply_to(&self) -> &[String] {
        &self.0.in_reply_to
    }

    async fn references(&self) -> &[String] {
        &self.0.references
    }

    async fn attachments(&self) -> &[Attachment] {
        &self.0.attachments
    }

    /// Why the message could not be fully read, if it could not.
    async fn malformed(&self) -> Option<&str> {
        self.0.malformed.as_deref()
    }
}

#[Object(name = "ActivityEvent")]
impl ActivityEventNode {
    async fn id(&self) -> ID {
        ID(self.event.event_id.0.to_string())
    }

    #[graphql(name = "type")]
    async fn kind(&self) -> Option<ActivityType> {
        ActivityType::from_db(&self.event.kind)
    }

    /// When it happened (for mail: when the server received it).
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.event.occurred_at
    }

    async fn recorded_at(&self) -> DateTime<Utc> {
        self.event.created_at
    }

    /// The contact it is about (none when the workspace matches existing contacts only and
    /// none matched).
    async fn contact(&self, ctx: &Context<'_>) -> Result<Option<ContactNode>> {
        let Some(id) = self.event.contact_id else { return Ok(None) };
        Ok(loaders(ctx)?.contacts.load_one(id).await.map_err(unshare)?.map(ContactNode))
    }

    /// The mailbox that received it, while it is connected.
    async fn mailbox_id(&self) -> Option<ID> {
        self.event.mailbox_id.map(|m| ID(m.0.to_string()))
    }

    async fn workspace_id(&self) -> ID {
        ID(self.event.workspace_id.0.to_string())
    }

    /// For mail events: the message.
    async fn message(&self) -> Option<MailMessageNode<'_>> {
        self.message.as_ref().map(MailMessageNode)
    }

    /// The message could not be fully read (it is recorded with what could be).
    async fn malformed(&self) -> bool {
        self.event.malformed
    }
}

/// One page of a feed the caller may read.
pub async fn activity_page(
    ctx: &Context<'_>,
    feed: Feed,
    first: Option<i32>,
    after: Option<String>,
    types: Vec<ActivityType>,
) -> Result<ActivityConnection> {
    let (first, after) = activity_page_args(first, after)?;
    let (rows, more) = ctx.services()?.activity.page(feed, &types, after, first).await?;
    let mut connection = Connection::new(after.is_some(), more);
    connection
        .edges
        .extend(rows.into_iter().map(|e| Edge::new(OpaqueCursor((e.occurred_at, e.event_id.0)), ActivityEventNode::new(e))));
    Ok(connection)
}

#[derive(Default)]
pub struct ActivityQuery;

#[Object]
impl ActivityQuery {
    /// A workspace's activity across its contacts, newest first.
    async fn activity(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
        types: Option<Vec<ActivityType>>,
    ) -> Result<ActivityConnection> {
        let viewer = ctx.viewer_for(Scope::ActivityRead).await?;
        let services = ctx.services()?;
        let workspace_id = match workspace_id {
            Some(w) => WorkspaceId::parse("workspaceId", &w)?,
            None => services.workspaces.only_workspace(&viewer).await?,
        };
        services.activity.authorize(&viewer, Feed::Workspace(workspace_id)).await?;
        activity_page(ctx, Feed::Workspace(workspace_id), first, after, types.unwrap_or_default()).await
    }

    /// One activity event of a workspace you belong to.
    async fn activity_event(&self, ctx: &Context<'_>, id: ID) -> Result<ActivityEventNode> {
        let viewer = ctx.viewer_for(Scope::ActivityRead).await?;
        let id = EventId::parse("id", &id)?;
        Ok(ActivityEventNode::new(ctx.services()?.activity.event(&viewer, id).await?))
    }
}

#[derive(Default)]
pub struct ActivitySubscription;

#[Subscription]
impl ActivitySubscription {
    /// New activity as it is recorded: on one contact, or across the workspace when
    /// `contactId` is left out (`workspaceId` may be left out when you belong to one).
    async fn activity_events(
        &self,
        ctx: &Context<'_>,
        contact_id: Option<ID>,
        workspace_id: Option<ID>,
    ) -> Result<impl Stream<Item = async_graphql::Result<ActivityEventNode>> + use<>> {
        let viewer = ctx.viewer_for(Scope::ActivityRead).await?;
        let services = ctx.services()?.clone();
        let (workspace_id, contact) = match contact_id {
            Some(c) => {
                let c = services.contacts.contact(&viewer, ContactId::parse("contactId", &c)?).await?;
                (c.workspace_id, Some(c.contact_id))
            }
            None => {
                let w = match workspace_id {
                    Some(w) => WorkspaceId::parse("workspaceId", &w)?,
                    None => services.workspaces.only_workspace(&viewer).await?,
                };
                services.activity.authorize(&viewer, Feed::Workspace(w)).await?;
                (w, None)
            }
        };
        Ok(services
            .fanout
            .subscribe(Topic::Workspace(workspace_id))
            .filter_map(move |c| {
                future::ready(match c {
                    Ok(Change::Activity { event_id, contact_id, .. }) if contact.is_none() || contact == contact_id => Some(Ok(event_id)),
                    Ok(_) => None,
                    Err(l) => Some(Err(l)),
                })
            })
            .then(move |item| {
                let services = services.clone();
                Box::pin(async move {
                    let id = item.map_err(|Lagged(missed)| {
                        use async_graphql::ErrorExtensions as _;
                        async_graphql::Error::new(format!("fell behind and missed {missed} events; reload the activity"))
                            .extend_with(|_, e| {
                                e.set("code", "LAGGED");
                                e.set("missed", missed);
                            })
                    })?;
                    let found = services.activity.events(&[id]).await.map_err(async_graphql::Error::from)?;
                    found.into_iter().next().map(ActivityEventNode::new).ok_or_else(|| async_graphql::Error::new("event gone"))
                })
            }))
    }
}
