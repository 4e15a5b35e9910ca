//! Export rules and the worker that builds archives. The archive is read through the API as
//! the session that asked (so it holds exactly what its owner sees, never a secret), written
//! as JSON into a ZIP with the profile photo, kept in the blob store for [`KEEP_FOR`], and
//! announced with a notification. Builds are claimed with a conditional update, so several
//! gateways on one database build each export once; one left by a dead process is taken over
//! after [`BUILD_LEASE`].

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_graphql::{Request, Variables};
use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::model::{BUILD_LEASE, DataExport, ExportStatus, KEEP_FOR, PER_DAY};
use super::store;
use crate::blob::{BlobKey, SharedBlobStore};
use crate::clock::SystemClock;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::graphql::ConciergeSchema;
use crate::graphql::context::RequestAuth;
use crate::identity::service::{ClientMeta, Credential, Viewer};
use crate::jobs::worker::{self, Pace, Worker};
use crate::notifications::model::NotificationEvent;
use crate::notifications::service::{Notice, NotificationService};
use crate::security::log::{SecurityEventKind, SecurityLog};

const QUERIES: &str = include_str!("account.graphql");
/// How often the worker looks for work it was not woken for (another process's, expiries).
const IDLE: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct ExportService {
    db: Db,
    blobs: SharedBlobStore,
    notifications: NotificationService,
    log: SecurityLog,
    wake: Arc<Notify>,
}

impl ExportService {
    pub fn new(db: Db, blobs: SharedBlobStore, notifications: NotificationService, log: SecurityLog) -> Self {
        ExportService { db, blobs, notifications, log, wake: Arc::new(Notify::new()) }
    }

    /// Queues an export of the viewer's account (from a session: an export holds the
    /// security log and sessions, which no token may read). At most [`PER_DAY`] a day.
    pub async fn request(&self, viewer: &Viewer) -> Result<DataExport> {
        let session = viewer.require_session()?;
        let now = Utc::now();
        let day = chrono::TimeDelta::days(1);
        if store::count_since(&self.db, viewer.account_id(), now - day).await? >= PER_DAY {
            return Err(Error::RateLimited { retry_after_secs: 3600 });
        }
        let id = Uuid::now_v7();
        store::insert(&self.db, id, viewer.account_id(), session, now).await?;
        self.log.record(viewer.account_id(), SecurityEventKind::DataExportRequested, &viewer.meta, None).await;
        self.wake.notify_one();
        store::find(&self.db, id).await?.ok_or_else(|| Error::Internal(anyhow::anyhow!("export {id} vanished")))
    }

    /// The viewer's exports, newest first (swept ones are gone).
    pub async fn list(&self, viewer: &Viewer) -> Result<Vec<DataExport>> {
        viewer.require_session()?;
        Ok(store::list(&self.db, viewer.account_id()).await?)
    }

    /// The archive of a ready export of the viewer's; NOT_FOUND for anyone else's, so an id
    /// says nothing.
    pub async fn archive(&self, viewer: &Viewer, id: Uuid) -> Result<Vec<u8>> {
        viewer.require_session()?;
        let export = store::find(&self.db, id).await?.filter(|e| e.account_id == viewer.account_id()).ok_or(Error::NotFound("export"))?;
        if export.status() != ExportStatus::Ready || export.expires_at.is_none_or(|e| e <= Utc::now()) {
            return Err(Error::NotFound("export"));
        }
        let key = BlobKey::new(export.blob_key())?;
        self.blobs.get(&key).await?.ok_or(Error::NotFound("export"))
    }

    /// Builds what is queued until `stop`, on the shared worker loop ([`Builder`]); sweeps
    /// expired archives as it goes.
    pub async fn run(self, schema: ConciergeSchema, stop: CancellationToken) {
        let wake = self.wake.clone();
        let builder = Builder { exports: self, schema };
        worker::run(&builder, Pace { clock: &SystemClock, wake: &wake, recheck: IDLE }, stop).await;
    }

    /// One pass: sweep, then build every export waiting; how many it built (or failed to).
    pub async fn run_once(&self, schema: &ConciergeSchema) -> Result<usize> {
        let mut built = 0;
        let now = Utc::now();
        // A failed one stays listed as long as a ready one would be downloadable.
        for gone in store::expired(&self.db, now, now - KEEP_FOR).await? {
            self.blobs.delete(&BlobKey::new(gone.blob_key())?).await?;
            store::delete(&self.db, gone.data_export_id).await?;
        }
        while let Some(export) = store::claim(&self.db, Utc::now(), Utc::now() - BUILD_LEASE).await? {
            built += 1;
            match self.build(schema, &export).await {
                Ok(size) => {
                    let now = Utc::now();
                    // The notice first, so whoever sees the export READY finds it too; its
                    // dedupe key keeps a rebuild after a crash in between from telling twice.
                    let notice = Notice {
                        dedupe_key: Some(format!("data-export:{}", export.data_export_id)),
                        ..Notice::new(
                            export.account_id,
                            NotificationEvent::SecurityEvent,
                            "Your data export is ready",
                            format!("Download it from your account settings until {}.", (now + KEEP_FOR).format("%Y-%m-%d")),
                        )
                    };
                    self.notifications.notify(notice).await?;
                    store::finish(&self.db, export.data_export_id, now, now + KEEP_FOR, size).await?;
                }
                Err(e) => {
                    tracing::error!(error = ?e, export = %export.data_export_id, "building a data export");
                    store::fail(&self.db, export.data_export_id).await?;
                }
            }
        }
        Ok(built)
    }

    async fn build(&self, schema: &ConciergeSchema, export: &DataExport) -> anyhow::Result<i64> {
        let account = crate::identity::store::find_accounts(&self.db, &[export.account_id]).await?.pop().context("the account is gone")?;
        let photo = match &account.photo_key {
            Some(key) => {
                let ext = key.rsplit_once('.').map_or("jpg", |(_, ext)| ext).to_owned();
                let blob = crate::profile::service::blob_key(key, 512).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
                self.blobs.get(&blob).await?.map(|bytes| (format!("photo.{ext}"), bytes))
            }
            None => None,
        };
        let viewer = Viewer { account, credential: Credential::Session(export.session_id), meta: ClientMeta::default() };
        let mut document = query(schema, &viewer, "AccountExport", Value::Null).await?;
        document["me"]["securityEvents"] = pages(schema, &viewer, "SecurityEvents", "securityEvents").await?;
        document["me"]["notifications"] = pages(schema, &viewer, "Notifications", "notifications").await?;
        let manifest = json!({
            "format": "concierge-data-export/1",
            "exportedAt": Utc::now(),
            "account": document["me"],
        });
        let bytes = tokio::task::spawn_blocking(move || zip_archive(&manifest, photo)).await??;
        let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        self.blobs.put(&BlobKey::new(export.blob_key())?, bytes).await?;
        Ok(size)
    }
}

/// Runs one operation of [`QUERIES`] as `viewer`; any error fails the export.
async fn query(schema: &ConciergeSchema, viewer: &Viewer, operation: &str, variables: Value) -> anyhow::Result<Value> {
    let request = Request::new(QUERIES)
        .operation_name(operation)
        .variables(Variables::from_json(variables))
        .data(RequestAuth::resolved(Some(viewer.clone()), ClientMeta::default()));
    let response = schema.execute(request).await;
    if let Some(e) = response.errors.first() {
        anyhow::bail!("{operation}: {}", e.message);
    }
    Ok(response.data.into_json()?)
}

/// Every node of the connection `field` of `me`, following its pages.
async fn pages(schema: &ConciergeSchema, viewer: &Viewer, operation: &str, field: &str) -> anyhow::Result<Value> {
    let mut nodes = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = query(schema, viewer, operation, json!({ "after": after })).await?;
        let connection = &page["me"][field];
        nodes.extend(connection["edges"].as_array().into_iter().flatten().map(|e| e["node"].clone()));
        if connection["pageInfo"]["hasNextPage"] != true {
            return Ok(Value::Array(nodes));
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
}

fn zip_archive(manifest: &Value, photo: Option<(String, Vec<u8>)>) -> anyhow::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("account.json", options)?;
    zip.write_all(&serde_json::to_vec_pretty(manifest)?)?;
    if let Some((name, photo)) = photo {
        zip.start_file(name, options)?;
        zip.write_all(&photo)?;
    }
    zip.start_file("README.txt", options)?;
    zip.write_all(
        b"Everything your Concierge account holds, as the API shows it to you: account.json (profile, \
          preferences, availability, memberships, sessions, security log, access token and mailbox and \
          calendar settings, notifications) and your profile photo. Secrets (passwords, tokens, \
          credentials) are never exported.\n",
    )?;
    Ok(zip.finish()?.into_inner())
}

/// The export builder as a [`Worker`]: a pass sweeps expired archives, then builds every
/// export waiting, reading each through `schema` as the session that asked for it.
pub struct Builder {
    pub exports: ExportService,
    pub schema: ConciergeSchema,
}

impl Worker for Builder {
    const NAME: &'static str = "data exports";

    async fn run_once(&self) -> anyhow::Result<usize> {
        self.exports.run_once(&self.schema).await.map_err(|e| anyhow::anyhow!("{e:?}"))
    }
}
