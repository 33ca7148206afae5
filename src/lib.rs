//! git-migrate's command line: argument parsing ([`cli`]), terminal output, and the sample
//! projects of `git migrate demo` ([`fixtures`]). Everything it does is built on the core crate,
//! `git_migrate_core`; this crate is the only one that prints.

pub mod cli;
pub mod fixtures;
