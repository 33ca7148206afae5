//! Failed attempts: a deployment that failed and was rolled back leaves the schema, the data
//! and the ledger's state exactly as they were, but its history records the attempt (status
//! `failed`), so that `log` shows it and `promote` refuses to copy an environment whose last
//! deployment failed.

use super::{q, Ledger, LedgerError};
use postgres::types::Type;
use postgres::GenericClient;

/// One failed attempt.
#[derive(Clone, Debug)]
pub struct FailedAttempt {
    /// deploy | rollback | apply | metadata.
    pub kind: String,
    /// The revision as typed.
    pub target_ref: Option<String>,
    /// The commit the database stays at.
    pub from_commit: Option<String>,
    /// The commit it was meant to reach.
    pub to_commit: Option<String>,
    /// Who.
    pub actor: String,
    /// The error, as shown to the user (secrets already scrubbed).
    pub error: String,
    /// Seconds the attempt ran.
    pub seconds: f64,
}

impl Ledger {
    /// Appends a `failed` deployment row (its own statement, outside any transaction). Call
    /// it only when the ledger exists: nothing is created for a failure.
    pub fn record_failure(
        &self,
        c: &mut impl GenericClient,
        a: &FailedAttempt,
    ) -> Result<Option<i64>, LedgerError> {
        let d = self.t("deployments");
        let plan = serde_json::json!({ "error": a.error }).to_string();
        let sql = format!(
            "INSERT INTO {d} (started_at, finished_at, actor, tool_version, kind, target_ref,
                              from_commit, to_commit, status, plan)
             SELECT clock_timestamp() - make_interval(secs => $7), clock_timestamp(), $1, $2, $3, $4, $5, $6,
                    'failed', $8::jsonb
             RETURNING id"
        );
        let rows = c
            .query_typed(
                &sql,
                &[
                    (&a.actor, Type::TEXT),
                    (&env!("CARGO_PKG_VERSION"), Type::TEXT),
                    (&a.kind, Type::TEXT),
                    (&a.target_ref, Type::TEXT),
                    (&a.from_commit, Type::TEXT),
                    (&a.to_commit, Type::TEXT),
                    (&a.seconds, Type::FLOAT8),
                    (&plan, Type::TEXT),
                ],
            )
            .map_err(q("recording the failed attempt"))?;
        Ok(rows.first().map(|r| r.get(0)))
    }
}
