//! Data exports over GraphQL: ask for one, and list yours with their download URLs.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::model::{DataExport, ExportStatus};
use crate::error::Result;
use crate::graphql::context::ContextExt;

/// An archive of everything the account holds.
pub struct DataExportNode {
    pub export: DataExport,
    pub public_url: String,
}

#[Object(name = "DataExport")]
impl DataExportNode {
    async fn id(&self) -> ID {
        ID(self.export.data_export_id.to_string())
    }

    async fn status(&self) -> ExportStatus {
        self.export.status()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.export.created_at
    }

    async fn ready_at(&self) -> Option<DateTime<Utc>> {
        self.export.ready_at
    }

    /// Until when it can be downloaded; it is deleted then.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.export.expires_at
    }

    async fn size_bytes(&self) -> Option<f64> {
        self.export.size_bytes.map(|s| s as f64)
    }

    /// Where to download the ZIP while READY: a GET with the account's own session as
    /// `Authorization: Bearer …` (nobody else's credential opens it).
    async fn url(&self) -> Option<String> {
        (self.export.status() == ExportStatus::Ready).then(|| format!("{}/exports/{}", self.public_url, self.export.data_export_id))
    }
}

#[derive(Default)]
pub struct ExportMutation;

#[Object]
impl ExportMutation {
    /// Asks for an archive of everything your account holds (from a session). It is built in
    /// the background; a notification says when it is ready (`me.dataExports`). At most five a
    /// day (RATE_LIMITED).
    async fn request_data_export(&self, ctx: &Context<'_>) -> Result<DataExportNode> {
        let viewer = ctx.viewer().await?;
        let services = ctx.services()?;
        let export = services.exports.request(&viewer).await?;
        Ok(DataExportNode { export, public_url: services.public_url() })
    }
}

/// `me.dataExports`.
pub async fn data_exports(ctx: &Context<'_>) -> Result<Vec<DataExportNode>> {
    let viewer = ctx.viewer().await?;
    let services = ctx.services()?;
    let public_url = services.public_url();
    Ok(services.exports.list(&viewer).await?.into_iter().map(|export| DataExportNode { export, public_url: public_url.clone() }).collect())
}
