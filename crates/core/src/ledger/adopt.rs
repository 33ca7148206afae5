//! Adopting a database the Hasura CLI manages (design §5.2): its state lists applied versions
//! and the ledger records none, so ledger rows are created from that state, with checksums,
//! blob ids and folder tree ids read from a revision. Nothing is executed.
//!
//! [`compute`] is the pure-ish half (it reads git, not the database): which store to trust,
//! dirty flags, the rows, and what the revision lacks or adds. [`Ledger::record_adoption`]
//! writes it inside the caller's transaction as one deployment of kind `adopt`.
//!
//! **The commit the database is at.** An adoption records `to_commit` = the revision only when
//! Hasura's state lists exactly the revision's migrations. Otherwise `to_commit` is null: the
//! database matches no known commit, and claiming one would mislead `status`, the
//! out-of-order check (a version present at the "deployed" commit but not applied would be
//! refused as an unexplained gap) and rollbacks (the deployed commit is where downs are looked
//! up first). Each adopted row still names the revision in `applied_commit` when the revision
//! has its files, so downs are found there; the revision is also kept in the deployment's
//! `plan` (`source_commit`). The next deploy records a real commit.
//!
//! **Versions the revision lacks** are adopted anyway (Hasura says they are applied, and
//! re-running or forgetting them would be wrong), with no name, no checksum and no down. A
//! later deploy treats them as applied migrations without files: a target that lacks them
//! plans to revert them, which is refused (no down.sql anywhere) until a down is named with
//! `--down-from REV` or `--allow-empty-down` drops them without running anything.

use super::cli_state::{self, HasuraState, HasuraStores, StateStore};
use super::{q, DbState, Ledger, LedgerError, LedgerRow};
use crate::checksum::sha256_hex;
use crate::plan::{AppliedMigration, LiveState, Mode, Problem, ProblemKind};
use crate::project::Version;
use crate::source::{Project, Repo, SourceError};
use postgres::types::Type;
use postgres::GenericClient;
use std::collections::BTreeSet;

/// What to adopt and how to treat dirty versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdoptOptions {
    /// The database whose state is read (the key under `cli_state.migrations`).
    pub database: String,
    /// Dirty versions to adopt as applied (the user checked they finished).
    pub accept_dirty: Vec<Version>,
    /// Dirty versions to drop from Hasura's state (the user checked they did not run).
    pub forget_dirty: Vec<Version>,
}

impl Default for AdoptOptions {
    fn default() -> Self {
        AdoptOptions {
            database: cli_state::DEFAULT_DATABASE.into(),
            accept_dirty: vec![],
            forget_dirty: vec![],
        }
    }
}

/// Why an adoption cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    /// Dirty versions in Hasura's state (one problem each, with how to repair).
    #[error("cannot adopt the database: {} problem(s)", .0.len())]
    Refused(Vec<Problem>),
    /// `--accept-dirty` / `--forget-dirty` named a version that is not dirty.
    #[error("{0}")]
    Flag(String),
    /// Reading the revision.
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// One adopted version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdoptedRow {
    /// The ledger row (empty name and checksum when the revision lacks the version).
    pub row: LedgerRow,
    /// The commit its files were read from (`None`: not in the revision, or not a commit).
    pub applied_commit: Option<String>,
    /// Whether the revision has the version's files.
    pub in_revision: bool,
}

/// The store that was not read, when it disagrees with the one that was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherStore {
    /// Which.
    pub store: StateStore,
    /// Versions only it lists.
    pub only_there: Vec<Version>,
    /// Versions only the store read lists.
    pub only_here: Vec<Version>,
}

/// A computed adoption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adoption {
    /// The store the versions come from.
    pub store: StateStore,
    /// The database name.
    pub database: String,
    /// The revision as typed.
    pub reference: String,
    /// Its commit (`None` for the index or the working tree).
    pub commit: Option<String>,
    /// Whether the files came from the index or the working tree.
    pub dirty_tree: bool,
    /// Every adopted version, ascending.
    pub rows: Vec<AdoptedRow>,
    /// Adopted versions the revision lacks.
    pub missing: Vec<Version>,
    /// Versions of the revision that Hasura's state does not list (left for a deploy).
    pub pending: Vec<Version>,
    /// Dirty versions adopted as applied (`--accept-dirty`).
    pub accepted_dirty: Vec<Version>,
    /// Dirty versions dropped from Hasura's state (`--forget-dirty`).
    pub forgotten_dirty: Vec<Version>,
    /// The other store, when it exists and lists different versions.
    pub other_store: Option<OtherStore>,
}

/// Whether a command of `mode` adopts a database the Hasura CLI manages before planning
/// ([`Mode::adopts`]).
pub fn adopts_in(mode: Mode) -> bool {
    mode.adopts()
}

/// Whether `state` is a database to adopt: the ledger records no migration and Hasura's state
/// lists versions for the `default` database.
pub fn needed(state: &DbState) -> bool {
    state.live.applied.is_empty()
        && state
            .hasura_state
            .as_ref()
            .is_some_and(|h| h.lists_versions(state.database_name()))
}

/// How many versions Hasura's state lists when the database needs adopting ([`needed`]): the
/// planner's `Facts::unadopted`.
pub fn unadopted(state: &DbState) -> Option<i64> {
    needed(state).then_some(state.hasura_applied)
}

fn dirty_problem(store: &StateStore, v: Version) -> Problem {
    let flag = match store {
        StateStore::SchemaMigrations => format!("{store} has version {v} with dirty = true"),
        StateStore::CliState { database } => format!(
            "hdb_catalog.hdb_version.cli_state has \"migrations\": {{\"{database}\": {{\"{v}\": true}}}}"
        ),
    };
    Problem {
        kind: ProblemKind::Dirty,
        version: Some(v),
        message: format!(
            "Hasura's state marks migration {v} dirty: it started and may not have finished"
        ),
        causes: vec![flag],
        hints: vec![
            format!("check by hand whether everything migration {v} does is in the database"),
            format!(
                "if it is: `git migrate adopt --accept-dirty {v}` adopts it as applied and clears the flag \
                 (Hasura CLI: `hasura migrate apply --version {v} --type up --skip-execution`)"
            ),
            format!(
                "if it is not (or you undid it): `git migrate adopt --forget-dirty {v}` drops it from Hasura's state \
                 so that the next deploy applies it (Hasura CLI: `hasura migrate delete --version {v} --server`)"
            ),
        ],
    }
}

/// Computes the adoption of Hasura's state with the files of `project` (read at the
/// revision `reference`). `None` when no store lists a version for the database.
///
/// The store is the one the Hasura CLI of the project's config version reads (v2:
/// schema_migrations, v3: cli_state), or the other one when that lists nothing. Every
/// migration folder of the project is resolved; the up and down files of adopted versions are
/// read to compute their checksums.
pub fn compute(
    repo: &Repo,
    hasura: &HasuraState,
    project: &mut Project,
    reference: &str,
    options: &AdoptOptions,
) -> Result<Option<Adoption>, AdoptError> {
    let Some((store, listed)) = hasura.choose(project.config.version, &options.database) else {
        return Ok(None);
    };
    for (flag, list) in [
        ("--accept-dirty", &options.accept_dirty),
        ("--forget-dirty", &options.forget_dirty),
    ] {
        for v in list {
            match listed.get(v) {
                Some(true) => {}
                Some(false) => {
                    return Err(AdoptError::Flag(format!(
                        "{flag} {v}: {store} lists version {v} as applied and clean, not dirty"
                    )))
                }
                None => {
                    return Err(AdoptError::Flag(format!(
                        "{flag} {v}: {store} does not list version {v}"
                    )))
                }
            }
        }
    }
    if let Some(v) = options
        .accept_dirty
        .iter()
        .find(|v| options.forget_dirty.contains(v))
    {
        return Err(AdoptError::Flag(format!(
            "version {v} is given to both --accept-dirty and --forget-dirty"
        )));
    }
    let mut applied = BTreeSet::new();
    let (mut accepted, mut forgotten, mut problems) = (vec![], vec![], vec![]);
    for (&v, &dirty) in listed {
        if !dirty {
            applied.insert(v);
        } else if options.accept_dirty.contains(&v) {
            applied.insert(v);
            accepted.push(v);
        } else if options.forget_dirty.contains(&v) {
            forgotten.push(v);
        } else {
            problems.push(dirty_problem(&store, v));
        }
    }
    if !problems.is_empty() {
        return Err(AdoptError::Refused(problems));
    }
    let other_store = [
        StateStore::SchemaMigrations,
        StateStore::CliState {
            database: options.database.clone(),
        },
    ]
    .into_iter()
    .filter(|s| *s != store)
    .find_map(|s| {
        let other = hasura.store(&s)?;
        let only_there: Vec<Version> = other
            .keys()
            .filter(|v| !listed.contains_key(v))
            .copied()
            .collect();
        let only_here: Vec<Version> = listed
            .keys()
            .filter(|v| !other.contains_key(v))
            .copied()
            .collect();
        (!other.is_empty() && (!only_there.is_empty() || !only_here.is_empty())).then_some(
            OtherStore {
                store: s,
                only_there,
                only_here,
            },
        )
    });

    let at = project.at();
    let all: Vec<Version> = project.migrations.iter().map(|m| m.version).collect();
    repo.resolve(&mut project.migrations, all, &at)?;
    let dirty_tree = project.tree.is_dirty();
    let commit = project.commit_hex().filter(|_| !dirty_tree);
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for &v in &applied {
        let found = project
            .migrations
            .get(v)
            .and_then(|m| m.up.as_ref().map(|up| (m, up)));
        let Some((m, up)) = found else {
            missing.push(v);
            rows.push(AdoptedRow {
                row: LedgerRow {
                    version: v,
                    name: String::new(),
                    up_sha256: String::new(),
                    up_blob: None,
                    down_sha256: None,
                    down_sql: None,
                    down_blob: None,
                    folder_tree: None,
                    computed_down: None,
                },
                applied_commit: None,
                in_revision: false,
            });
            continue;
        };
        let up_bytes = repo.read(&project.tree, &up.path, Some(&up.blob))?;
        let (down_sha256, down_sql, down_blob) = match &m.down {
            Some(d) => {
                let bytes = repo.read(&project.tree, &d.path, Some(&d.blob))?;
                (
                    Some(sha256_hex(&bytes)),
                    String::from_utf8(bytes).ok(),
                    Some(d.blob.clone()).filter(|_| !dirty_tree),
                )
            }
            None => (None, None, None),
        };
        rows.push(AdoptedRow {
            row: LedgerRow {
                version: v,
                name: m.name.clone(),
                up_sha256: sha256_hex(&up_bytes),
                up_blob: Some(up.blob.clone()).filter(|_| !dirty_tree),
                down_sha256,
                down_sql,
                down_blob,
                folder_tree: m.tree.clone().filter(|_| !dirty_tree),
                computed_down: None,
            },
            applied_commit: commit.clone(),
            in_revision: true,
        });
    }
    let pending = project
        .migrations
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect();
    Ok(Some(Adoption {
        store,
        database: options.database.clone(),
        reference: reference.to_string(),
        commit,
        dirty_tree,
        rows,
        missing,
        pending,
        accepted_dirty: accepted,
        forgotten_dirty: forgotten,
        other_store,
    }))
}

fn list(versions: &[Version]) -> String {
    versions
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Adoption {
    /// Whether Hasura's state lists exactly the revision's migrations (and the revision is a
    /// commit): only then does the adoption say the database is at that commit.
    pub fn exact(&self) -> bool {
        self.missing.is_empty() && self.pending.is_empty() && self.commit.is_some()
    }

    /// The commit recorded as the one the database is at (see the module documentation).
    pub fn to_commit(&self) -> Option<String> {
        self.commit.clone().filter(|_| self.exact())
    }

    /// Adopted versions, ascending.
    pub fn versions(&self) -> Vec<Version> {
        self.rows.iter().map(|r| r.row.version).collect()
    }

    /// The live state once the adoption is written: `base` with the adopted rows and
    /// deployed commit (what deploy and status plan against before anything is written).
    pub fn live(&self, base: &LiveState) -> LiveState {
        let mut live = base.clone();
        live.applied = self
            .rows
            .iter()
            .map(|r| {
                (
                    r.row.version,
                    AppliedMigration {
                        version: r.row.version,
                        name: r.row.name.clone(),
                        up_sha256: r.row.up_sha256.clone(),
                        up_blob: r.row.up_blob.clone(),
                        folder_tree: r.row.folder_tree.clone(),
                        applied_commit: r.applied_commit.clone(),
                        has_down_sql: r.row.down_sql.is_some(),
                        dirty: false,
                    },
                )
            })
            .collect();
        live.deployed_commit = self.to_commit();
        live.deployed_dirty = false;
        live
    }

    /// Warnings to show before recording it.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.missing.is_empty() {
            out.push(format!(
                "{} version(s) in {} are not in {}: {}. They are adopted as applied with no files, no checksum and no down; \
                 any deploy to a revision without them must revert them, which is refused until a down \
                 is named with --down-from REV (or --allow-empty-down drops them without running anything). \
                 Adopt at a commit that has them (adopt --commit REV) to record their files",
                self.missing.len(),
                self.store,
                self.reference,
                list(&self.missing)
            ));
        }
        if let Some(o) = &self.other_store {
            let mut parts = Vec::new();
            if !o.only_there.is_empty() {
                parts.push(format!("it also lists {}", list(&o.only_there)));
            }
            if !o.only_here.is_empty() {
                parts.push(format!("it lacks {}", list(&o.only_here)));
            }
            out.push(format!(
                "{} disagrees with {} ({}); it is not read, and from now on it is kept in step with every deployment",
                o.store,
                self.store,
                parts.join("; ")
            ));
        }
        if self.dirty_tree {
            out.push(format!(
                "{} is not a commit: checksums come from uncommitted files and no commit is recorded",
                self.reference
            ));
        }
        out
    }

    /// The deployment's `plan` document.
    pub fn record(&self) -> serde_json::Value {
        serde_json::json!({
            "mode": "adopt",
            "executed": false,
            "store": self.store.to_string(),
            "database": self.database,
            "target_ref": self.reference,
            "source_commit": self.commit,
            "exact": self.exact(),
            "missing_from_revision": self.missing,
            "not_applied": self.pending,
            "accepted_dirty": self.accepted_dirty,
            "forgotten_dirty": self.forgotten_dirty,
            "warnings": self.warnings(),
        })
    }
}

impl Ledger {
    /// Writes an adoption inside the caller's transaction: creates the ledger if missing,
    /// inserts one row per adopted version and a deployment of kind `adopt` (`to_commit` from
    /// [`Adoption::to_commit`], `applied` = the adopted versions), and clears (accepted) or
    /// removes (forgotten) dirty versions in every Hasura store that exists. Runs no migration.
    /// Returns the deployment id.
    pub fn record_adoption(
        &self,
        c: &mut impl GenericClient,
        adoption: &Adoption,
        from_commit: Option<&str>,
        actor: &str,
        hasura: HasuraStores,
    ) -> Result<i64, LedgerError> {
        self.ensure(c)?;
        if !adoption.missing.is_empty() {
            // Ledgers created before adoption existed have `up_sha256 NOT NULL`.
            c.batch_execute(&format!(
                "ALTER TABLE {} ALTER COLUMN up_sha256 DROP NOT NULL",
                self.t("migrations")
            ))
            .map_err(q("allowing unknown checksums in the ledger"))?;
        }
        let rows: Vec<&LedgerRow> = adoption.rows.iter().map(|r| &r.row).collect();
        let versions: Vec<i64> = rows.iter().map(|r| r.version).collect();
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        let up_sha: Vec<&str> = rows.iter().map(|r| r.up_sha256.as_str()).collect();
        let up_blob: Vec<Option<&str>> = rows.iter().map(|r| r.up_blob.as_deref()).collect();
        let down_sha: Vec<Option<&str>> = rows.iter().map(|r| r.down_sha256.as_deref()).collect();
        let down_sql: Vec<Option<&str>> = rows.iter().map(|r| r.down_sql.as_deref()).collect();
        let down_blob: Vec<Option<&str>> = rows.iter().map(|r| r.down_blob.as_deref()).collect();
        let folder_tree: Vec<Option<&str>> =
            rows.iter().map(|r| r.folder_tree.as_deref()).collect();
        let applied_commit: Vec<Option<&str>> = adoption
            .rows
            .iter()
            .map(|r| r.applied_commit.as_deref())
            .collect();
        let hasura = cli_state::sync_ctes(hasura, "$17", "$18", "$19");
        let sql = format!(
            "WITH d AS (
   INSERT INTO {d} (started_at, finished_at, actor, tool_version, kind, target_ref, from_commit, to_commit,
                    worktree_dirty, reverted, applied, metadata_sha256, status, plan)
   VALUES (now(), clock_timestamp(), $1, $2, 'adopt', $3, $4, $5, $6, '{{}}', $7, NULL, 'ok', $8::jsonb)
   RETURNING id),
 ins AS (INSERT INTO {m} (version, name, up_sha256, up_blob, down_sha256, down_sql, down_blob, folder_tree, applied_commit, deployment_id)
         SELECT u.v, u.n, NULLIF(u.us, ''), u.ub, u.ds, u.dq, u.db, u.ft, u.ac, (SELECT id FROM d)
         FROM unnest($7::bigint[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[])
              AS u(v, n, us, ub, ds, dq, db, ft, ac)){hasura}
SELECT id FROM d",
            d = self.t("deployments"),
            m = self.t("migrations"),
        );
        let plan = adoption.record().to_string();
        let to_commit = adoption.to_commit();
        let row = c
            .query_typed_one(
                &sql,
                &[
                    (&actor, Type::TEXT),
                    (&env!("CARGO_PKG_VERSION"), Type::TEXT),
                    (&adoption.reference, Type::TEXT),
                    (&from_commit, Type::TEXT),
                    (&to_commit, Type::TEXT),
                    (&adoption.dirty_tree, Type::BOOL),
                    (&versions, Type::INT8_ARRAY),
                    (&plan, Type::TEXT),
                    (&names, Type::TEXT_ARRAY),
                    (&up_sha, Type::TEXT_ARRAY),
                    (&up_blob, Type::TEXT_ARRAY),
                    (&down_sha, Type::TEXT_ARRAY),
                    (&down_sql, Type::TEXT_ARRAY),
                    (&down_blob, Type::TEXT_ARRAY),
                    (&folder_tree, Type::TEXT_ARRAY),
                    (&applied_commit, Type::TEXT_ARRAY),
                    (&adoption.accepted_dirty, Type::INT8_ARRAY),
                    (&adoption.forgotten_dirty, Type::INT8_ARRAY),
                    (&adoption.database, Type::TEXT),
                ],
            )
            .map_err(q("recording the adoption in the ledger"))?;
        Ok(row.get(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: Version, in_revision: bool) -> AdoptedRow {
        AdoptedRow {
            row: LedgerRow {
                version: v,
                name: if in_revision {
                    format!("m{v}")
                } else {
                    String::new()
                },
                up_sha256: if in_revision {
                    format!("sha256:{v}")
                } else {
                    String::new()
                },
                up_blob: in_revision.then(|| format!("blob{v}")),
                down_sha256: None,
                down_sql: in_revision.then(|| "drop table x;".to_string()),
                down_blob: None,
                folder_tree: in_revision.then(|| format!("tree{v}")),
                computed_down: None,
            },
            applied_commit: in_revision.then(|| "c0ffee".to_string()),
            in_revision,
        }
    }

    fn adoption(rows: Vec<AdoptedRow>, missing: Vec<Version>, pending: Vec<Version>) -> Adoption {
        Adoption {
            store: StateStore::SchemaMigrations,
            database: "default".into(),
            reference: "v1".into(),
            commit: Some("c0ffee".into()),
            dirty_tree: false,
            rows,
            missing,
            pending,
            accepted_dirty: vec![],
            forgotten_dirty: vec![],
            other_store: None,
        }
    }

    #[test]
    fn only_an_exact_match_names_the_commit() {
        let exact = adoption(vec![row(1, true), row(2, true)], vec![], vec![]);
        assert!(exact.exact());
        assert_eq!(exact.to_commit().as_deref(), Some("c0ffee"));
        let missing = adoption(vec![row(1, true), row(9, false)], vec![9], vec![]);
        assert_eq!(missing.to_commit(), None);
        let pending = adoption(vec![row(1, true)], vec![], vec![2]);
        assert_eq!(pending.to_commit(), None);
        let mut worktree = exact.clone();
        worktree.commit = None;
        worktree.dirty_tree = true;
        assert_eq!(worktree.to_commit(), None);
        assert!(worktree.warnings()[0].contains("not a commit"));
    }

    #[test]
    fn the_adopted_live_state_is_what_the_ledger_will_read() {
        let a = adoption(vec![row(1, true), row(9, false)], vec![9], vec![2]);
        let base = LiveState {
            metadata_sha256: Some("m".into()),
            ..Default::default()
        };
        let live = a.live(&base);
        assert_eq!(live.applied.keys().copied().collect::<Vec<_>>(), vec![1, 9]);
        let one = &live.applied[&1];
        assert_eq!(one.up_sha256, "sha256:1");
        assert_eq!(one.folder_tree.as_deref(), Some("tree1"));
        assert_eq!(one.applied_commit.as_deref(), Some("c0ffee"));
        assert!(one.has_down_sql && !one.dirty);
        // No checksum is read back as an empty string, no commit as none.
        let nine = &live.applied[&9];
        assert_eq!(nine.up_sha256, "");
        assert_eq!(nine.applied_commit, None);
        assert!(!nine.has_down_sql);
        assert_eq!(live.deployed_commit, None);
        assert_eq!(live.metadata_sha256.as_deref(), Some("m"));
        assert!(!live.ledger_exists);
        let w = a.warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("are not in v1: 9"), "{w:?}");
        let rec = a.record();
        assert_eq!(rec["missing_from_revision"], serde_json::json!([9]));
        assert_eq!(rec["not_applied"], serde_json::json!([2]));
        assert_eq!(rec["exact"], false);
    }

    #[test]
    fn rollback_and_metadata_apply_do_not_adopt() {
        assert!(adopts_in(Mode::Deploy));
        assert!(adopts_in(Mode::Apply));
        assert!(!adopts_in(Mode::Rollback));
        assert!(!adopts_in(Mode::Metadata));
    }
}
