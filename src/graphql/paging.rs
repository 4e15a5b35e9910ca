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
    Ok((page_size("first", first)?, cursor("after", after)?))
}

/// A page size (`first` or `last`): 1–100, default 20.
fn page_size(field: &'static str, n: Option<i32>) -> Result<usize> {
    usize::try_from(n.unwrap_or(DEFAULT_PAGE))
        .ok()
        .filter(|n| (1..=MAX_PAGE).contains(n))
        .ok_or_else(|| Error::invalid(field, format!("must be between 1 and {MAX_PAGE}")))
}

/// A cursor (`after` or `before`) this connection handed out.
fn cursor(field: &'static str, c: Option<String>) -> Result<Option<Uuid>> {
    c.map(|c| OpaqueCursor::<Uuid>::decode_cursor(&c).map(|c| c.0))
        .transpose()
        .map_err(|_| Error::invalid(field, "not a cursor from this connection"))
}

/// Which way a page of a newest-first list is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `first` items after `after` (older ones), or from the start.
    Forward { first: usize, after: Option<Uuid> },
    /// `last` items before `before` (newer ones), or the oldest, still shown newest first.
    Backward { last: usize, before: Option<Uuid> },
}

impl Direction {
    /// The keyset read: the cursor, and whether the rows wanted are newer than it (read
    /// oldest first) rather than older (read newest first).
    pub fn keyset(self) -> (Option<Uuid>, bool) {
        match self {
            Direction::Forward { after, .. } => (after, false),
            Direction::Backward { before, .. } => (before, true),
        }
    }

    /// How many rows to read.
    pub fn limit(self) -> usize {
        match self {
            Direction::Forward { first, .. } => first,
            Direction::Backward { last, .. } => last,
        }
    }
}

/// `first`/`after` or `last`/`before` (Relay), checked: mixing the two ways is refused.
pub fn two_way_page_args(first: Option<i32>, after: Option<String>, last: Option<i32>, before: Option<String>) -> Result<Direction> {
    if last.is_none() && before.is_none() {
        let (first, after) = page_args(first, after)?;
        return Ok(Direction::Forward { first, after });
    }
    if first.is_some() || after.is_some() {
        return Err(Error::invalid("last", "page forward with first and after, or backward with last and before, not both"));
    }
    Ok(Direction::Backward { last: page_size("last", last)?, before: cursor("before", before)? })
}

/// A page read in `direction` from a newest-first list keyed by UUIDv7: `rows` as the store
/// returned them (newest first going forward, oldest first going backward, one more than
/// asked for), put in list order, with `(hasPreviousPage, hasNextPage)`.
pub fn settle<T>(direction: Direction, rows: Vec<T>) -> (Vec<T>, bool, bool) {
    let (mut rows, more) = crate::db::split_page(rows, direction.limit());
    match direction {
        Direction::Forward { after, .. } => (rows, after.is_some(), more),
        Direction::Backward { before, .. } => {
            rows.reverse();
            (rows, more, before.is_some())
        }
    }
}

/// A page of a short list held in memory (a user's sessions, tokens, mailboxes,
/// memberships), read in `direction`; cursors are the items' ids. With
/// `(hasPreviousPage, hasNextPage)`. A cursor of an item no longer listed is refused.
pub fn slice<T>(items: Vec<T>, id: impl Fn(&T) -> Uuid, direction: Direction) -> Result<(Vec<T>, bool, bool)> {
    let len = items.len();
    let position = |cursor: Uuid, field: &'static str| {
        items.iter().position(|item| id(item) == cursor).ok_or_else(|| Error::invalid(field, "this item is no longer listed; start again"))
    };
    let (start, end) = match direction {
        Direction::Forward { first, after } => {
            let start = match after {
                Some(cursor) => position(cursor, "after")? + 1,
                None => 0,
            };
            (start, (start + first).min(len))
        }
        Direction::Backward { last, before } => {
            let end = match before {
                Some(cursor) => position(cursor, "before")?,
                None => len,
            };
            (end.saturating_sub(last), end)
        }
    };
    let page = items.into_iter().skip(start).take(end - start).collect();
    Ok((page, start > 0, end < len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_ways_are_not_mixed_and_limits_hold() {
        assert_eq!(two_way_page_args(None, None, None, None).unwrap(), Direction::Forward { first: 20, after: None });
        assert_eq!(two_way_page_args(None, None, Some(5), None).unwrap(), Direction::Backward { last: 5, before: None });
        assert!(two_way_page_args(Some(5), None, Some(5), None).is_err());
        assert!(two_way_page_args(None, Some("x".into()), Some(5), None).is_err());
        assert!(two_way_page_args(None, None, Some(0), None).is_err());
        assert!(two_way_page_args(None, None, Some(101), None).is_err());
        assert!(two_way_page_args(None, None, None, Some("not a cursor".into())).is_err());
    }

    #[test]
    fn a_short_list_pages_both_ways() {
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let page = |d| slice(ids.clone(), |u| *u, d).unwrap();
        assert_eq!(page(Direction::Forward { first: 2, after: None }), (ids[0..2].to_vec(), false, true));
        assert_eq!(page(Direction::Forward { first: 2, after: Some(ids[3]) }), (ids[4..5].to_vec(), true, false));
        assert_eq!(page(Direction::Backward { last: 2, before: None }), (ids[3..5].to_vec(), true, false));
        assert_eq!(page(Direction::Backward { last: 2, before: Some(ids[1]) }), (ids[0..1].to_vec(), false, true));
        assert!(slice(ids.clone(), |u| *u, Direction::Forward { first: 2, after: Some(Uuid::nil()) }).is_err());
    }

    #[test]
    fn a_backward_page_is_put_back_in_list_order() {
        // The store read 4 rows oldest first for `last: 3`: one more exists.
        let (rows, previous, next) = settle(Direction::Backward { last: 3, before: Some(Uuid::nil()) }, vec![1, 2, 3, 4]);
        assert_eq!((rows, previous, next), (vec![3, 2, 1], true, true));
        let (rows, previous, next) = settle(Direction::Forward { first: 3, after: None }, vec![9, 8]);
        assert_eq!((rows, previous, next), (vec![9, 8], false, false));
    }
}
