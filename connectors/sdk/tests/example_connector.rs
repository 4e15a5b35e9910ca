//! The example from the README's "Writing a connector": a complete connector for a mail
//! "server" that is a folder of `.eml` files, and the conformance kit run against it.
//!
//! A file named `<unix seconds>-<n>.eml` is a message received at that time. The account's
//! password must match the folder's `.password` file. Real connectors talk to a network
//! server; the shape is the same.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use concierge_connector_sdk::kit::{self, Harness};
use concierge_connector_sdk::{
    Account, AuthMethod, Capabilities, Checkpoint, ConnectorError, Credentials, Descriptor, Field, FieldKind, MailConnector, MailSession,
    MessageRef, RawMessage, Secret, SharedConnector, Wake, async_trait,
};

pub struct FolderConnector {
    descriptor: Descriptor,
}

impl FolderConnector {
    pub fn new() -> FolderConnector {
        FolderConnector {
            descriptor: Descriptor {
                kind: "folder",
                display_name: "Folder of .eml files".into(),
                auth: AuthMethod::Password,
                capabilities: Capabilities::default(),
                fields: vec![Field::new("path", "Folder", FieldKind::Text).required().help("An absolute path on the gateway's machine")],
                help: None,
            },
        }
    }
}

impl Default for FolderConnector {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl MailConnector for FolderConnector {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    async fn open(&self, account: &Account) -> Result<Box<dyn MailSession>, ConnectorError> {
        let dir = PathBuf::from(account.setting("path").unwrap_or_default());
        let expected = tokio::fs::read_to_string(dir.join(".password"))
            .await
            .map_err(|e| ConnectorError::Unreachable { message: format!("cannot read the folder: {}", e.kind()) })?;
        let Credentials::Password { password, .. } = &account.credentials else {
            return Err(ConnectorError::Unsupported { what: "OAuth2".into() });
        };
        if expected.trim() != password.expose() {
            return Err(ConnectorError::Authentication { message: "wrong password".into() });
        }
        Ok(Box::new(FolderSession { dir }))
    }
}

struct FolderSession {
    dir: PathBuf,
}

impl FolderSession {
    /// (file name, received at), oldest first.
    async fn files(&self) -> Result<Vec<(String, DateTime<Utc>)>, ConnectorError> {
        let mut entries =
            tokio::fs::read_dir(&self.dir).await.map_err(|e| ConnectorError::Unreachable { message: e.kind().to_string() })?;
        let mut files = Vec::new();
        while let Some(e) = entries.next_entry().await.map_err(|e| ConnectorError::Unreachable { message: e.kind().to_string() })? {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".eml") else { continue };
            let Some(secs) = stem.split('-').next().and_then(|s| s.parse::<i64>().ok()) else { continue };
            if let Some(at) = Utc.timestamp_opt(secs, 0).single() {
                files.push((name, at));
            }
        }
        // Names sort as they were delivered: zero-padded seconds, then a counter.
        files.sort();
        Ok(files)
    }
}

#[async_trait]
impl MailSession for FolderSession {
    async fn list(&mut self, since: DateTime<Utc>, checkpoint: Option<&Checkpoint>) -> Result<Vec<MessageRef>, ConnectorError> {
        Ok(self
            .files()
            .await?
            .into_iter()
            .filter(|(name, at)| *at >= since && checkpoint.is_none_or(|c| name.as_str() > c.0.as_str()))
            .map(|(name, at)| MessageRef { id: name.clone(), checkpoint: Checkpoint(name), received_at: Some(at), size: None })
            .collect())
    }

    async fn fetch(&mut self, refs: &[MessageRef]) -> Result<Vec<RawMessage>, ConnectorError> {
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            // A message deleted since it was listed is left out.
            if let Ok(bytes) = tokio::fs::read(self.dir.join(&r.id)).await {
                out.push(RawMessage { reference: r.clone(), bytes });
            }
        }
        Ok(out)
    }

    async fn wait(&mut self, timeout: Duration) -> Result<Wake, ConnectorError> {
        // No push here: poll the folder.
        let before = self.files().await?.len();
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if self.files().await?.len() != before {
                return Ok(Wake::Changed);
            }
        }
        Ok(Wake::TimedOut)
    }

    async fn close(self: Box<Self>) {}
}

/// The kit's view of this connector's test "server": a temp folder per account.
struct FolderHarness {
    root: tempfile::TempDir,
}

#[async_trait]
impl Harness for FolderHarness {
    fn connector(&self) -> SharedConnector {
        Arc::new(FolderConnector::new())
    }

    async fn new_account(&self) -> Account {
        let dir = tempfile::tempdir_in(self.root.path()).expect("account folder").keep();
        std::fs::write(dir.join(".password"), "s3cret").expect("password file");
        let mut settings = concierge_connector_sdk::Settings::new();
        settings.insert("path".into(), dir.to_string_lossy().into_owned().into());
        Account {
            address: "someone@folder.test".into(),
            settings,
            credentials: Credentials::Password { username: "someone".into(), password: Secret::new("s3cret") },
        }
    }

    async fn deliver(&self, account: &Account, raw: &[u8], received_at: DateTime<Utc>) {
        let dir = PathBuf::from(account.setting("path").expect("path"));
        let n = std::fs::read_dir(&dir).expect("folder").count();
        std::fs::write(dir.join(format!("{:012}-{n:06}.eml", received_at.timestamp())), raw).expect("deliver");
    }

    fn with_wrong_password(&self, account: &Account) -> Account {
        Account { credentials: Credentials::Password { username: "someone".into(), password: Secret::new("wrong") }, ..account.clone() }
    }

    // What a folder of files cannot do, declared: the kit skips those checks and says so.
    fn sending(&self) -> Option<&dyn kit::Sending> {
        None
    }

    fn renumbering(&self) -> Option<&dyn kit::Renumbering> {
        None
    }

    fn read_state(&self) -> Option<&dyn kit::ReadState> {
        None
    }

    fn throttling(&self) -> Option<&dyn kit::Throttling> {
        None
    }

    fn oauth(&self) -> Option<&dyn kit::OAuthTokens> {
        None
    }
}

#[tokio::test]
async fn the_folder_connector_passes_the_conformance_kit() {
    let report = kit::run(&FolderHarness { root: tempfile::tempdir().expect("root") }).await;

    assert_eq!(report.passed.len(), 5, "{report:?}");
    let skipped: Vec<&str> = report.skipped.iter().map(|(check, _)| *check).collect();
    assert_eq!(
        skipped,
        [
            "fetching_leaves_messages_unread",
            "a_renumbered_server_resets_the_checkpoint",
            "sends_and_keeps_one_copy_in_sent",
            "reports_throttling_as_throttled",
            "refreshes_an_expired_access_token"
        ]
    );
}
