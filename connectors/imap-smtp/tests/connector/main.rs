//! Live tests of the IMAP/SMTP connector against the real mail lab (scripts/mail-lab), all
//! in one binary. Each test starts its own lab unless `CONCIERGE_TEST_MAIL_LAB` names one.

mod gmail;
mod kit;
mod lab;
mod oauth;
mod send;
mod sent;
mod sync;
mod throughput;
mod tls_modes;
