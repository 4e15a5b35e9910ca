//! Recurrence expansion (being written).
