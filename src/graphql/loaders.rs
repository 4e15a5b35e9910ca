//! DataLoaders: every `User`, `Workspace`, membership list, member presence, `Contact` and contact address list a
//! response needs is fetched in one statement per kind, however many the response holds.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};

use crate::availability::service::ColleagueView;
use crate::contacts::model::{Contact, ContactId};
use crate::identity::model::{Account, AccountId};
use crate::services::Services;
use crate::workspace::model::{Membership, Workspace, WorkspaceId};

/// Loader errors must be `Clone`; the shared error is logged once where it is converted.
pub type LoadError = Arc<crate::error::Error>;

pub struct AccountLoader(pub Services);
pub struct WorkspaceLoader(pub Services);
/// An account's memberships, in join order.
pub struct MembershipsLoader(pub Services);

impl Loader<AccountId> for AccountLoader {
    type Value = Account;
    type Error = LoadError;

    async fn load(&self, keys: &[AccountId]) -> Result<HashMap<AccountId, Account>, LoadError> {
        let accounts = self.0.identity.accounts(keys).await.map_err(Arc::new)?;
        Ok(accounts.into_iter().map(|a| (a.account_id, a)).collect())
    }
}

impl Loader<WorkspaceId> for WorkspaceLoader {
    type Value = Workspace;
    type Error = LoadError;

    async fn load(&self, keys: &[WorkspaceId]) -> Result<HashMap<WorkspaceId, Workspace>, LoadError> {
        let workspaces = self.0.workspaces.workspaces(keys).await.map_err(Arc::new)?;
        Ok(workspaces.into_iter().map(|w| (w.workspace_id, w)).collect())
    }
}

impl Loader<AccountId> for MembershipsLoader {
    type Value = Vec<Membership>;
    type Error = LoadError;

    async fn load(&self, keys: &[AccountId]) -> Result<HashMap<AccountId, Vec<Membership>>, LoadError> {
        let rows = self.0.workspaces.memberships_of(keys).await.map_err(Arc::new)?;
        let mut by_account: HashMap<AccountId, Vec<Membership>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for m in rows {
            by_account.entry(m.account_id).or_default().push(m);
        }
        Ok(by_account)
    }
}

/// A member's presence, as others see it.
pub struct PresenceLoader(pub Services);

impl Loader<AccountId> for PresenceLoader {
    type Value = ColleagueView;
    type Error = LoadError;

    async fn load(&self, keys: &[AccountId]) -> Result<HashMap<AccountId, ColleagueView>, LoadError> {
        self.0.availability.shown_to_colleagues(keys).await.map_err(Arc::new)
    }
}

pub struct ContactLoader(pub Services);
/// A contact's addresses, in order.
pub struct ContactEmailsLoader(pub Services);

impl Loader<ContactId> for ContactLoader {
    type Value = Contact;
    type Error = LoadError;

    async fn load(&self, keys: &[ContactId]) -> Result<HashMap<ContactId, Contact>, LoadError> {
        let rows = self.0.contacts.contacts(keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|c| (c.contact_id, c)).collect())
    }
}

impl Loader<ContactId> for ContactEmailsLoader {
    type Value = Vec<String>;
    type Error = LoadError;

    async fn load(&self, keys: &[ContactId]) -> Result<HashMap<ContactId, Vec<String>>, LoadError> {
        let rows = self.0.contacts.emails_of(keys).await.map_err(Arc::new)?;
        let mut by_contact: HashMap<ContactId, Vec<String>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for e in rows {
            by_contact.entry(e.contact_id).or_default().push(e.address);
        }
        Ok(by_contact)
    }
}

pub struct Loaders {
    pub contacts: DataLoader<ContactLoader>,
    pub contact_emails: DataLoader<ContactEmailsLoader>,
    pub accounts: DataLoader<AccountLoader>,
    pub workspaces: DataLoader<WorkspaceLoader>,
    pub memberships: DataLoader<MembershipsLoader>,
    pub presence: DataLoader<PresenceLoader>,
}

impl Loaders {
    pub fn new(services: &Services) -> Loaders {
        Loaders {
            contacts: DataLoader::new(ContactLoader(services.clone()), tokio::spawn),
            contact_emails: DataLoader::new(ContactEmailsLoader(services.clone()), tokio::spawn),
            accounts: DataLoader::new(AccountLoader(services.clone()), tokio::spawn),
            workspaces: DataLoader::new(WorkspaceLoader(services.clone()), tokio::spawn),
            memberships: DataLoader::new(MembershipsLoader(services.clone()), tokio::spawn),
            presence: DataLoader::new(PresenceLoader(services.clone()), tokio::spawn),
        }
    }
}

/// Turns a loader's shared error back into the gateway's error.
pub fn unshare(err: LoadError) -> crate::error::Error {
    match Arc::try_unwrap(err) {
        Ok(e) => e,
        Err(shared) => match &*shared {
            crate::error::Error::Internal(inner) => crate::error::Error::Internal(anyhow::anyhow!("{inner:#}")),
            other => crate::error::Error::Internal(anyhow::anyhow!("{}", other.message())),
        },
    }
}
