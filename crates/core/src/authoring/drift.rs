//! `create NAME --from-live` and `create NAME --from REV1 --to REV2` (issue 15): a migration
//! whose up is the schema difference between two states and whose down is its inverse, both
//! from the schema differ. Pure: models in, file texts out; the caller reads the models, writes
//! the folder through [`super::create`] and proves the round trip
//! ([`crate::verify::round_trip`]).

use crate::schema::{diff, script, DiffError, Model, Statement};

/// The texts of a migration between two schemas.
#[derive(Debug, Clone)]
pub struct DriftMigration {
    /// up.sql: FROM to TO.
    pub up: String,
    /// down.sql: TO back to FROM.
    pub down: String,
    /// The up's statements.
    pub up_statements: Vec<Statement>,
    /// The down's statements.
    pub down_statements: Vec<Statement>,
}

impl DriftMigration {
    /// What the down destroys (a column or table the up made, and its data).
    pub fn down_destroys(&self) -> Vec<&str> {
        self.down_statements
            .iter()
            .filter_map(|s| s.destroys.as_deref())
            .collect()
    }
}

/// The migration from `from` to `to`, `None` when the schemas are the same. `from_label` and
/// `to_label` name the states in the files' first lines (`v1.4.0 (1a2b3c4d5e)`, `the live
/// database`).
pub fn drift_migration(
    from: &Model,
    to: &Model,
    from_label: &str,
    to_label: &str,
) -> Result<Option<DriftMigration>, DiffError> {
    let up_statements = diff(from, to)?;
    if up_statements.is_empty() {
        return Ok(None);
    }
    let down_statements = diff(to, from)?;
    let file = |what: &str, statements: &[Statement]| {
        format!(
            "-- {what}\n-- Written by git migrate from the schema difference. It runs in the deployment's transaction.\n\n{}",
            script(statements)
        )
    };
    Ok(Some(DriftMigration {
        up: file(&format!("From {from_label} to {to_label}."), &up_statements),
        down: file(
            &format!("From {to_label} back to {from_label}."),
            &down_statements,
        ),
        up_statements,
        down_statements,
    }))
}
