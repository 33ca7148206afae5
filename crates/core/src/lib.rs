//! The core of git-migrate: version a PostgreSQL schema and its Hasura metadata by git commit.
//!
//! The core reads projects straight out of git objects ([`source`]), reads the ledger the tool
//! keeps in the database ([`ledger`]), plans with a pure function ([`plan`]) fed by an I/O edge
//! ([`gather`]), and runs plans in one transaction ([`execute`]). The command line lives in
//! another crate (`git-migrate`), the only one that parses arguments or prints: nothing here
//! writes to stdout or stderr, and nothing here knows that crate.
//!
//! # Layers
//!
//! Each module may use the modules of its own layer or of the layers below it, never those
//! above; and no chain of `use`s between files may close a cycle. `tests/test_layering.rs`
//! reads the module graph and fails on either.
//!
//! 1. Foundations, which use only each other: [`quote`], [`checksum`], [`yaml`],
//!    [`interrupt`], [`db`], [`scratch`], [`project`] (what a migration is, its SQL and its
//!    transaction control), [`lint`] (the migration linter's rules over SQL text).
//! 2. Configuration: [`config`] (Hasura's `config.yaml` and `git-migrate.yaml`), [`fleet`]
//!    (the databases of a fleet, and the order a rollout starts them in).
//! 3. Reading git: [`source`].
//! 4. Models read from a project or a database: [`metadata`], [`schema`], [`verify`]
//!    (fingerprints, replays).
//! 5. Deciding: [`plan`], a pure function of the target project and the live state, whose
//!    input types (`LiveState`, `AppliedMigration`, `Problem`) the layers above fill in;
//!    [`planfile`], a plan written to a file for review and the checks that it still holds.
//! 6. The ledger in the database: [`ledger`].
//! 7. Gathering facts and running plans: [`gather`], [`execute`].
//! 8. What the commands build on: [`check`] (the rules `git migrate check` applies over a
//!    range of commits), [`hooks`] (installing git hooks), [`authoring`] (creating, squashing
//!    and deleting migrations in the working tree), [`seed`] (Hasura's seeds).
//! 9. Entry points for fuzzing: `fuzz_targets`.

pub mod authoring;
pub mod check;
pub mod checksum;
pub mod config;
pub mod db;
pub mod execute;
pub mod fleet;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod gather;
pub mod hooks;
pub mod interrupt;
pub mod ledger;
pub mod lint;
pub mod metadata;
pub mod plan;
pub mod planfile;
pub mod project;
pub mod quote;
pub mod schema;
pub mod scratch;
pub mod seed;
pub mod source;
pub mod verify;
pub mod yaml;
