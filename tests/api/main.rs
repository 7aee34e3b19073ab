//! Integration tests: the real gateway over real HTTP, on Postgres and on SQLite, in front of
//! the GLM emulator, which checks the JWT and rejects what Zhipu rejects.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]
#![allow(
    clippy::disallowed_methods,
    reason = "tests spawn helpers that end with the test"
)]

mod helpers;

mod auth;
mod chat;
mod clients;
mod costs;
mod dashboards;
mod edge;
mod embeddings;
mod errors;
mod faults;
mod images;
mod journal;
mod journal_crash;
mod ledger;
mod ledger_sql;
mod limits;
mod logs;
mod operations;
mod promises;
mod responses;
mod upstream_keys;
mod upstream_retry;
