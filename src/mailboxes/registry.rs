//! The connectors this gateway offers. Adding one is one `register` line in [`Registry::builtin`].

use std::sync::Arc;

use concierge_connector_imap_smtp::{ImapSmtpConnector, Options as ImapOptions};
use concierge_connector_sdk::SharedConnector;

#[derive(Clone, Default)]
pub struct Registry {
    connectors: Vec<SharedConnector>,
}

impl Registry {
    /// Adds a connector; a later one with the same kind replaces the earlier.
    pub fn register(&mut self, connector: SharedConnector) -> &mut Self {
        let kind = connector.descriptor().kind;
        self.connectors.retain(|c| c.descriptor().kind != kind);
        self.connectors.push(connector);
        self
    }

    pub fn get(&self, kind: &str) -> Option<&SharedConnector> {
        self.connectors.iter().find(|c| c.descriptor().kind == kind)
    }

    pub fn all(&self) -> &[SharedConnector] {
        &self.connectors
    }

    /// The connectors Concierge ships with.
    pub fn builtin(imap: ImapOptions) -> Registry {
        let mut registry = Registry::default();
        registry
            .register(Arc::new(ImapSmtpConnector::generic(imap.clone())))
            .register(Arc::new(ImapSmtpConnector::gmail_app_password(imap)));
        registry
    }
}
