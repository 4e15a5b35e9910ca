//! The GraphQL schema: each domain's query, mutation and subscription merged into one, with
//! the limits and metrics extension, served over HTTP and WebSocket.

pub mod context;
pub mod errors;
pub mod http;
pub mod limits;
pub mod live;
pub mod loaders;
pub mod paging;
pub mod user;
pub mod ws;

use async_graphql::{MergedObject, MergedSubscription, Schema};

use crate::activity::graphql::{ActivityQuery, ActivitySubscription};
use crate::availability::graphql::{AvailabilityMutation, AvailabilitySubscription};
use crate::calendars::graphql::{CalendarMutation, CalendarQuery};
use crate::config::Config;
use crate::contacts::graphql::{ContactMutation, ContactQuery};
use crate::deletion::graphql::DeletionMutation;
use crate::events::graphql::EventQuery;
use crate::export::graphql::ExportMutation;
use crate::identity::graphql::{IdentityMutation, IdentityQuery, IdentitySubscription};
use crate::mailboxes::graphql::{MailboxMutation, MailboxQuery, MailboxSubscription};
use crate::notifications::graphql::{NotificationMutation, NotificationQuery, NotificationSubscription};
use crate::passkeys::graphql::PasskeyMutation;
use crate::platform_events::graphql::PlatformEventMutation;
use crate::profile::graphql::{ProfileMutation, ProfileQuery};
use crate::recovery::graphql::RecoveryMutation;
use crate::security::graphql::{SecurityMutation, SecurityQuery};
use crate::service_accounts::graphql::{ServiceAccountMutation, ServiceAccountQuery};
use crate::services::Services;
use crate::tokens::graphql::TokenMutation;
use crate::webhooks::graphql::{WebhookMutation, WebhookQuery};
use crate::workspace::graphql::{WorkspaceMutation, WorkspaceQuery};

#[derive(MergedObject, Default)]
pub struct Query(
    IdentityQuery,
    WorkspaceQuery,
    SecurityQuery,
    ProfileQuery,
    NotificationQuery,
    MailboxQuery,
    ContactQuery,
    ActivityQuery,
    EventQuery,
    ServiceAccountQuery,
    WebhookQuery,
    CalendarQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    IdentityMutation,
    ProfileMutation,
    WorkspaceMutation,
    TokenMutation,
    SecurityMutation,
    NotificationMutation,
    MailboxMutation,
    ContactMutation,
    ServiceAccountMutation,
    PlatformEventMutation,
    WebhookMutation,
    AvailabilityMutation,
    CalendarMutation,
    RecoveryMutation,
    ExportMutation,
    DeletionMutation,
    PasskeyMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(
    IdentitySubscription,
    NotificationSubscription,
    MailboxSubscription,
    ActivitySubscription,
    AvailabilitySubscription,
);

pub type ConciergeSchema = Schema<Query, Mutation, Subscription>;

/// The schema with its limits, without services: enough to print the SDL.
pub fn schema_builder(limits: limits::QueryLimits) -> async_graphql::SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query::default(), Mutation::default(), Subscription::default())
        // The parser's own guard against stack exhaustion; the depth limit proper is checked
        // after validation by the limits extension, with a typed error.
        .limit_recursive_depth(64)
        .limit_directives(16)
        .extension(limits)
}

pub fn build_schema(config: &Config, services: Services) -> ConciergeSchema {
    let loaders = loaders::Loaders::new(&services);
    let mut builder = schema_builder(limits::QueryLimits::from_config(config)).data(std::sync::Arc::new(services)).data(loaders);
    if config.introspection == crate::config::Introspection::Off {
        // For nobody, then: the limits extension refuses `__schema` and `__type` with a typed
        // error first; these make sure nothing else answers them or suggests field names.
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}

/// The SDL as `concierge schema` prints it and `schema.graphql` holds it.
pub fn sdl() -> String {
    schema_builder(limits::QueryLimits::from_config(&Config::defaults())).finish().sdl()
}
