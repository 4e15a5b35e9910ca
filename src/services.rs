//! The services every request can reach, built once at start.

use std::time::Duration;

use crate::config::Config;
use crate::db::Db;
use crate::fanout::Fanout;
use crate::identity::service::IdentityService;
use crate::workspace::service::WorkspaceService;

#[derive(Clone)]
pub struct Services {
    pub db: Db,
    pub fanout: Fanout,
    pub identity: IdentityService,
    pub workspaces: WorkspaceService,
}

impl Services {
    pub fn new(config: &Config, db: Db, fanout: Fanout) -> Services {
        Services {
            identity: IdentityService::new(db.clone(), Duration::from_secs(u64::from(config.session_ttl_hours) * 3600)),
            workspaces: WorkspaceService::new(db.clone(), fanout.clone()),
            db,
            fanout,
        }
    }
}
