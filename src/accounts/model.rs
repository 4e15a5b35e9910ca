//! Ids the connected-account domains share.

crate::ids::id_type!(
    /// A connected mailbox. Calendar accounts that came with the same sign-in, and the activity
    /// events its mail became, refer to it.
    MailboxId,
    "a mailbox"
);
