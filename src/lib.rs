//! git-migrate: version a PostgreSQL schema and its Hasura metadata by git commit.
//!
//! The library reads projects straight out of git objects ([`source`]), reads the ledger the
//! tool keeps in the database ([`ledger`]), plans with a pure function ([`plan`]) fed by an I/O
//! edge ([`gather`]), and runs plans in one transaction ([`execute`]). The binary's command
//! layer lives in [`cli`]; nothing outside it prints.

#![warn(missing_docs)]

pub mod check;
pub mod checksum;
pub mod cli;
pub mod config;
pub mod db;
pub mod execute;
pub mod fixtures;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod gather;
pub mod hooks;
pub mod interrupt;
pub mod ledger;
pub mod metadata;
pub mod plan;
pub mod project;
pub mod quote;
pub mod schema;
pub mod scratch;
pub mod source;
pub mod verify;
pub mod yaml;
