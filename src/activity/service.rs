//! Reading activity: members of a workspace see its events; nobody else does.

use super::model::{ActivityEvent, ActivityType, EventId};
use super::store::{self, Feed, Position};
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
    pub async fn page(&self, feed: Feed, types: &[ActivityType], before: Option<Position>, first: usize) -> Result<(Vec<ActivityEvent>, bool)> {
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
}
