//! Entity ids: a UUIDv7 (time-ordered, so ids sort by creation) wrapped in a type per entity,
//! so a mailbox id cannot be passed where a calendar id is expected.

/// Declares an id type: `new()` makes a fresh UUIDv7, `parse(field, raw)` reads one a client
/// sent (a malformed one is an INVALID error on `field`, naming what was expected). Stored as
/// the bare UUID (`sqlx(transparent)`), printed as its hyphenated form.
macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type, serde::Serialize, serde::Deserialize)]
        #[sqlx(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            pub fn new() -> Self {
                $name(uuid::Uuid::now_v7())
            }

            /// Reads an id a client sent in `field`.
            pub fn parse(field: impl Into<std::borrow::Cow<'static, str>>, raw: &str) -> $crate::error::Result<Self> {
                uuid::Uuid::parse_str(raw.trim())
                    .map($name)
                    .map_err(|_| $crate::error::Error::invalid(field, concat!("not ", $what, " id")))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

pub(crate) use id_type;
