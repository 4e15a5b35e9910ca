//! Contacts of a workspace: visible to and editable by its members, nobody else.

use chrono::Utc;
use tracing::instrument;

use super::model::{Contact, ContactEmail, ContactId, ContactMatching, name_for_sender, parse_emails, parse_name};
use super::store;
use crate::db::StoredEnum as _;
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::identity::service::Viewer;
use crate::webhooks::{OutgoingEvent, Webhooks};
use crate::workspace::model::{Permission, WorkspaceId};
use crate::workspace::service::WorkspaceService;

#[derive(Clone)]
pub struct ContactService {
    db: Db,
    workspaces: WorkspaceService,
    webhooks: Webhooks,
}

/// A new contact, or the edits to one (`None`: unchanged).
pub struct ContactInput {
    pub name: Option<String>,
    pub emails: Option<Vec<String>>,
}

impl ContactService {
    pub fn new(db: Db, workspaces: WorkspaceService, webhooks: Webhooks) -> Self {
        ContactService { db, workspaces, webhooks }
    }

    /// The contact, if the viewer is a member of its workspace (else NOT_FOUND).
    pub async fn contact(&self, viewer: &Viewer, id: ContactId) -> Result<Contact> {
        let contact = store::find_contacts(&self.db, &[id]).await?.pop().ok_or(Error::NotFound("contact"))?;
        self.workspaces.membership_of(viewer, contact.workspace_id).await.map_err(|_| Error::NotFound("contact"))?;
        Ok(contact)
    }

    pub async fn contacts(&self, ids: &[ContactId]) -> Result<Vec<Contact>> {
        Ok(store::find_contacts(&self.db, ids).await?)
    }

    pub async fn emails_of(&self, ids: &[ContactId]) -> Result<Vec<ContactEmail>> {
        Ok(store::emails_of(&self.db, ids).await?)
    }

    pub async fn page(
        &self,
        viewer: &Viewer,
        workspace_id: WorkspaceId,
        search: Option<&str>,
        after: Option<ContactId>,
        first: usize,
    ) -> Result<(Vec<Contact>, bool)> {
        self.workspaces.membership_of(viewer, workspace_id).await?;
        let search = search.map(str::trim).filter(|s| !s.is_empty());
        if search.is_some_and(|s| s.chars().count() > 200) {
            return Err(Error::invalid("search", "must be at most 200 characters"));
        }
        let rows = store::contacts_page(&self.db, workspace_id, search, after, first as i64 + 1).await?;
        Ok(crate::db::split_page(rows, first))
    }

    #[instrument(skip_all, fields(workspace_id = %workspace_id.0))]
    pub async fn create(&self, viewer: &Viewer, workspace_id: WorkspaceId, input: ContactInput) -> Result<Contact> {
        self.workspaces.membership_of(viewer, workspace_id).await?;
        let emails = parse_emails("emails", input.emails.as_deref().unwrap_or_default())?;
        let name = parse_name("name", input.name.as_deref().unwrap_or_default())?;
        let name = match (name.is_empty(), emails.first()) {
            (false, _) => name,
            (true, Some(first)) => first.clone(),
            (true, None) => return Err(Error::invalid("name", "give a name or an email address")),
        };
        let now = Utc::now();
        let contact = Contact { contact_id: ContactId::new(), workspace_id, name, created_at: now, updated_at: now };
        let mut tx = self.db.begin().await?;
        store::insert_contact(&mut tx, &contact).await?;
        add_emails(&mut tx, workspace_id, contact.contact_id, &emails).await?;
        let queued = crate::webhooks::enqueue(&mut tx, workspace_id, &created(&contact, &emails)).await?;
        tx.commit().await?;
        if queued > 0 {
            self.webhooks.wake();
        }
        Ok(contact)
    }

    /// Renames a contact and/or replaces its addresses.
    #[instrument(skip_all, fields(contact_id = %id.0))]
    pub async fn update(&self, viewer: &Viewer, id: ContactId, input: ContactInput) -> Result<Contact> {
        let mut contact = self.contact(viewer, id).await?;
        let name = input.name.as_deref().map(|n| parse_name("name", n)).transpose()?;
        let emails = input.emails.as_deref().map(|e| parse_emails("emails", e)).transpose()?;
        if name.as_deref() == Some("") {
            return Err(Error::invalid("name", "must not be empty"));
        }
        let now = Utc::now();
        let mut tx = self.db.begin().await?;
        if let Some(name) = name {
            store::update_name(&mut tx, id, &name, now).await?;
            contact.name = name;
        }
        if let Some(emails) = emails {
            store::delete_emails(&mut tx, id).await?;
            add_emails(&mut tx, contact.workspace_id, id, &emails).await?;
            store::update_name(&mut tx, id, &contact.name, now).await?;
        }
        tx.commit().await?;
        contact.updated_at = now;
        Ok(contact)
    }

    /// Folds `sources` into `target`: their addresses and activity move to it, and they go.
    #[instrument(skip_all, fields(contact_id = %target.0))]
    pub async fn merge(&self, viewer: &Viewer, target: ContactId, sources: &[ContactId]) -> Result<Contact> {
        if sources.is_empty() {
            return Err(Error::invalid("sourceIds", "name at least one contact to merge"));
        }
        if sources.contains(&target) {
            return Err(Error::invalid("sourceIds", "a contact cannot be merged into itself"));
        }
        let contact = self.contact(viewer, target).await?;
        let mut tx = self.db.begin().await?;
        for source in sources {
            match store::find_contact_tx(&mut tx, *source).await? {
                Some(c) if c.workspace_id == contact.workspace_id => store::merge_into(&mut tx, *source, target).await?,
                _ => return Err(Error::invalid("sourceIds", format!("no contact {} in this workspace", source.0))),
            }
        }
        store::update_name(&mut tx, target, &contact.name, Utc::now()).await?;
        tx.commit().await?;
        Ok(contact)
    }

    /// Whether mail from unknown senders creates contacts in a workspace (any member may read it).
    pub async fn matching(&self, viewer: &Viewer, workspace_id: WorkspaceId) -> Result<ContactMatching> {
        self.workspaces.membership_of(viewer, workspace_id).await?;
        let mut tx = self.db.begin().await?;
        let matching = workspace_matching(&mut tx, workspace_id).await?;
        tx.commit().await?;
        Ok(matching)
    }

    pub async fn set_matching(&self, viewer: &Viewer, workspace_id: WorkspaceId, matching: ContactMatching) -> Result<()> {
        let m = self.workspaces.membership_of(viewer, workspace_id).await?;
        if !m.role().allows(Permission::ManageWorkspace) {
            return Err(Error::forbidden("your role does not allow this"));
        }
        Ok(store::set_contact_matching(&self.db, workspace_id, matching.stored_name()).await?)
    }
}

async fn add_emails(tx: &mut Tx, workspace_id: WorkspaceId, id: ContactId, emails: &[String]) -> Result<()> {
    for (i, e) in emails.iter().enumerate() {
        if !store::insert_email(tx, workspace_id, id, e, i as i32).await? {
            return Err(Error::conflict("emails", format!("another contact already has {e}")));
        }
    }
    Ok(())
}

/// A new contact for a mail sender whose address no contact of the workspace has (the
/// caller looked, inside the same transaction). Should another process have added the
/// address since (PostgreSQL), the new contact is dropped and theirs is returned. A contact
/// made here is queued for the workspace's webhooks (`contact.created`) in the same
/// transaction; the caller wakes the webhook worker after committing.
pub async fn create_for_sender(tx: &mut Tx, workspace_id: WorkspaceId, name: Option<&str>, address: &str) -> Result<Option<ContactId>> {
    let now = Utc::now();
    let contact =
        Contact { contact_id: ContactId::new(), workspace_id, name: name_for_sender(name, address), created_at: now, updated_at: now };
    store::insert_contact(tx, &contact).await?;
    if store::insert_email(tx, workspace_id, contact.contact_id, address.trim(), 0).await? {
        crate::webhooks::enqueue(tx, workspace_id, &created(&contact, &[address.trim().to_owned()])).await?;
        Ok(Some(contact.contact_id))
    } else {
        store::delete_contact(tx, contact.contact_id).await?;
        Ok(store::contact_by_address(tx, workspace_id, address).await?)
    }
}

/// `contact.created` for webhooks. The contact's id is the event's: a contact is created once.
fn created(contact: &Contact, emails: &[String]) -> OutgoingEvent<'static> {
    OutgoingEvent {
        id: contact.contact_id.0,
        kind: "contact.created",
        occurred_at: contact.created_at,
        data: serde_json::json!({
            "contactId": contact.contact_id.0,
            "name": contact.name,
            "emails": emails,
            "createdAt": contact.created_at,
        }),
    }
}

pub async fn workspace_matching(tx: &mut Tx, workspace_id: WorkspaceId) -> Result<ContactMatching, sqlx::Error> {
    Ok(store::contact_matching(tx, workspace_id)
        .await?
        .as_deref()
        .and_then(ContactMatching::from_stored)
        .unwrap_or(ContactMatching::Create))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_created_for_webhooks_matches_the_catalogue() {
        let now = Utc::now();
        let contact = Contact {
            contact_id: ContactId::new(),
            workspace_id: WorkspaceId::new(),
            name: "Carol".into(),
            created_at: now,
            updated_at: now,
        };

        let event = created(&contact, &["carol@customer.test".to_owned()]);

        assert_eq!(event.id, contact.contact_id.0);
        let kind = crate::events::catalogue::find(event.kind).expect("a catalogue kind");
        assert!(kind.webhook);
        assert_eq!(kind.validate(&event.data), Ok(()), "{}", event.data);
    }
}
