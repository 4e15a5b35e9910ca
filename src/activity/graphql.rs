//! Activity over GraphQL: events as Relay connections (a contact's, a workspace's, or a
//! thread's), threads, and the `activityEvents` subscription.

use std::collections::HashMap;

use async_graphql::connection::{Connection, Edge, EmptyFields, OpaqueCursor};
use async_graphql::{Context, ID, Object, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use uuid::Uuid;

use super::model::{ActivityEvent, ActivityType, Address, Attachment, EventId, MessageData, Thread, ThreadId};
use super::store::{Feed, Position, ThreadPosition};
use crate::contacts::graphql::ContactNode;
use crate::contacts::model::ContactId;
use crate::error::Result;
use crate::fanout::{Change, Topic};
use crate::graphql::context::ContextExt;
use crate::graphql::live;
use crate::graphql::loaders::unshare;
use crate::graphql::paging::page_args;
use crate::tokens::model::Scope;
use crate::workspace::model::WorkspaceId;

/// Something that happened with a contact.
pub struct ActivityEventNode {
    event: ActivityEvent,
    message: Option<MessageData>,
    /// Its thread, when the page it came with loaded them all at once.
    thread: Option<Thread>,
}

impl ActivityEventNode {
    pub fn new(event: ActivityEvent) -> Self {
        let mail = ActivityType::from_db(&event.kind).is_some_and(ActivityType::is_mail);
        let message = mail.then(|| serde_json::from_str(&event.data).unwrap_or_default());
        ActivityEventNode { event, message, thread: None }
    }
}

/// Nodes for `events`, with their threads loaded in one query when `threads` (the response
/// asks for them): a page of 100 events must not cost 100 thread lookups.
async fn event_nodes(ctx: &Context<'_>, events: Vec<ActivityEvent>, threads: bool) -> Result<Vec<ActivityEventNode>> {
    let mut nodes: Vec<ActivityEventNode> = events.into_iter().map(ActivityEventNode::new).collect();
    if !threads {
        return Ok(nodes);
    }
    let mut ids: Vec<ThreadId> = nodes.iter().filter_map(|n| n.event.thread_id).collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(nodes);
    }
    let found: HashMap<ThreadId, Thread> = ctx.services()?.activity.threads(&ids).await?.into_iter().map(|t| (t.thread_id, t)).collect();
    for node in &mut nodes {
        node.thread = node.event.thread_id.and_then(|id| found.get(&id).cloned());
    }
    Ok(nodes)
}

/// A cursor's position in a list ordered by a time, then an id.
type Timed = (DateTime<Utc>, Uuid);

/// Activity is ordered by when it happened (mail recorded late, after a backfill, still
/// lands in its place), so a cursor names a time and an id.
pub type ActivityConnection = Connection<OpaqueCursor<Timed>, ActivityEventNode>;

/// `first` as every connection reads it, and `after` as a cursor naming a time and an id
/// (activity's and threads').
fn timed_page_args(first: Option<i32>, after: Option<String>) -> Result<(usize, Option<Timed>)> {
    use async_graphql::connection::CursorType as _;
    let (first, _) = page_args(first, None)?;
    let after = after
        .map(|c| OpaqueCursor::<Timed>::decode_cursor(&c).map(|c| c.0))
        .transpose()
        .map_err(|_| crate::error::Error::invalid("after", "not a cursor from this connection"))?;
    Ok((first, after))
}

/// `first` as every connection reads it, and `after` as an activity cursor.
fn activity_page_args(first: Option<i32>, after: Option<String>) -> Result<(usize, Option<Position>)> {
    let (first, after) = timed_page_args(first, after)?;
    Ok((first, after.map(|(at, id)| (at, EventId(id)))))
}

pub struct MailAddressNode<'a>(&'a Address);

/// One mailbox from an address header.
#[Object(name = "MailAddress")]
impl MailAddressNode<'_> {
    /// The display name, decoded from RFC 2047 encoded words; `None` when absent or blank.
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    /// The address as written (trimmed, never case-folded: matching folds case elsewhere).
    async fn email(&self) -> &str {
        &self.0.email
    }
}

pub struct MailAttachmentNode<'a>(&'a Attachment);

/// A part of the message that is a file rather than the body.
#[Object(name = "MailAttachment")]
impl MailAttachmentNode<'_> {
    /// The decoded file name (RFC 2231 `filename*` or RFC 2047 `name`), when the sender gave one.
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    /// `type/subtype`, lower-cased.
    async fn content_type(&self) -> &str {
        &self.0.content_type
    }

    /// Decoded size in bytes.
    async fn size(&self) -> u64 {
        self.0.size
    }
}

/// The email a mail event (`MESSAGE_RECEIVE`, `MESSAGE_SEND`) records.
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
        self.0.html()
    }

    async fn from(&self) -> Vec<MailAddressNode<'_>> {
        self.0.from.iter().map(MailAddressNode).collect()
    }

    async fn to(&self) -> Vec<MailAddressNode<'_>> {
        self.0.to.iter().map(MailAddressNode).collect()
    }

    async fn cc(&self) -> Vec<MailAddressNode<'_>> {
        self.0.cc.iter().map(MailAddressNode).collect()
    }

    /// Blind copies: known only for mail sent from the mailbox (its own copy keeps them).
    async fn bcc(&self) -> Vec<MailAddressNode<'_>> {
        self.0.bcc.iter().map(MailAddressNode).collect()
    }

    async fn reply_to(&self) -> Vec<MailAddressNode<'_>> {
        self.0.reply_to.iter().map(MailAddressNode).collect()
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

    async fn attachments(&self) -> Vec<MailAttachmentNode<'_>> {
        self.0.attachments.iter().map(MailAttachmentNode).collect()
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
        Ok(ctx.loaders()?.contacts.load_one(id).await.map_err(unshare)?.map(ContactNode))
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

    /// For mail events: the conversation it belongs to.
    async fn thread(&self, ctx: &Context<'_>) -> Result<Option<ThreadNode>> {
        if let Some(thread) = &self.thread {
            return Ok(Some(ThreadNode(thread.clone())));
        }
        let Some(id) = self.event.thread_id else { return Ok(None) };
        // The event's workspace was authorised on the way here, and its thread is in it.
        Ok(ctx.services()?.activity.threads(&[id]).await?.pop().map(ThreadNode))
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
    let threads = ctx.look_ahead().field("edges").field("node").field("thread").exists();
    let mut connection = Connection::new(after.is_some(), more);
    connection.edges.extend(event_nodes(ctx, rows, threads).await?.into_iter().map(event_edge));
    Ok(connection)
}

fn event_edge(node: ActivityEventNode) -> Edge<OpaqueCursor<Timed>, ActivityEventNode, EmptyFields> {
    Edge::new(OpaqueCursor((node.event.occurred_at, node.event.event_id.0)), node)
}

/// A conversation: mail events that reply to or reference one another, sent and received.
pub struct ThreadNode(pub Thread);

/// Threads are ordered by their latest activity, so a cursor names that time and an id.
pub type ThreadConnection = Connection<OpaqueCursor<Timed>, ThreadNode>;

#[Object(name = "Thread")]
impl ThreadNode {
    async fn id(&self) -> ID {
        ID(self.0.thread_id.0.to_string())
    }

    /// The title of the message that started it.
    async fn subject(&self) -> &str {
        &self.0.subject
    }

    /// When its latest event happened.
    async fn last_activity_at(&self) -> DateTime<Utc> {
        self.0.last_activity_at
    }

    async fn workspace_id(&self) -> ID {
        ID(self.0.workspace_id.0.to_string())
    }

    /// Its events, oldest first.
    async fn events(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>) -> Result<ActivityConnection> {
        ctx.viewer_for(Scope::ActivityRead).await?;
        // Reaching this node already proved membership of the thread's workspace.
        let (first, after) = activity_page_args(first, after)?;
        let (rows, more) = ctx.services()?.activity.thread_events(&self.0, after, first).await?;
        let mut connection = Connection::new(after.is_some(), more);
        connection.edges.extend(rows.into_iter().map(|e| {
            let mut node = ActivityEventNode::new(e);
            node.thread = Some(self.0.clone());
            event_edge(node)
        }));
        Ok(connection)
    }
}

/// One page of the threads a contact takes part in, most recently active first; the caller
/// has authorised the contact.
pub async fn contact_threads_page(
    ctx: &Context<'_>,
    contact: ContactId,
    first: Option<i32>,
    after: Option<String>,
) -> Result<ThreadConnection> {
    let (first, after) = timed_page_args(first, after)?;
    let before: Option<ThreadPosition> = after.map(|(at, id)| (at, ThreadId(id)));
    let (rows, more) = ctx.services()?.activity.contact_threads(contact, before, first).await?;
    let mut connection = Connection::new(after.is_some(), more);
    connection.edges.extend(rows.into_iter().map(|t| Edge::new(OpaqueCursor((t.last_activity_at, t.thread_id.0)), ThreadNode(t))));
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
        let services = ctx.shared_services()?;
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
        let me = viewer.account_id();
        // A change of the viewer's own membership runs the checks above again: deactivated,
        // they are refused and the subscription ends.
        let accepts = move |c: &Change| match c {
            Change::Activity { contact_id, .. } => contact.is_none() || contact == *contact_id,
            Change::Membership { account_id, .. } => *account_id == me,
            _ => false,
        };
        live::feed(ctx, Topic::Workspace(workspace_id), (), accepts, move |_, change| {
            let services = services.clone();
            async move {
                let id = match change {
                    Ok(Change::Activity { event_id, .. }) => event_id,
                    Ok(_) => return None,
                    Err(missed) => return Some(Err(live::lagged(missed, "events", "reload the activity"))),
                };
                // Everyone watching the workspace loads the same event: once is enough.
                let load =
                    async { services.activity.events(&[id]).await.map(|f| f.into_iter().next()).map_err(async_graphql::Error::from) };
                let found = services.fanout.load_once(id.0, load).await;
                let here = found.map(|e| e.filter(|e| e.workspace_id == workspace_id));
                Some(here.and_then(|e| {
                    e.map(ActivityEventNode::new).ok_or_else(|| async_graphql::Error::from(crate::error::Error::NotFound("event")))
                }))
            }
        })
    }
}
