//! Relay-style paging arguments, read the same way by every connection.

use async_graphql::connection::{CursorType as _, OpaqueCursor};
use uuid::Uuid;

use crate::error::{Error, Result};

/// Items per page when `first` is not given.
pub const DEFAULT_PAGE: i32 = 20;
/// Most items one page may ask for.
pub const MAX_PAGE: usize = 100;

/// `first` (1–100, default 20) and `after` (a cursor this connection handed out), checked.
pub fn page_args(first: Option<i32>, after: Option<String>) -> Result<(usize, Option<Uuid>)> {
    let first = usize::try_from(first.unwrap_or(DEFAULT_PAGE))
        .ok()
        .filter(|n| (1..=MAX_PAGE).contains(n))
        .ok_or_else(|| Error::invalid("first", format!("must be between 1 and {MAX_PAGE}")))?;
    let after = after
        .map(|c| OpaqueCursor::<Uuid>::decode_cursor(&c).map(|c| c.0))
        .transpose()
        .map_err(|_| Error::invalid("after", "not a cursor from this connection"))?;
    Ok((first, after))
}
