//! The email signature (being written).
