//! The profile: personal data, language, login email change, photo and signature.

pub mod photo;
pub mod signature;
