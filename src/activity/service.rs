//! Reading activity: members of a workspace see its events; nobody else does.

use super::model::{ActivityEvent, ActivityType, EventId, Thread, ThreadId};
use super::store::{self, Feed, Position, ThreadPosition};
use crate::contacts::model::ContactId;
use crate::contacts::service::ContactService;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::identity::service::Viewer;
use crate::workspace::service::WorkspaceService;

#[derive(Clone)]
pub struct ActivityService {
    db: Db,
    contacts: ContactService,
    workspaces: WorkspaceService,
}

impl ActivityService {
    pub fn new(db: Db, contacts: ContactService, workspaces: WorkspaceService) -> Self {
        ActivityService { db, contacts, workspaces }
    }

    /// Checks the viewer may read the feed (a contact of, or a workspace they belong to).
    pub async fn authorize(&self, viewer: &Viewer, feed: Feed) -> Result<()> {
        match feed {
            Feed::Contact(id) => self.contacts.contact(viewer, id).await.map(drop),
            Feed::Workspace(id) => self.workspaces.membership_of(viewer, id).await.map(drop),
        }
    }

    /// A page of the feed, newest first; the caller has authorised it.
    pub async fn page(
        &self,
        feed: Feed,
        types: &[ActivityType],
        before: Option<Position>,
        first: usize,
    ) -> Result<(Vec<ActivityEvent>, bool)> {
        let kinds: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
        let rows = store::events_page(&self.db, feed, &kinds, before, first as i64 + 1).await?;
        Ok(crate::db::split_page(rows, first))
    }

    pub async fn events(&self, ids: &[EventId]) -> Result<Vec<ActivityEvent>> {
        Ok(store::find_events(&self.db, ids).await?)
    }

    /// One event, if the viewer belongs to its workspace.
    pub async fn event(&self, viewer: &Viewer, id: EventId) -> Result<ActivityEvent> {
        let event = store::find_events(&self.db, &[id]).await?.pop().ok_or(Error::NotFound("activity event"))?;
        self.workspaces.membership_of(viewer, event.workspace_id).await.map_err(|_| Error::NotFound("activity event"))?;
        Ok(event)
    }

    /// Threads by id; the caller has authorised their workspace.
    pub async fn threads(&self, ids: &[ThreadId]) -> Result<Vec<Thread>> {
        Ok(store::find_threads(&self.db, ids).await?)
    }

    /// A page of the thread's events, oldest first; the caller has authorised the thread.
    pub async fn thread_events(&self, thread: &Thread, after: Option<Position>, first: usize) -> Result<(Vec<ActivityEvent>, bool)> {
        let rows = store::thread_events_page(&self.db, thread, after, first as i64 + 1).await?;
        Ok(crate::db::split_page(rows, first))
    }

    /// A page of the threads the contact takes part in, most recently active first; the
    /// caller has authorised the contact.
    pub async fn contact_threads(&self, contact: ContactId, before: Option<ThreadPosition>, first: usize) -> Result<(Vec<Thread>, bool)> {
        let rows = store::contact_threads_page(&self.db, contact, before, first as i64 + 1).await?;
        Ok(crate::db::split_page(rows, first))
    }
}
