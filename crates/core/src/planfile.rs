//! Plan files (issue 15): the plan `git migrate plan REV --out FILE` writes for review, and the
//! checks `git migrate deploy --plan FILE` makes before it runs it.
//!
//! A plan file holds every statement the plan would run, in order and exactly as it would run,
//! with what it was computed against: the ledger (as [`ledger_digest`]), the live schema (a
//! fingerprint digest), the deployed commit, the target commit, the options that change a plan
//! and the database (redacted). The metadata is held as its digest only: the snapshot may hold
//! literal URLs, and it is read again from git at the target commit when the plan runs.
//!
//! A `digest` field is the sha256 of the canonical text of everything else (compact JSON, keys
//! sorted at every depth), so that a hand edit is found ([`PlanFile::parse`]). Every string is
//! scrubbed of the registered secrets ([`crate::db::secrets`]) before the digest is taken
//! ([`PlanFile::to_text`]).
//!
//! Deploying a plan file plans again with the recorded options and compares the new document
//! with the file ([`differences`]); under the deploy lock the executor compares the ledger and
//! the schema once more ([`Expected`]). Everything here is pure: reading and writing the file
//! and printing are the command line's.

use crate::checksum::sha256_hex;
use crate::plan::{ComputeDowns, LiveState, Mode, OutOfOrderPolicy, Plan, PlanOptions, Step};
use crate::project::Version;
use crate::source::StepSql;
use serde::{Deserialize, Serialize};

/// The format this version writes and reads.
pub const FORMAT: &str = "git-migrate-plan/1";

/// A plan file. Fields are declared in the order they print (alphabetical).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    /// Applied migrations whose up file was edited since, whose new checksum the plan records.
    pub accepted_edits: Vec<AcceptedChecksum>,
    /// When it was made (UTC, RFC 3339).
    pub created_at: String,
    /// Who made it (the actor the ledger would record).
    pub created_by: String,
    /// The database it was planned against, password redacted.
    pub database: String,
    /// `sha256:…` of the canonical text of every other field.
    pub digest: String,
    /// [`FORMAT`].
    pub format: String,
    /// The commit the ledger said the database was at (None: nothing deployed).
    pub from_commit: Option<String>,
    /// [`ledger_digest`] of the live state the plan was computed from.
    pub ledger_digest: String,
    /// Canonical `sha256:…` of the metadata the plan writes (None: the metadata does not
    /// change).
    pub metadata_digest: Option<String>,
    /// The options that change the plan.
    pub options: Options,
    /// Digest of the live schema's fingerprint (the ledger's schema and `hdb_catalog` left
    /// out).
    pub schema_digest: String,
    /// Every statement that would run, in order.
    pub statements: Vec<Statement>,
    /// The plan as `plan` printed it, for review (not compared).
    pub summary: Vec<String>,
    /// The target.
    pub to: To,
    /// The git-migrate version that wrote it.
    pub tool_version: String,
}

/// The target of a plan file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct To {
    /// The full commit id (None: the empty state, for a rollback past the first deploy).
    pub commit: Option<String>,
    /// The revision as the user gave it (None: `plan --rollback` without a revision).
    pub rev: Option<String>,
}

/// The planning options recorded in a plan file: `deploy --plan` plans with exactly these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `--accept-edited` or `policy.accept_edited`.
    pub accept_edited: bool,
    /// `--allow-empty-down`.
    pub allow_empty_down: bool,
    /// `policy.capture_downs`.
    pub capture_downs: usize,
    /// `--compute-downs[=all]` or `policy.compute_downs`.
    pub compute_downs: ComputeDowns,
    /// `--database-name` (None: default).
    pub database_name: Option<String>,
    /// `--down-from REV`.
    pub down_from: Option<String>,
    /// `--env NAME`.
    pub environment: Option<String>,
    /// deploy or rollback.
    pub mode: Mode,
    /// `--allow-out-of-order` or `policy.out_of_order`.
    pub out_of_order: OutOfOrderPolicy,
    /// `--project DIR` or git-migrate.yaml's `project`.
    pub project: Option<String>,
}

impl Options {
    /// The planner's options.
    pub fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            mode: self.mode,
            out_of_order: self.out_of_order,
            allow_empty_down: self.allow_empty_down,
            accept_edited: self.accept_edited,
            compute_downs: self.compute_downs,
            capture_downs: self.capture_downs,
        }
    }
}

/// One statement of a plan file: a migration's up or down, as it would run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// `up` or `down`.
    pub direction: String,
    /// Where the SQL comes from (path @ commit, the ledger's copy, a computed down).
    pub file: String,
    /// Migration name.
    pub name: String,
    /// The file is marked `-- git-migrate:no-transaction` (it runs outside the deployment
    /// transaction, unless it is a down recorded without running).
    pub no_transaction: bool,
    /// An empty down recorded without running (`--allow-empty-down`).
    pub noop: bool,
    /// The SQL text exactly as it would run.
    pub sql: String,
    /// Migration version.
    pub version: Version,
}

/// An edited applied migration whose new checksum the plan records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptedChecksum {
    /// The checksum recorded now.
    pub from_sha256: String,
    /// The checksum the plan records.
    pub to_sha256: String,
    /// Version.
    pub version: Version,
}

/// What a plan file is made from besides the plan.
#[derive(Clone, Debug)]
pub struct Made {
    /// When (UTC, RFC 3339; [`utc_timestamp`]).
    pub created_at: String,
    /// Who.
    pub created_by: String,
    /// The database, password redacted.
    pub database: String,
    /// The live state the plan was computed from.
    pub live: LiveState,
    /// The live schema's fingerprint digest.
    pub schema_digest: String,
    /// The revision as given.
    pub rev: Option<String>,
    /// The options that change the plan.
    pub options: Options,
    /// The plan as printed.
    pub summary: Vec<String>,
    /// The tool's version.
    pub tool_version: String,
}

/// Why a plan file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    /// Not JSON, or not an object.
    #[error("the plan file is not a JSON object: {0}")]
    NotJson(String),
    /// A format this version does not know.
    #[error("the plan file's format is {found}, not {FORMAT}")]
    UnknownFormat {
        /// The format found (or `none`).
        found: String,
    },
    /// The digest does not match the content.
    #[error("the plan file was edited after it was made: its digest is {recorded}, its content's is {computed}")]
    Tampered {
        /// The digest written in the file.
        recorded: String,
        /// The digest of its content.
        computed: String,
    },
    /// The digest matches but a field is missing or of the wrong type.
    #[error("the plan file does not have the fields of {FORMAT}: {0}")]
    Malformed(String),
}

impl PlanFile {
    /// The plan file of `plan` (whose steps' SQL is `texts`, as read for it).
    pub fn new(plan: &Plan, texts: &[StepSql], made: Made) -> PlanFile {
        PlanFile {
            accepted_edits: plan
                .accepted
                .iter()
                .map(|a| AcceptedChecksum {
                    from_sha256: a.from_sha256.clone(),
                    to_sha256: a.to_sha256.clone(),
                    version: a.version,
                })
                .collect(),
            created_at: made.created_at,
            created_by: made.created_by,
            database: made.database,
            digest: String::new(),
            format: FORMAT.into(),
            from_commit: plan.from_commit.clone(),
            ledger_digest: ledger_digest(&made.live),
            metadata_digest: plan.metadata.as_ref().map(|m| m.to_sha256.clone()),
            options: made.options,
            schema_digest: made.schema_digest,
            statements: statements(plan, texts),
            summary: made.summary,
            to: To {
                commit: plan.to_commit.clone(),
                rev: made.rev,
            },
            tool_version: made.tool_version,
        }
    }

    /// The file's text: every string scrubbed of the registered secrets, then the digest of
    /// the rest set, pretty-printed with keys sorted.
    pub fn to_text(&self) -> String {
        let mut v = serde_json::to_value(self).expect("strings, numbers and lists serialize");
        crate::db::secrets::scrub_json(&mut v);
        let obj = v.as_object_mut().expect("a struct serializes to an object");
        obj.remove("digest");
        let digest = content_digest(&serde_json::Value::Object(obj.clone()));
        obj.insert("digest".into(), serde_json::Value::String(digest));
        let mut text = serde_json::to_string_pretty(&v).expect("a value serializes");
        text.push('\n');
        text
    }

    /// Reads a plan file: the format first, then the digest against the content, then the
    /// fields.
    pub fn parse(text: &str) -> Result<PlanFile, PlanFileError> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| PlanFileError::NotJson(e.to_string()))?;
        let serde_json::Value::Object(mut obj) = v else {
            return Err(PlanFileError::NotJson("not an object".into()));
        };
        match obj.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            found => {
                return Err(PlanFileError::UnknownFormat {
                    found: found.unwrap_or("none").to_string(),
                })
            }
        }
        let recorded = obj
            .remove("digest")
            .and_then(|d| d.as_str().map(str::to_string))
            .unwrap_or_default();
        let computed = content_digest(&serde_json::Value::Object(obj.clone()));
        if recorded != computed {
            return Err(PlanFileError::Tampered { recorded, computed });
        }
        obj.insert("digest".into(), serde_json::Value::String(recorded));
        serde_json::from_value(serde_json::Value::Object(obj))
            .map_err(|e| PlanFileError::Malformed(e.to_string()))
    }

    /// What the executor checks under the deploy lock.
    pub fn expected(&self) -> Expected {
        Expected {
            ledger_digest: self.ledger_digest.clone(),
            schema_digest: self.schema_digest.clone(),
        }
    }
}

/// The statements of `plan`, in order: each revert's down and each apply's up, with the SQL
/// text the executor runs.
pub fn statements(plan: &Plan, texts: &[StepSql]) -> Vec<Statement> {
    plan.steps
        .iter()
        .zip(texts)
        .map(|(step, sql)| {
            let (direction, version, name, noop) = match step {
                Step::Revert {
                    version,
                    name,
                    noop,
                    ..
                } => ("down", *version, name, *noop),
                Step::Apply { version, name, .. } => ("up", *version, name, false),
            };
            Statement {
                direction: direction.into(),
                file: sql.file.clone(),
                name: name.clone(),
                no_transaction: sql.no_transaction,
                noop,
                sql: sql.text.clone(),
                version,
            }
        })
        .collect()
}

/// `sha256:…` of the live state as the planner reads it: applied versions with their
/// checksums, blob and tree ids, commits, down copies and dirty flags; the deployed commit;
/// the live metadata's hash and tree. Equal digests mean the planner saw the same ledger.
pub fn ledger_digest(live: &LiveState) -> String {
    let v = serde_json::to_value(live).expect("strings, numbers and lists serialize");
    content_digest(&v)
}

/// The digest of a JSON value's canonical text (compact, keys sorted at every depth:
/// serde_json's maps are sorted).
fn content_digest(v: &serde_json::Value) -> String {
    sha256_hex(&serde_json::to_vec(v).expect("a value serializes"))
}

/// What `deploy --plan` checks again under the deploy lock, before anything runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// [`ledger_digest`] recorded in the plan file.
    pub ledger_digest: String,
    /// The schema fingerprint digest recorded in the plan file.
    pub schema_digest: String,
}

impl Expected {
    /// What no longer matches, one line each (empty: all matches).
    pub fn moved(&self, ledger_now: &str, schema_now: &str) -> Vec<String> {
        let mut out = Vec::new();
        if ledger_now != self.ledger_digest {
            out.push(format!(
                "the ledger changed since the plan was made: its digest is {ledger_now}, the plan file's {}",
                self.ledger_digest
            ));
        }
        if schema_now != self.schema_digest {
            out.push(format!(
                "the live schema changed since the plan was made: its fingerprint digest is {schema_now}, the plan file's {}",
                self.schema_digest
            ));
        }
        out
    }
}

/// What differs between the plan file `file` and the document `now` made again from the same
/// target and options, one line each (empty: the file can run). The time, the author, the
/// tool's version and the printed summary are not compared.
pub fn differences(file: &PlanFile, now: &PlanFile) -> Vec<String> {
    let mut out = Vec::new();
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "none".into());
    if file.database != now.database {
        out.push(format!(
            "the database differs: the plan file was made for {}, this is {}",
            file.database, now.database
        ));
    }
    if file.options != now.options {
        out.push("the planning options differ from the plan file's".into());
    }
    if file.from_commit != now.from_commit {
        out.push(format!(
            "the deployed commit moved: the plan file was made at {}, the ledger now says {}",
            opt(&file.from_commit),
            opt(&now.from_commit)
        ));
    }
    if file.to.commit != now.to.commit {
        out.push(format!(
            "the target commit differs: the plan file's is {}, the new plan's {}",
            opt(&file.to.commit),
            opt(&now.to.commit)
        ));
    }
    if file.ledger_digest != now.ledger_digest {
        out.push(format!(
            "the ledger changed since the plan was made: its digest is {}, the plan file's {}",
            now.ledger_digest, file.ledger_digest
        ));
    }
    if file.schema_digest != now.schema_digest {
        out.push(format!(
            "the live schema changed since the plan was made: its fingerprint digest is {}, the plan file's {}",
            now.schema_digest, file.schema_digest
        ));
    }
    if file.statements != now.statements {
        out.push(statement_difference(&file.statements, &now.statements));
    }
    if file.accepted_edits != now.accepted_edits {
        out.push("the accepted checksums of edited migrations differ from the plan file's".into());
    }
    if file.metadata_digest != now.metadata_digest {
        out.push(format!(
            "the metadata differs: the plan file writes {}, the new plan {}",
            opt(&file.metadata_digest),
            opt(&now.metadata_digest)
        ));
    }
    out
}

/// The first statement that differs, named.
fn statement_difference(file: &[Statement], now: &[Statement]) -> String {
    let label = |s: &Statement| format!("{} of {}_{}", s.direction, s.version, s.name);
    for (i, (f, n)) in file.iter().zip(now).enumerate() {
        if f != n {
            let what = if label(f) != label(n) {
                format!("the plan file has {}, the new plan {}", label(f), label(n))
            } else if f.sql != n.sql {
                format!("the SQL of {} differs", label(f))
            } else {
                format!("{} differs (source or transaction)", label(f))
            };
            return format!("statement {} differs from the new plan's: {what}", i + 1);
        }
    }
    format!(
        "the plan file has {} statement(s), the new plan {}",
        file.len(),
        now.len()
    )
}

/// `secs` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PlanFile {
        PlanFile {
            accepted_edits: vec![],
            created_at: utc_timestamp(0),
            created_by: "me".into(),
            database: "host=db dbname=app".into(),
            digest: String::new(),
            format: FORMAT.into(),
            from_commit: None,
            ledger_digest: sha256_hex(b"ledger"),
            metadata_digest: None,
            options: Options {
                accept_edited: false,
                allow_empty_down: false,
                capture_downs: 20,
                compute_downs: ComputeDowns::Off,
                database_name: None,
                down_from: None,
                environment: None,
                mode: Mode::Deploy,
                out_of_order: OutOfOrderPolicy::MergeAware,
                project: None,
            },
            schema_digest: sha256_hex(b"schema"),
            statements: vec![Statement {
                direction: "up".into(),
                file: "migrations/1_a/up.sql @ abc".into(),
                name: "a".into(),
                no_transaction: false,
                noop: false,
                sql: "create table a (id int);".into(),
                version: 1,
            }],
            summary: vec!["Plan: deploy to v1".into()],
            to: To {
                commit: Some("abc".into()),
                rev: Some("v1".into()),
            },
            tool_version: "0".into(),
        }
    }

    #[test]
    fn a_written_file_reads_back_and_a_hand_edit_is_found() {
        let text = sample().to_text();
        let back = PlanFile::parse(&text).unwrap();
        assert_eq!(back.statements, sample().statements);
        assert!(crate::checksum::is_checksum(&back.digest));
        let edited = text.replace("create table a", "create table b");
        assert!(matches!(
            PlanFile::parse(&edited),
            Err(PlanFileError::Tampered { .. })
        ));
        let future = text.replace(FORMAT, "git-migrate-plan/9");
        assert!(matches!(
            PlanFile::parse(&future),
            Err(PlanFileError::UnknownFormat { .. })
        ));
    }

    #[test]
    fn registered_secrets_are_scrubbed_before_the_digest() {
        crate::db::secrets::register_secret("pl4nf1le-secret");
        let mut f = sample();
        f.database = "postgresql://u:pl4nf1le-secret@db/app".into();
        let text = f.to_text();
        assert!(!text.contains("pl4nf1le-secret"), "{text}");
        assert_eq!(
            PlanFile::parse(&text).unwrap().database,
            "postgresql://u:***@db/app"
        );
    }

    #[test]
    fn differences_name_what_moved() {
        let a = sample();
        assert!(differences(&a, &a).is_empty());
        let mut b = sample();
        b.created_at = "later".into();
        b.summary = vec![];
        assert!(differences(&a, &b).is_empty());
        b.statements[0].sql = "drop table a;".into();
        b.from_commit = Some("def".into());
        let d = differences(&a, &b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[1].contains("the SQL of up of 1_a differs"), "{d:?}");
        let e = a.expected();
        assert!(e.moved(&a.ledger_digest, &a.schema_digest).is_empty());
        assert_eq!(e.moved("x", &a.schema_digest).len(), 1);
    }

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
