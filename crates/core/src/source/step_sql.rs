//! A migration file's SQL as it will run: read before anything runs, its transaction wrapper
//! blanked out, its checksum taken as written.

use super::SourceError;

/// A step's SQL, read before anything runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepSql {
    /// The text (empty for a revert recorded without running).
    pub text: String,
    /// Where it comes from, for messages (path @ commit, or the ledger copy).
    pub file: String,
    /// The file starts with `-- git-migrate:no-transaction`.
    pub no_transaction: bool,
    /// A whole-file `BEGIN … COMMIT` wrapper blanked out of `text` (it runs inside the
    /// deployment transaction), described as written.
    pub wrapper: Option<String>,
    /// Transaction control that refuses the file when it runs inside a transaction.
    pub tx_control: Vec<crate::project::txcontrol::TxControl>,
    /// `sha256:…` of the file as written (apply steps; the ledger's checksum).
    pub up_sha256: Option<String>,
    /// A legacy `up.yaml`: its `run_sql` calls are the text.
    pub legacy_yaml: bool,
    /// A legacy `up.yaml`'s API calls other than `run_sql`, skipped (the metadata comes from
    /// `metadata/`).
    pub skipped_calls: Vec<String>,
}

impl StepSql {
    /// A step's SQL as read from `file`: a whole-file transaction wrapper (not in a
    /// no-transaction migration, which runs as written) is blanked out, keeping positions.
    pub fn new(raw: String, file: String) -> StepSql {
        let no_transaction = crate::project::txcontrol::is_no_transaction(&raw);
        // A no-transaction migration runs statement by statement, as written: not parsed.
        let unwrapped = match no_transaction {
            true => Ok(None),
            false => crate::project::txcontrol::runnable(&raw)
                .map(|(text, w)| w.map(|w| (text.into_owned(), w.describe()))),
        };
        let (text, wrapper, tx_control) = match unwrapped {
            Ok(Some((text, w))) => (text, Some(w), vec![]),
            Ok(None) => (raw, None, vec![]),
            Err(found) => (raw, None, found),
        };
        StepSql {
            text,
            file,
            no_transaction,
            wrapper,
            tx_control,
            up_sha256: None,
            legacy_yaml: false,
            skipped_calls: vec![],
        }
    }

    /// An up file read from git: its checksum as written, a legacy YAML migration turned into
    /// the SQL of its `run_sql` calls (the others skipped and named), then as [`StepSql::new`].
    pub(crate) fn from_up_file(
        bytes: Vec<u8>,
        path: &str,
        at: &str,
    ) -> Result<StepSql, SourceError> {
        let sha = crate::checksum::sha256_hex(&bytes);
        let legacy_yaml = crate::project::legacy::is_yaml(path);
        let (text, skipped) = super::migration_sql(bytes, path, at)?;
        let mut sql = StepSql::new(text, format!("{path} @ {at}"));
        sql.up_sha256 = Some(sha);
        sql.legacy_yaml = legacy_yaml;
        sql.skipped_calls = skipped;
        Ok(sql)
    }
}
