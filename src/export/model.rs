//! A data export as stored.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::db::StoredEnum as _;
use crate::identity::model::AccountId;

/// How long a ready archive can be downloaded.
pub const KEEP_FOR: TimeDelta = TimeDelta::days(7);
/// A build not finished in this long (its process died) is started again.
pub const BUILD_LEASE: TimeDelta = TimeDelta::minutes(10);
/// Exports one account may ask for in a day.
pub const PER_DAY: i64 = 5;

/// Where an export stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum ExportStatus {
    /// Asked for; waiting to be built.
    Pending,
    /// Being built.
    Building,
    /// Ready to download until `expiresAt`.
    Ready,
    /// The build failed; ask again.
    Failed,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DataExport {
    pub data_export_id: Uuid,
    pub account_id: AccountId,
    pub session_id: Uuid,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub size_bytes: Option<i64>,
}

impl DataExport {
    pub fn status(&self) -> ExportStatus {
        ExportStatus::from_stored(&self.status).unwrap_or(ExportStatus::Failed)
    }

    /// Where the archive is kept.
    pub fn blob_key(&self) -> String {
        format!("exports/{}/{}.zip", self.account_id, self.data_export_id)
    }
}
