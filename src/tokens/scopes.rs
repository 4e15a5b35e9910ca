//! Every scope a token can carry, in one table: its name, what it grants and who may hold it.
//! The resolvers check the enums made from it, and the README's list of scopes is checked
//! against [`markdown`] by a test, so the documentation cannot drift from the checks.
//!
//! Personal access tokens and service-account tokens have separate vocabularies: a personal
//! token never carries a service scope, and a service token never carries a user scope.

/// Who may hold a scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// A user's personal access token (a session holds every user scope).
    PersonalToken,
    /// A service account's token.
    ServiceAccount,
}

impl Holder {
    fn label(self) -> &'static str {
        match self {
            Holder::PersonalToken => "personal access token",
            Holder::ServiceAccount => "service-account token",
        }
    }
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct ScopeSpec {
    /// As clients write it, e.g. `profile:read`.
    pub name: &'static str,
    pub holder: Holder,
    /// What it grants, for people.
    pub grants: &'static str,
}

/// Defines a scope enum and its rows of [`TABLE`] from one list, so a scope cannot exist
/// without saying what it grants and who holds it.
macro_rules! scope_enum {
    ($enum:ident, $rows:ident, $holder:ident, { $( $variant:ident = $name:literal : $grants:literal, )* }) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $enum {
            $( #[doc = $grants] $variant, )*
        }

        impl $enum {
            pub const ALL: &'static [$enum] = &[ $( $enum::$variant, )* ];

            /// The scope as clients write it.
            pub fn as_str(self) -> &'static str {
                match self { $( $enum::$variant => $name, )* }
            }

            /// Its row of the table.
            pub fn spec(self) -> ScopeSpec {
                ScopeSpec { name: self.as_str(), holder: Holder::$holder, grants: self.grants() }
            }

            fn grants(self) -> &'static str {
                match self { $( $enum::$variant => $grants, )* }
            }

            /// The scope named `raw` (surrounding blanks ignored), if this holder may have it.
            pub fn from_name(raw: &str) -> Option<$enum> {
                Self::ALL.iter().copied().find(|s| s.as_str() == raw.trim())
            }

            /// Scopes as stored: space-separated.
            pub fn join(scopes: &[$enum]) -> String {
                scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
            }

            /// What was stored; names no longer known are dropped.
            pub fn split(stored: &str) -> Vec<$enum> {
                stored.split_whitespace().filter_map($enum::from_name).collect()
            }
        }

        const $rows: &[ScopeSpec] = &[ $( ScopeSpec { name: $name, holder: Holder::$holder, grants: $grants }, )* ];
    };
}

scope_enum!(Scope, USER_ROWS, PersonalToken, {
    ProfileRead = "profile:read": "Read the profile (`me`: names, email, phone, photo, signature, preferences).",
    ProfileWrite = "profile:write": "Change the profile, signature, photo and preferences.",
    WorkspacesRead = "workspaces:read": "See the workspaces one belongs to and their members (not their webhooks or service accounts).",
    WorkspacesWrite = "workspaces:write": "Invite members, change their roles and statuses (not webhooks or service accounts).",
    MailboxesRead = "mailboxes:read": "Read connected mailboxes and their sync state.",
    MailboxesWrite = "mailboxes:write": "Connect, change and disconnect mailboxes.",
    ActivityRead = "activity:read": "Read contacts and their activity events (mail received and sent, platform events), and webhook delivery payloads together with `webhooks:read`.",
    ContactsWrite = "contacts:write": "Create, edit and merge contacts.",
    NotificationsRead = "notifications:read": "Read notifications and the unread count.",
    MailSend = "mail:send": "Send mail through one's mailboxes (`sendEmail`).",
    CalendarsRead = "calendars:read": "Read connected calendars, their events and free/busy time.",
    CalendarsWrite = "calendars:write": "Connect calendar accounts and choose the primary and conflict calendars.",
    WebhooksRead = "webhooks:read": "List a workspace's webhooks and their delivery log (payloads need `activity:read` too); needs MANAGE_INTEGRATIONS in the workspace.",
    WebhooksWrite = "webhooks:write": "Create, change, delete and redeliver webhooks and rotate their signing secrets; needs `activity:read` too, since deliveries carry events' data, and MANAGE_INTEGRATIONS in the workspace.",
    ServiceAccountsRead = "service_accounts:read": "List a workspace's service accounts and their tokens' prefixes; needs MANAGE_INTEGRATIONS in the workspace. Creating them needs a session.",
});

scope_enum!(ServiceScope, SERVICE_ROWS, ServiceAccount, {
    EventsPublish = "events:publish": "Publish the workspace's platform events (`publishEvents`).",
    WebhooksManage = "webhooks:manage": "Manage the workspace's webhooks, their secrets and delivery log.",
});

/// The whole table: user scopes, then service scopes.
pub fn table() -> impl Iterator<Item = ScopeSpec> {
    USER_ROWS.iter().chain(SERVICE_ROWS).copied()
}

/// The table as the README shows it (a Markdown table).
pub fn markdown() -> String {
    let mut out = String::from("| scope | held by | grants |\n| --- | --- | --- |\n");
    for row in table() {
        out.push_str(&format!("| `{}` | {} | {} |\n", row.name, row.holder.label(), row.grants));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_unique_and_holders_never_share_one() {
        let names: Vec<&str> = table().map(|r| r.name).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(names.len(), unique.len(), "a scope name appears twice");
        for s in Scope::ALL {
            assert!(ServiceScope::from_name(s.as_str()).is_none());
            assert_eq!(s.spec().holder, Holder::PersonalToken);
        }
        for s in ServiceScope::ALL {
            assert!(Scope::from_name(s.as_str()).is_none());
        }
    }

    #[test]
    fn the_markdown_table_has_a_row_per_scope() {
        let md = markdown();
        for row in table() {
            assert!(md.contains(&format!("| `{}` |", row.name)), "{}", row.name);
        }
        assert_eq!(md.lines().count(), 2 + Scope::ALL.len() + ServiceScope::ALL.len());
    }

    #[test]
    fn the_readme_lists_exactly_this_table() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let begin = "<!-- scopes: generated from src/tokens/scopes.rs -->\n";
        let from = readme.find(begin).expect("the README marks its scope table") + begin.len();
        let to = from + readme[from..].find("<!-- /scopes -->").expect("the scope table ends");
        assert!(readme[from..to] == markdown(), "README.md's scope table is stale; replace it with:\n{}", markdown());
    }
}
