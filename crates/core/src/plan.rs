//! The planner: a pure function of (target project, live state, facts read for it, policy).
//!
//! Planning happens in two pure steps with I/O between them at the edge:
//! 1. [`candidates`] says what the edge must look up (which downs, which checksums, which
//!    out-of-order versions) so that it reads only the blobs the plan needs;
//! 2. [`plan`] turns target + live state + those [`Facts`] into a [`Plan`] or *every* problem.
//!
//! `status`, `plan`, `deploy --dry-run`, `deploy` and `rollback` all call this same code.

use crate::metadata::MetadataChange;
use crate::project::{MigrationSet, Version};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One row of the ledger as the planner sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppliedMigration {
    /// Version.
    pub version: Version,
    /// Name at apply time.
    pub name: String,
    /// `sha256:…` of the up.sql that ran.
    pub up_sha256: String,
    /// Git blob id of that up.sql, when known.
    pub up_blob: Option<String>,
    /// Git tree id of the migration folder it was applied from, when known.
    pub folder_tree: Option<String>,
    /// Commit it was applied from.
    pub applied_commit: Option<String>,
    /// Whether a down SQL copy is stored in the ledger.
    pub has_down_sql: bool,
    /// A no-transaction migration that did not finish.
    pub dirty: bool,
}

/// What the database says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LiveState {
    /// Whether the ledger schema exists.
    pub ledger_exists: bool,
    /// Applied migrations by version.
    pub applied: BTreeMap<Version, AppliedMigration>,
    /// The commit the database is deployed at (last successful deployment).
    pub deployed_commit: Option<String>,
    /// Whether that deployment came from a dirty working tree.
    pub deployed_dirty: bool,
    /// Canonical sha256 of the live metadata snapshot.
    pub metadata_sha256: Option<String>,
    /// Git tree id of the metadata folder that was deployed.
    pub metadata_tree: Option<String>,
}

impl LiveState {
    /// The versions of unfinished no-transaction migrations (their ledger rows are dirty).
    pub fn dirty_versions(&self) -> Vec<Version> {
        self.applied
            .values()
            .filter(|a| a.dirty)
            .map(|a| a.version)
            .collect()
    }
}

/// The target of a plan.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    /// The revision as typed (`v1.4.0`).
    pub reference: String,
    /// The commit (None for an empty target or the index).
    pub commit: Option<String>,
    /// Whether the target is not exactly a commit (index or working tree).
    pub dirty: bool,
    /// Its migrations.
    pub migrations: &'a MigrationSet,
    /// An explicit choice of what to revert and apply (`apply --version/--up/--down/--goto`)
    /// instead of "reach the target".
    pub selection: Option<&'a Selection>,
}

/// What the edge must look up before planning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Candidates {
    /// Applied versions absent from the target, descending.
    pub revert: Vec<Version>,
    /// Target versions not applied, ascending.
    pub apply: Vec<Version>,
    /// Applied versions present in the target whose up.sql blob id differs from (or is not
    /// recorded in) the ledger: their target checksum must be computed.
    pub checksum: Vec<Version>,
    /// Versions to apply that are lower than the highest applied version that stays.
    pub out_of_order: Vec<Version>,
}

/// Versions whose folder files must be read before [`candidates`]: target versions not applied
/// (their files will run), and applied versions whose folder tree id differs from the one
/// recorded in the ledger (their up.sql may have changed). Equal tree ids need no read.
pub(crate) fn needs_files(target: &MigrationSet, live: &LiveState) -> Vec<Version> {
    target
        .iter()
        .filter(|m| !m.resolved)
        .filter(|m| match live.applied.get(&m.version) {
            None => true,
            Some(a) => a.folder_tree.is_none() || a.folder_tree != m.tree,
        })
        .map(|m| m.version)
        .collect()
}

/// Computes what must be looked up. Selection is by set difference, never by "version > max".
pub fn candidates(target: &MigrationSet, live: &LiveState) -> Candidates {
    candidates_with(target, live, None)
}

/// Like [`candidates`], with an explicit [`Selection`] replacing the set difference.
pub(crate) fn candidates_with(
    target: &MigrationSet,
    live: &LiveState,
    selection: Option<&Selection>,
) -> Candidates {
    let (revert, apply): (Vec<Version>, Vec<Version>) = match selection {
        // Chosen before the lock: under it, drop what another run already did.
        Some(s) => (
            s.revert
                .iter()
                .copied()
                .filter(|v| live.applied.contains_key(v))
                .collect(),
            s.apply
                .iter()
                .copied()
                .filter(|v| !live.applied.contains_key(v))
                .collect(),
        ),
        None => (
            live.applied
                .keys()
                .rev()
                .filter(|v| !target.contains(**v))
                .copied()
                .collect(),
            target
                .iter()
                .map(|m| m.version)
                .filter(|v| !live.applied.contains_key(v))
                .collect(),
        ),
    };
    let checksum = live
        .applied
        .values()
        .filter_map(|a| {
            let m = target.get(a.version)?;
            if a.folder_tree.is_some() && a.folder_tree == m.tree {
                return None;
            }
            let blob = m.up.as_ref().map(|u| u.blob.as_str());
            (a.up_blob.as_deref() != blob || blob.is_none()).then_some(a.version)
        })
        .collect();
    let reverted: BTreeSet<Version> = revert.iter().copied().collect();
    let highest_kept = live
        .applied
        .keys()
        .rev()
        .find(|v| !reverted.contains(v))
        .copied();
    let out_of_order = match highest_kept {
        Some(h) => apply.iter().copied().filter(|v| *v < h).collect(),
        None => vec![],
    };
    Candidates {
        revert,
        apply,
        checksum,
        out_of_order,
    }
}

/// An explicit choice of migrations (Hasura's `migrate apply` flags).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Versions to revert, newest first.
    pub revert: Vec<Version>,
    /// Versions to apply, oldest first.
    pub apply: Vec<Version>,
}

/// What `apply` was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplySpec {
    /// `--up N` (`None`: all, also the default).
    Up(Option<usize>),
    /// `--down N` (`None`: all).
    Down(Option<usize>),
    /// `--version V --type up|down`.
    Version {
        /// V.
        version: Version,
        /// `--type up` (else down).
        up: bool,
    },
    /// `--goto V`: apply up to and including V, or revert down to V (V stays applied).
    Goto(Version),
}

fn selection_problem(version: Option<Version>, message: String, hint: &str) -> Problem {
    Problem {
        kind: ProblemKind::Selection,
        version,
        message,
        causes: vec![],
        hints: vec![hint.to_string()],
    }
}

/// Hasura's selection rules (hasura-cli.md §5.1), decided before anything runs: what would
/// make Hasura stop half-way makes this refuse up front.
pub fn select(
    spec: ApplySpec,
    source: &MigrationSet,
    live: &LiveState,
) -> Result<Selection, Problem> {
    let pending: Vec<Version> = source
        .iter()
        .map(|m| m.version)
        .filter(|v| !live.applied.contains_key(v))
        .collect();
    let applied_desc: Vec<Version> = live.applied.keys().rev().copied().collect();
    let status_hint = "see what is applied with `git migrate status`";
    match spec {
        ApplySpec::Up(n) => {
            let apply = match n {
                None => pending,
                Some(n) if n <= pending.len() => pending[..n].to_vec(),
                Some(n) => {
                    return Err(selection_problem(
                        None,
                        format!(
                            "--up {n} asks for {n} migration(s), but only {} are not applied (limit {} short)",
                            pending.len(),
                            n - pending.len()
                        ),
                        status_hint,
                    ))
                }
            };
            Ok(Selection {
                revert: vec![],
                apply,
            })
        }
        ApplySpec::Down(n) => {
            let revert = match n {
                None => applied_desc,
                Some(n) if n <= applied_desc.len() => applied_desc[..n].to_vec(),
                Some(n) => {
                    return Err(selection_problem(
                        None,
                        format!(
                            "--down {n} asks for {n} migration(s), but only {} are applied",
                            applied_desc.len()
                        ),
                        status_hint,
                    ))
                }
            };
            Ok(Selection {
                revert,
                apply: vec![],
            })
        }
        ApplySpec::Version { version, up: true } => {
            if live.applied.contains_key(&version) {
                return Err(selection_problem(
                    Some(version),
                    format!("version {version} is already applied in the database"),
                    status_hint,
                ));
            }
            if !source.contains(version) {
                return Err(selection_problem(
                    Some(version),
                    format!("version {version} is not a migration of this revision"),
                    "check the version, or name the revision that has it (apply reads HEAD unless told otherwise)",
                ));
            }
            Ok(Selection {
                revert: vec![],
                apply: vec![version],
            })
        }
        ApplySpec::Version { version, up: false } => {
            if !live.applied.contains_key(&version) {
                return Err(selection_problem(
                    Some(version),
                    format!("migration {version} is not applied in the database"),
                    status_hint,
                ));
            }
            Ok(Selection {
                revert: vec![version],
                apply: vec![],
            })
        }
        ApplySpec::Goto(version) => {
            let highest = applied_desc.first().copied();
            if highest.is_some_and(|c| c > version) {
                if !live.applied.contains_key(&version) {
                    return Err(selection_problem(
                        Some(version),
                        format!("cannot go to {version}: it is not applied in the database"),
                        status_hint,
                    ));
                }
                Ok(Selection {
                    revert: applied_desc.into_iter().filter(|v| *v > version).collect(),
                    apply: vec![],
                })
            } else {
                if !source.contains(version) && !live.applied.contains_key(&version) {
                    return Err(selection_problem(
                        Some(version),
                        format!("cannot go to {version}: it is not a migration of this revision"),
                        status_hint,
                    ));
                }
                Ok(Selection {
                    revert: vec![],
                    apply: pending.into_iter().filter(|v| *v <= version).collect(),
                })
            }
        }
    }
}

/// Where a down SQL came from (§7.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum DownOrigin {
    /// The tree of a commit in this repository.
    Commit {
        /// Commit id.
        commit: String,
        /// File path.
        path: String,
    },
    /// The copy stored in the ledger at apply time.
    Ledger {
        /// The commit that could not be read, if any.
        missing_commit: Option<String>,
    },
    /// No down SQL anywhere (reverted as a no-op with `--allow-empty-down`).
    Nowhere,
    /// Computed from the schema (`--compute-downs`).
    Computed {
        /// At apply time (stored in the ledger) or now (by replay).
        at: crate::schema::ComputedAt,
    },
    /// `--down-from REV`.
    Override {
        /// The revision as typed.
        rev: String,
        /// Its commit.
        commit: String,
        /// File path.
        path: String,
    },
}

impl std::fmt::Display for DownOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownOrigin::Commit { commit, path } => {
                write!(f, "{path} @ {}", crate::source::short(commit))
            }
            DownOrigin::Ledger { .. } => write!(f, "the copy stored in the ledger"),
            DownOrigin::Nowhere => write!(f, "nowhere: there is no down migration"),
            DownOrigin::Computed { at } => write!(f, "a down {}", at.describe()),
            DownOrigin::Override { rev, path, .. } => write!(f, "{path} @ {rev} (--down-from)"),
        }
    }
}

/// A down SQL found for a version to revert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownSql {
    /// The SQL text.
    pub text: String,
    /// `sha256:…` of its bytes.
    pub sha256: String,
    /// Where it came from.
    pub origin: DownOrigin,
}

/// The result of looking for a version's down SQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownFact {
    /// Found (may still be empty).
    Found(DownSql),
    /// Found nowhere; the places looked at, for the message.
    Missing {
        /// Where the edge looked.
        looked: Vec<String>,
    },
}

/// How an out-of-order version got into the target's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutOfOrderFact {
    /// Arrived through history not reachable from the deployed commit.
    Merged {
        /// The merge commit that brought it, if one was found.
        merge: Option<String>,
        /// That commit's summary.
        summary: Option<String>,
    },
    /// Present at the deployed commit but never applied: a gap nobody can explain.
    PresentAtDeployed {
        /// The deployed commit.
        commit: String,
    },
    /// No deployed commit to compare with (fresh ledger, adopted, or missing from the clone).
    Unknown,
}

/// What the live metadata is compared with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataFact {
    /// Same snapshot (same tree id, or same canonical hash).
    Unchanged,
    /// Different.
    Changed {
        /// Canonical hash of the target snapshot.
        target_sha256: String,
        /// What changed.
        changes: Vec<MetadataChange>,
    },
}

/// Everything the edge looked up for [`plan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// Target checksums for `Candidates::checksum`.
    pub target_up_sha256: BTreeMap<Version, String>,
    /// Downs for `Candidates::revert`.
    pub downs: BTreeMap<Version, DownFact>,
    /// For `Candidates::out_of_order`.
    pub out_of_order: BTreeMap<Version, OutOfOrderFact>,
    /// The metadata comparison.
    pub metadata: MetadataFact,
    /// Versions to apply whose down.sql is missing or empty (for the forward warning).
    pub apply_without_down: Vec<Version>,
    /// Those of them marked `-- git-migrate:no-transaction`: their down cannot be captured.
    pub apply_no_transaction: BTreeSet<Version>,
    /// Applied versions (of `Candidates::checksum`) whose up file at the target differs from
    /// the one that ran only in layout: whitespace and comments (see
    /// [`crate::project::sql::same_but_layout`]).
    pub layout_only_edits: BTreeSet<Version>,
    /// Computed downs of versions to revert: stored in the ledger at apply time, or computed by
    /// replaying the history (read when a down is missing or empty, or for
    /// `--compute-downs=all`).
    pub computed_downs: BTreeMap<Version, crate::schema::ComputedDown>,
    /// Estimated rows of the tables whose rows or values a computed down destroys, by quoted
    /// qualified name (`pg_class.reltuples`; negative when never analyzed).
    pub row_estimates: BTreeMap<String, i64>,
    /// What the ledger found wrong with itself (rows edited by hand, a deleted deployment row,
    /// …), as the problems they would be.
    pub ledger_findings: Vec<Problem>,
    /// The target has no metadata folder, and is not a commit from before the folder existed
    /// (an ancestor of the deployed one): deploying it would clear the live metadata.
    pub metadata_folder_missing: Option<Problem>,
    /// What `--env` asks of the target, with what is known about it.
    pub environment: Option<EnvironmentRules>,
    /// `--forward-only` or the environment's `forward_only: true`, with what git says about the
    /// target and the deployed commit (`None`: the rule is off).
    pub forward_only: Option<ForwardOnly>,
    /// The Hasura CLI manages the database and the ledger records no migration: how many
    /// versions Hasura's state lists (`None` when the database is not such a one).
    pub unadopted: Option<i64>,
}

/// The refusal of a command that cannot adopt (`rollback`: before adoption the ledger records
/// nothing to roll back) on a database the Hasura CLI manages, listing `hasura_applied`
/// versions; `None` for the others.
pub fn unadopted_refusal(mode: Mode, hasura_applied: Option<i64>) -> Option<Problem> {
    let applied = hasura_applied.filter(|_| !mode.may_apply())?;
    Some(Problem {
        kind: ProblemKind::NotAdopted,
        version: None,
        message: format!(
            "this database is managed by the Hasura CLI ({applied} applied version(s) in its migration state) and is not adopted yet"
        ),
        causes: vec![
            "the ledger records no migration, so there is nothing git-migrate could roll back"
                .into(),
        ],
        hints: vec![
            "adopt it first: `git migrate adopt [--commit REV]` records Hasura's state in the ledger and runs nothing".into(),
            "or deploy: `git migrate deploy REV` adopts it in the same transaction".into(),
        ],
    })
}

/// What an environment (`--env`) asks of a target in git-migrate.yaml (`require_tag`,
/// `promote_from`), with what the command layer found out: the target commit's tags, and
/// whether the environment it is promoted from ran that commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvironmentRules {
    /// The environment.
    pub environment: crate::config::Environment,
    /// The target commit; `None` when the target is not a commit (the working tree, the index,
    /// the empty state).
    pub commit: Option<String>,
    /// The target commit's tags.
    pub tags: Vec<String>,
    /// With `promote_from`, for a deploy: whether that environment ran the commit.
    pub promoted: Option<PromotedFact>,
}

/// Whether the environment a target's environment is promoted from ran the target commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromotedFact {
    /// A successful deployment there reached the commit.
    Ran,
    /// None did.
    NeverRan,
    /// Its database could not be asked.
    Unreachable {
        /// Why.
        why: String,
        /// The causes of the failure.
        causes: Vec<String>,
    },
}

/// Why an environment refuses a target's tags, or the tag that lets it in (`None` when the
/// environment has no `require_tag`).
pub fn tag_verdict(
    env: &crate::config::Environment,
    commit: Option<&str>,
    tags: &[String],
) -> Result<Option<String>, String> {
    let Some(glob) = env.require_tag.as_deref() else {
        return Ok(None);
    };
    let Some(commit) = commit else {
        return Err(format!(
            "environment {} only accepts commits tagged {glob:?}, and this target is not a commit",
            env.name
        ));
    };
    match tags.iter().find(|t| env.accepts_tag(t)) {
        Some(t) => Ok(Some(t.clone())),
        None if tags.is_empty() => Err(format!(
            "environment {} only accepts commits tagged {glob:?}; commit {} has no tag",
            env.name,
            crate::source::short(commit)
        )),
        None => Err(format!(
            "environment {} only accepts commits tagged {glob:?}; commit {} is tagged {}, which does not match",
            env.name,
            crate::source::short(commit),
            tags.join(", ")
        )),
    }
}

/// The refusals of an environment's rules: a target `require_tag` does not accept, and a
/// commit the environment it is promoted from never ran (or could not be asked about).
fn environment_refusals(f: &EnvironmentRules) -> Vec<Problem> {
    let env = &f.environment;
    let mut out = Vec::new();
    if let Err(why) = tag_verdict(env, f.commit.as_deref(), &f.tags) {
        let mut hints = Vec::new();
        if let Some(c) = &f.commit {
            hints.push(format!(
                "tag the release and push the tag: git tag -a v1.2.3 {} && git push origin v1.2.3",
                crate::source::short(c)
            ));
        }
        hints.push(format!(
            "or promote a release another environment already runs: git migrate promote <from> {}",
            env.name
        ));
        out.push(Problem {
            kind: ProblemKind::EnvironmentRule,
            version: None,
            message: why,
            causes: vec![],
            hints,
        });
    }
    if let (Some(from), Some(commit), Some(promoted)) = (&env.promote_from, &f.commit, &f.promoted)
    {
        let (message, causes) = match promoted {
            PromotedFact::Ran => return out,
            PromotedFact::NeverRan => (
                format!(
                    "{} is promoted from {from}, and {from} has never run {}",
                    env.name,
                    crate::source::short(commit)
                ),
                vec![],
            ),
            PromotedFact::Unreachable { why, causes } => (
                format!(
                    "{} is promoted from {from}, whose database cannot be reached to check that it ran this commit: {why}",
                    env.name
                ),
                causes.clone(),
            ),
        };
        out.push(Problem {
            kind: ProblemKind::EnvironmentRule,
            version: None,
            message,
            causes,
            hints: vec![
                format!(
                    "deploy it to {from} first, then: git migrate promote {from} {}",
                    env.name
                ),
                format!(
                    "(break glass: --database-url instead of --env {} skips the environment's rules)",
                    env.name
                ),
            ],
        });
    }
    out
}

/// Who turned the forward-only rule on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForwardOnlyRule {
    /// `--forward-only`.
    Flag,
    /// `forward_only: true` on this environment (`--env NAME`).
    Environment(String),
}

/// The forward-only rule (issue 16: migrations run when a pod starts, with the pod's release,
/// so an old pod that restarts must not take the database back), with what the edge read from
/// git: the tags of both commits and whether the target is an older commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardOnly {
    /// Who asked for it.
    pub rule: ForwardOnlyRule,
    /// The target commit is a strict ancestor of the deployed commit: deploying it moves the
    /// database back even when no migration is reverted.
    pub target_is_older: bool,
    /// Tags at the deployed commit.
    pub deployed_tags: Vec<String>,
    /// Tags at the target commit.
    pub target_tags: Vec<String>,
}

/// A commit for messages: `v2.0.0 (1a2b3c4d5e)` when tags point at it, else its short id.
fn describe_tagged(commit: &str, tags: &[String]) -> String {
    let id = crate::source::short(commit);
    if tags.is_empty() {
        id
    } else {
        format!("{} ({id})", tags.join(", "))
    }
}

/// The forward-only refusal: a deploy that reverts a migration the database has (the target is
/// older, or on another branch that lacks it), or whose target is an older commit than the
/// deployed one (an ancestor: the metadata and the recorded commit would go back even with no
/// migration to revert). The deployed commit itself, or a newer one, passes; so does `rollback`,
/// the explicit way back.
fn forward_only_refusal(
    target: &Target<'_>,
    live: &LiveState,
    facts: &Facts,
    options: PlanOptions,
) -> Option<Problem> {
    let f = facts
        .forward_only
        .as_ref()
        .filter(|_| options.mode.held_to_forward_only())?;
    let reverted = candidates_with(target.migrations, live, target.selection).revert;
    if reverted.is_empty() && !f.target_is_older {
        return None;
    }
    let deployed = match &live.deployed_commit {
        Some(c) => describe_tagged(c, &f.deployed_tags),
        None => "no recorded commit".into(),
    };
    let there = match &target.commit {
        Some(c) if !target.dirty => describe_tagged(c, &f.target_tags),
        _ => target.reference.clone(),
    };
    let n = reverted.len();
    let message = if f.target_is_older {
        let what = if n > 0 {
            format!("revert {n} migration(s)")
        } else if matches!(facts.metadata, MetadataFact::Changed { .. }) {
            "revert no migration, but take the metadata back".into()
        } else {
            "revert no migration, but record the older commit as deployed".into()
        };
        format!(
            "forward-only: the database is at {deployed}, and {there} is an older commit: deploying it would {what}"
        )
    } else {
        format!(
            "forward-only: the database is at {deployed}, and {there} lacks {n} of its migration(s): deploying it would revert {n} migration(s)"
        )
    };
    let mut causes: Vec<String> = reverted
        .iter()
        .map(|v| match live.applied.get(v) {
            Some(a) => format!("would revert {}_{}", a.version, a.name),
            None => format!("would revert {v}"),
        })
        .collect();
    let rev = match target.commit.as_deref() {
        _ if !target.reference.contains(' ') => target.reference.clone(),
        Some(c) if !target.dirty => crate::source::short(c),
        _ => "REV".into(),
    };
    let mut hints = Vec::new();
    match &f.rule {
        ForwardOnlyRule::Flag => {
            causes.push("--forward-only refuses any deploy that moves the database back".into());
            hints.push(format!(
                "to go back on purpose, roll back explicitly: git migrate rollback {rev}"
            ));
            hints.push(format!(
                "or deploy it explicitly, without --forward-only: git migrate deploy {rev}"
            ));
        }
        ForwardOnlyRule::Environment(env) => {
            causes.push(format!(
                "environment {env} has forward_only: true, which refuses any deploy that moves it back"
            ));
            hints.push(format!(
                "to go back on purpose, roll back explicitly: git migrate rollback {rev} --env {env}"
            ));
            hints.push(format!(
                "or deploy it explicitly, past the environment's rule: git migrate deploy {rev} --env {env} --no-forward-only"
            ));
        }
    }
    Some(Problem {
        kind: ProblemKind::ForwardOnly,
        version: None,
        message,
        causes,
        hints,
    })
}

// The policies are set in git-migrate.yaml; they are defined beside it, below the planner.
pub use crate::config::{ComputeDowns, OutOfOrderPolicy, CAPTURE_DOWNS};

/// What kind of command plans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `deploy`: forward or backward.
    Deploy,
    /// `rollback`: reverting only.
    Rollback,
    /// `metadata apply`: the metadata alone; migrations are left as they are.
    Metadata,
    /// `apply` (Hasura's `migrate apply`): the selected migrations alone; metadata is left as
    /// it is.
    Apply,
}

/// What each kind of command may do: the one place that says it. The planner, `gather`, the
/// executor and adoption ask these questions instead of comparing modes.
impl Mode {
    /// Whether it moves migrations at all (`metadata apply` leaves them as they are).
    pub fn moves_migrations(self) -> bool {
        self != Mode::Metadata
    }

    /// Whether it may apply migrations (`rollback` only reverts).
    pub fn may_apply(self) -> bool {
        self != Mode::Rollback
    }

    /// Whether it writes the metadata (`apply`, like Hasura's `migrate apply`, leaves it alone).
    pub fn writes_metadata(self) -> bool {
        self != Mode::Apply
    }

    /// Whether the ledger's findings about itself only warn instead of refusing: `apply`
    /// (`--skip-execution`) is how such a ledger is put right.
    pub fn repairs_ledger(self) -> bool {
        self == Mode::Apply
    }

    /// Whether it adopts a database the Hasura CLI manages before planning: deploy and apply do;
    /// rollback (before adoption there is nothing to roll back) and metadata apply (migrations
    /// are left alone, and adoption stays possible later) do not.
    pub fn adopts(self) -> bool {
        self.moves_migrations() && self.may_apply()
    }

    /// Whether its end state is that of a commit, so that the schema it leaves can be proven
    /// against one (deploy and rollback; `apply` and `metadata apply` move one part alone).
    pub fn reaches_a_commit(self) -> bool {
        matches!(self, Mode::Deploy | Mode::Rollback)
    }

    /// Whether applying migrations without a usable down announces that their downs are
    /// captured (a deploy; `apply` selects versions by hand and says nothing more).
    pub fn announces_captures(self) -> bool {
        self == Mode::Deploy
    }

    /// Whether `--forward-only` and an environment's `forward_only: true` hold it (deploy, and
    /// so `plan` and `promote`): `rollback` is the explicit way back, `apply` selects versions
    /// by hand, `metadata apply` leaves migrations alone.
    pub fn held_to_forward_only(self) -> bool {
        self == Mode::Deploy
    }

    /// Whether it was confirmed from a plan shown first: `apply` never prompts, so the same
    /// versions are the same work, whatever else moved meanwhile.
    pub fn confirms_plan(self) -> bool {
        self != Mode::Apply
    }
}

/// Planner options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    /// Deploy or rollback.
    pub mode: Mode,
    /// Out-of-order policy.
    pub out_of_order: OutOfOrderPolicy,
    /// Empty downs become recorded no-ops instead of refusals.
    pub allow_empty_down: bool,
    /// Applied migrations whose up file was edited since (content, not only layout) get the
    /// new checksum recorded without running anything, instead of a refusal
    /// (`--accept-edited`, `policy.accept_edited`).
    pub accept_edited: bool,
    /// Which downs are computed from the schema.
    pub compute_downs: ComputeDowns,
    /// How many of the migrations to apply without a usable down get their down captured
    /// (the last ones; `policy.capture_downs`, default [`CAPTURE_DOWNS`]).
    pub capture_downs: usize,
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Step {
    /// Run a down migration and delete its ledger row.
    Revert {
        /// Version.
        version: Version,
        /// Name.
        name: String,
        /// Where the down SQL came from.
        down: DownOrigin,
        /// `sha256:…` of the down SQL.
        down_sha256: String,
        /// An empty down allowed with `--allow-empty-down`: nothing runs.
        noop: bool,
        /// The SQL to run.
        #[serde(skip)]
        sql: String,
    },
    /// Run an up migration and insert its ledger row.
    Apply {
        /// Version.
        version: Version,
        /// Name.
        name: String,
        /// Folder relative to the repository root.
        location: String,
        /// Path of up.sql.
        up_path: String,
        /// Blob id of up.sql.
        up_blob: String,
        /// Path and blob of down.sql, if any.
        down: Option<(String, String)>,
        /// Why this out-of-order version is allowed.
        out_of_order: Option<String>,
    },
}

impl Step {
    /// The step's version.
    pub fn version(&self) -> Version {
        match self {
            Step::Revert { version, .. } | Step::Apply { version, .. } => *version,
        }
    }
}

/// An applied migration whose up file changed since it ran, accepted: the ledger takes the new
/// checksum in the deployment's transaction, and nothing runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AcceptedEdit {
    /// Version.
    pub version: Version,
    /// Name.
    pub name: String,
    /// The up file at the target.
    pub path: String,
    /// Checksum recorded when it ran.
    pub from_sha256: String,
    /// Commit it was applied from.
    pub from_commit: Option<String>,
    /// Checksum at the target.
    pub to_sha256: String,
    /// Blob id at the target.
    pub to_blob: Option<String>,
    /// Folder tree id at the target.
    pub to_tree: Option<String>,
    /// Only whitespace and comments changed (accepted by itself); else `--accept-edited`.
    pub layout_only: bool,
}

impl AcceptedEdit {
    /// One line for plans and notes, naming both checksums and both commits.
    pub fn describe(&self, target: &str) -> String {
        format!(
            "{}_{}: {} since it was applied; the ledger's checksum changes from {} (applied from {}) to {} ({} at {target}); nothing runs",
            self.version,
            self.name,
            if self.layout_only {
                "only whitespace or comments changed"
            } else {
                "up file edited (accepted by --accept-edited)"
            },
            self.from_sha256,
            short(&self.from_commit),
            self.to_sha256,
            self.path,
        )
    }
}

/// The metadata part of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MetadataPlan {
    /// Live hash.
    pub from_sha256: Option<String>,
    /// Target hash.
    pub to_sha256: String,
    /// What changes.
    pub changes: Vec<MetadataChange>,
}

/// A plan: reverts (newest first), then applies (oldest first), then metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Deploy or rollback.
    pub mode: Mode,
    /// Target as typed.
    pub target_ref: String,
    /// Commit the database is at.
    pub from_commit: Option<String>,
    /// Commit the database will be at.
    pub to_commit: Option<String>,
    /// Whether the target is not exactly a commit.
    pub dirty: bool,
    /// Steps in execution order.
    pub steps: Vec<Step>,
    /// Metadata change, if any.
    pub metadata: Option<MetadataPlan>,
    /// Warnings to show before confirming.
    pub warnings: Vec<String>,
    /// Applied migrations edited since they ran whose new checksum is recorded.
    pub accepted: Vec<AcceptedEdit>,
    /// What the computed downs destroy (`3_orders: drops table public.orders and its rows
    /// (about 1200 rows)`), shown before confirming.
    pub destroys: Vec<String>,
    /// Versions to apply whose down is captured as they are applied (they have no usable
    /// down.sql).
    pub capture: Vec<Version>,
}

impl Plan {
    /// Nothing to do (the ledger may still move to the target commit).
    pub fn is_noop(&self) -> bool {
        self.steps.is_empty() && self.metadata.is_none() && self.accepted.is_empty()
    }

    /// Whether the database is already where the plan leads: nothing to run, and the deployed
    /// commit is the target (a commit, not uncommitted files); for `metadata apply`, whose
    /// target is the metadata alone, nothing to run is enough.
    pub fn already_there(&self) -> bool {
        self.is_noop()
            && (!self.mode.moves_migrations()
                || (self.to_commit == self.from_commit && !self.dirty))
    }

    /// Whether the plan reverts anything (needs confirmation).
    pub fn reverts(&self) -> bool {
        self.steps.iter().any(|s| matches!(s, Step::Revert { .. }))
    }

    /// Versions reverted, in order.
    pub fn reverted(&self) -> Vec<Version> {
        self.steps
            .iter()
            .filter(|s| matches!(s, Step::Revert { .. }))
            .map(Step::version)
            .collect()
    }

    /// Versions applied, in order.
    pub fn applied(&self) -> Vec<Version> {
        self.steps
            .iter()
            .filter(|s| matches!(s, Step::Apply { .. }))
            .map(Step::version)
            .collect()
    }

    /// A compact record of the plan for the ledger's `deployments.plan`: the steps with their
    /// versions and where each down came from, the metadata change and the warnings (paths and
    /// blob ids are left out: the commits name them).
    pub fn record(&self) -> serde_json::Value {
        let steps = self
            .steps
            .iter()
            .map(|s| match s {
                Step::Revert {
                    version,
                    down,
                    noop,
                    ..
                } => {
                    let from = match down {
                        DownOrigin::Commit { .. } => "commit",
                        DownOrigin::Ledger { .. } => "ledger",
                        DownOrigin::Nowhere => "nowhere",
                        DownOrigin::Override { .. } => "override",
                        DownOrigin::Computed {
                            at: crate::schema::ComputedAt::Apply,
                        } => "computed_at_apply",
                        DownOrigin::Computed {
                            at: crate::schema::ComputedAt::Replay,
                        } => "computed_by_replay",
                    };
                    StepRecord::Revert {
                        down_from: from,
                        noop: *noop,
                        revert: *version,
                    }
                }
                Step::Apply {
                    version,
                    out_of_order,
                    ..
                } => StepRecord::Apply {
                    apply: *version,
                    out_of_order: out_of_order.as_deref(),
                },
            })
            .collect();
        let record = PlanRecord {
            accepted_edits: self
                .accepted
                .iter()
                .map(|a| AcceptedRecord {
                    from_commit: a.from_commit.as_deref(),
                    from_sha256: &a.from_sha256,
                    layout_only: a.layout_only,
                    to_sha256: &a.to_sha256,
                    version: a.version,
                })
                .collect(),
            metadata: self.metadata.as_ref(),
            mode: self.mode,
            steps,
            target_ref: &self.target_ref,
            warnings: &self.warnings,
        };
        serde_json::to_value(record).expect("strings, numbers and lists serialize")
    }

    /// Whether two plans do the same thing (used after taking the lock).
    pub(crate) fn same_work(&self, other: &Plan) -> bool {
        if !self.mode.confirms_plan() && !other.mode.confirms_plan() {
            // Nothing was confirmed (apply never prompts): the same versions are the same work,
            // whatever else moved meanwhile.
            return self.reverted() == other.reverted() && self.applied() == other.applied();
        }
        self.steps == other.steps
            && self.accepted == other.accepted
            && self.metadata.as_ref().map(|m| &m.to_sha256)
                == other.metadata.as_ref().map(|m| &m.to_sha256)
            && self.from_commit == other.from_commit
    }
}

/// What [`Plan::record`] writes.
#[derive(Serialize)]
struct PlanRecord<'a> {
    accepted_edits: Vec<AcceptedRecord<'a>>,
    metadata: Option<&'a MetadataPlan>,
    mode: Mode,
    steps: Vec<StepRecord<'a>>,
    target_ref: &'a str,
    warnings: &'a [String],
}

/// A step of a [`PlanRecord`]: its version under `revert` or `apply`.
#[derive(Serialize)]
#[serde(untagged)]
enum StepRecord<'a> {
    Revert {
        /// Where the down came from: `commit`, `ledger`, `nowhere`, `override`,
        /// `computed_at_apply` or `computed_by_replay`.
        down_from: &'static str,
        noop: bool,
        revert: Version,
    },
    Apply {
        apply: Version,
        out_of_order: Option<&'a str>,
    },
}

/// An accepted edit of a [`PlanRecord`].
#[derive(Serialize)]
struct AcceptedRecord<'a> {
    from_commit: Option<&'a str>,
    from_sha256: &'a str,
    layout_only: bool,
    to_sha256: &'a str,
    version: Version,
}

/// Kinds of planning problems.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// An applied migration's up.sql changed.
    ModifiedAfterApply,
    /// No down SQL anywhere.
    MissingDown,
    /// Down SQL is empty or only comments.
    EmptyDown,
    /// An out-of-order version refused by policy.
    OutOfOrder,
    /// `rollback` would apply something.
    RollbackWouldApply,
    /// A dirty ledger row.
    Dirty,
    /// `apply --version/--up/--down/--goto` cannot select what was asked.
    Selection,
    /// The ledger disagrees with its own history (edited by hand).
    LedgerEdited,
    /// The target has no metadata folder, and deploying it would clear the live metadata.
    MetadataMissing,
    /// `--env`'s rules refuse the target (`require_tag`, `promote_from` in git-migrate.yaml).
    EnvironmentRule,
    /// `--forward-only` or the environment's `forward_only: true` refuses a deploy that moves
    /// the database back (reverts a migration, or goes to an older commit).
    ForwardOnly,
    /// The Hasura CLI manages the database and it is not adopted yet, for a command that cannot
    /// adopt it (`rollback`).
    NotAdopted,
}

/// One reason a plan cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Kind.
    pub kind: ProblemKind,
    /// Version concerned.
    pub version: Option<Version>,
    /// What is wrong.
    pub message: String,
    /// Details.
    pub causes: Vec<String>,
    /// What to do.
    pub hints: Vec<String>,
}

fn short(c: &Option<String>) -> String {
    c.as_deref()
        .map(crate::source::short)
        .unwrap_or_else(|| "an unknown commit".into())
}

/// Computes the plan, or every problem at once.
pub fn plan(
    target: &Target<'_>,
    live: &LiveState,
    facts: &Facts,
    options: PlanOptions,
) -> Result<Plan, Vec<Problem>> {
    // Before adoption there is nothing to plan a rollback against: that alone is the answer.
    if let Some(p) = unadopted_refusal(options.mode, facts.unadopted) {
        return Err(vec![p]);
    }
    // An environment's rules come first, then forward-only: they are what to fix first.
    let mut first = facts
        .environment
        .as_ref()
        .map(environment_refusals)
        .unwrap_or_default();
    first.extend(forward_only_refusal(target, live, facts, options));
    let planned = match plan_steps(target, live, facts, options) {
        Ok(_) if !first.is_empty() => Err(first),
        Err(others) if !first.is_empty() => Err([first, others].concat()),
        planned => planned,
    };
    let found = refusals_of_facts(live, facts, options);
    match planned {
        _ if found.is_empty() => planned,
        // `apply` is how such a ledger is put right (`--skip-execution`): warn, do not refuse.
        Ok(mut plan) if options.mode.repairs_ledger() => {
            plan.warnings.extend(
                found
                    .into_iter()
                    .map(|p| format!("{} ({})", p.message, p.causes.join("; "))),
            );
            Ok(plan)
        }
        Ok(_) => Err(found),
        Err(mut others) => {
            others.extend(found);
            Err(others)
        }
    }
}

/// The refusals that come from facts about the database and the target rather than from the
/// steps: the ledger's findings about itself refuse every mode but `metadata apply` (which
/// rewrites the metadata row and touches no migration); a target without a metadata folder
/// refuses when it would clear live metadata (not for `apply`, which leaves metadata alone).
fn refusals_of_facts(live: &LiveState, facts: &Facts, options: PlanOptions) -> Vec<Problem> {
    let mut out = Vec::new();
    if options.mode.moves_migrations() {
        out.extend(facts.ledger_findings.iter().cloned());
    }
    if let (Some(p), MetadataFact::Changed { .. }) =
        (&facts.metadata_folder_missing, &facts.metadata)
    {
        if options.mode.writes_metadata() && live.metadata_sha256.is_some() {
            out.push(p.clone());
        }
    }
    out
}

/// The steps, and the refusals each step's facts give: one function per concern, in order.
fn plan_steps(
    target: &Target<'_>,
    live: &LiveState,
    facts: &Facts,
    options: PlanOptions,
) -> Result<Plan, Vec<Problem>> {
    let cand = if !options.mode.moves_migrations() {
        Candidates::default()
    } else {
        candidates_with(target.migrations, live, target.selection)
    };
    let i = Inputs {
        target,
        live,
        facts,
        options,
        cand: &cand,
    };
    let mut d = Decisions::default();
    refuse_dirty_rows(i, &mut d);
    accept_or_refuse_edits(i, &mut d);
    revert_steps(i, &mut d);
    refuse_applying_in_rollback(i, &mut d);
    apply_steps(i, &mut d);
    let capture = capture_downs(i, &mut d);
    let Decisions {
        problems,
        warnings,
        steps,
        accepted,
        destroys,
    } = d;
    if !problems.is_empty() {
        return Err(problems);
    }
    let metadata = match &facts.metadata {
        _ if !options.mode.writes_metadata() => None,
        MetadataFact::Unchanged => None,
        MetadataFact::Changed {
            target_sha256,
            changes,
        } => Some(MetadataPlan {
            from_sha256: live.metadata_sha256.clone(),
            to_sha256: target_sha256.clone(),
            changes: changes.clone(),
        }),
    };
    Ok(Plan {
        mode: options.mode,
        target_ref: target.reference.clone(),
        from_commit: live.deployed_commit.clone(),
        to_commit: target.commit.clone(),
        dirty: target.dirty,
        steps,
        metadata,
        warnings,
        accepted,
        destroys,
        capture,
    })
}

/// What every concern of the planner reads.
#[derive(Clone, Copy)]
struct Inputs<'a> {
    target: &'a Target<'a>,
    live: &'a LiveState,
    facts: &'a Facts,
    options: PlanOptions,
    cand: &'a Candidates,
}

/// What the planner's concerns decide, in order.
#[derive(Default)]
struct Decisions {
    problems: Vec<Problem>,
    warnings: Vec<String>,
    steps: Vec<Step>,
    accepted: Vec<AcceptedEdit>,
    destroys: Vec<String>,
}

/// Rows a no-transaction migration left dirty refuse everything but `metadata apply`.
fn refuse_dirty_rows(i: Inputs<'_>, d: &mut Decisions) {
    let Inputs { live, options, .. } = i;
    let Decisions { problems, .. } = d;
    let dirty_rows = live
        .applied
        .values()
        .filter(|a| a.dirty && options.mode.moves_migrations());
    for a in dirty_rows {
        problems.push(Problem {
            kind: ProblemKind::Dirty,
            version: Some(a.version),
            message: format!(
                "migration {}_{} is marked dirty: a no-transaction migration did not finish",
                a.version, a.name
            ),
            causes: vec![],
            hints: vec![
                format!("check the database by hand, then run `git migrate repair --done {}` or `--undone {}`", a.version, a.version),
            ],
        });
    }
}

/// Applied migrations whose up file changed since: accepted when only the layout changed or
/// when asked (`--accept-edited`), else refused.
fn accept_or_refuse_edits(i: Inputs<'_>, d: &mut Decisions) {
    let Inputs {
        target,
        live,
        facts,
        options,
        cand,
    } = i;
    let Decisions {
        problems, accepted, ..
    } = d;
    for v in &cand.checksum {
        let (Some(a), Some(m)) = (live.applied.get(v), target.migrations.get(*v)) else {
            continue;
        };
        let Some(target_sha) = facts.target_up_sha256.get(v) else {
            continue;
        };
        // No checksum: adopted from Hasura's state at a revision without its files.
        if *target_sha == a.up_sha256 || a.up_sha256.is_empty() {
            continue;
        }
        let path = m.up.as_ref().map(|u| u.path.as_str()).unwrap_or("up.sql");
        let layout_only = facts.layout_only_edits.contains(v);
        if layout_only || options.accept_edited {
            accepted.push(AcceptedEdit {
                version: *v,
                name: m.name.clone(),
                path: path.to_string(),
                from_sha256: a.up_sha256.clone(),
                from_commit: a.applied_commit.clone(),
                to_sha256: target_sha.clone(),
                to_blob: m
                    .up
                    .as_ref()
                    .map(|u| u.blob.clone())
                    .filter(|_| !target.dirty),
                to_tree: m.tree.clone().filter(|_| !target.dirty),
                layout_only,
            });
            continue;
        }
        problems.push(Problem {
            kind: ProblemKind::ModifiedAfterApply,
            version: Some(*v),
            message: format!("migration {} was modified after it was applied", m.label()),
            causes: vec![
                format!(
                    "the ledger has {} (applied from commit {})",
                    a.up_sha256,
                    short(&a.applied_commit)
                ),
                format!("{} has {} ({path})", target.reference, target_sha),
            ],
            hints: vec![
                "to keep the edit without running anything (as the Hasura CLI did), pass --accept-edited (or set policy.accept_edited: true in git-migrate.yaml)".into(),
                format!("or record the new checksum of this one alone: git migrate repair --accept {v}"),
                "or revert the edit in a new commit and put the change in a new migration".into(),
            ],
        });
    }
}

/// A revert step for each version to revert, its down written (or stored, or nowhere with
/// `--allow-empty-down`) or computed (`--compute-downs`), or the refusal that says why not.
fn revert_steps(i: Inputs<'_>, d: &mut Decisions) {
    let Inputs {
        live,
        facts,
        options,
        cand,
        ..
    } = i;
    for v in &cand.revert {
        let name = live
            .applied
            .get(v)
            .map(|a| a.name.clone())
            .unwrap_or_default();
        let written = match facts.downs.get(v) {
            Some(DownFact::Found(d)) => Some(d),
            _ => None,
        };
        let usable = written.is_some_and(|d| !crate::project::sql::is_effectively_empty(&d.text));
        let computed = facts.computed_downs.get(v);
        let compute = match options.compute_downs {
            ComputeDowns::Off => false,
            ComputeDowns::Gaps => !usable,
            ComputeDowns::All => true,
        };
        if compute {
            revert_computed(*v, name, computed, facts, d);
        } else {
            revert_written(*v, name, computed, facts, options, d);
        }
    }
}

/// The revert of `v` with its computed down, or the refusal when none could be computed or
/// none is available (the history was not replayed).
fn revert_computed(
    v: Version,
    name: String,
    computed: Option<&crate::schema::ComputedDown>,
    facts: &Facts,
    d: &mut Decisions,
) {
    let v = &v;
    let Decisions {
        problems,
        warnings,
        steps,
        destroys,
        ..
    } = d;
    match computed {
        Some(c) if c.error.is_none() => {
            for d in &c.destroys {
                let rows = d
                    .table
                    .as_ref()
                    .and_then(|t| facts.row_estimates.get(t))
                    .map(|n| match *n {
                        n if n < 0 => " (rows not estimated: a large table never analyzed)".to_string(),
                        n => format!(" (about {n} rows)"),
                    })
                    .unwrap_or_default();
                destroys.push(format!("{v}_{name}: {}{rows}", d.what));
            }
            if c.sql.is_empty() {
                warnings.push(format!(
                    "{v}_{name}: its up changed no schema, so its computed down runs nothing (rows it wrote stay)"
                ));
            }
            steps.push(Step::Revert {
                version: *v,
                name,
                down: DownOrigin::Computed { at: c.at },
                down_sha256: crate::checksum::sha256_hex(c.sql.as_bytes()),
                noop: false,
                sql: c.sql.clone(),
            });
        }
        Some(c) => problems.push(Problem {
            kind: ProblemKind::MissingDown,
            version: Some(*v),
            message: format!("cannot revert {v}_{name}: no down could be computed for it"),
            causes: vec![format!(
                "{}: {}",
                c.at.describe(),
                c.error.as_deref().unwrap_or_default()
            )],
            hints: vec![
                "write a down.sql that reverses the migration in a new commit and use --down-from REV".into(),
                "or leave out --compute-downs and pass --allow-empty-down to record the revert without running anything".into(),
            ],
        }),
        None => problems.push(Problem {
            kind: ProblemKind::MissingDown,
            version: Some(*v),
            message: format!("cannot revert {v}_{name}: no computed down is available"),
            causes: vec![
                "the ledger stores none (it was applied by adopt, an older git-migrate or the Hasura CLI), and the applied history was not replayed".into(),
            ],
            hints: vec![
                "run the command again: the history is replayed in a scratch database (--scratch-url, $GIT_MIGRATE_SCRATCH_URL, or local PostgreSQL server binaries)".into(),
            ],
        }),
    }
}

/// The revert of `v` with its written down (or the ledger's copy, or none with
/// `--allow-empty-down`), or the refusal that says what is missing and, when a computed down
/// is there to use, says so.
fn revert_written(
    v: Version,
    name: String,
    computed: Option<&crate::schema::ComputedDown>,
    facts: &Facts,
    options: PlanOptions,
    d: &mut Decisions,
) {
    let v = &v;
    let Decisions {
        problems,
        warnings,
        steps,
        ..
    } = d;
    // Without --compute-downs, a refusal says when a computed down is there to use.
    let available = match computed {
        Some(c) if c.error.is_none() => {
            "a down computed when it was applied is stored in the ledger: pass --compute-downs to run it (--sql shows it)".to_string()
        }
        _ => "or pass --compute-downs to compute one by replaying the applied history in a scratch database".to_string(),
    };
    match facts.downs.get(v) {
        Some(DownFact::Found(d)) => {
            let empty = crate::project::sql::is_effectively_empty(&d.text);
            if empty && !options.allow_empty_down {
                problems.push(Problem {
                    kind: ProblemKind::EmptyDown,
                    version: Some(*v),
                    message: format!(
                        "cannot revert {v}_{name}: its down migration is empty or only comments"
                    ),
                    causes: vec![format!("down SQL from {}", d.origin)],
                    hints: vec![
                        available,
                        "write a down.sql that reverses the migration in a new commit and use --down-from REV".into(),
                        "or pass --allow-empty-down to record the revert without running anything".into(),
                    ],
                });
                return;
            }
            if let DownOrigin::Ledger { missing_commit } = &d.origin {
                warnings.push(format!(
                    "{v}_{name}: using the down SQL stored in the ledger at apply time{}",
                    missing_commit
                        .as_ref()
                        .map(|c| format!(
                            " (commit {} is not in this repository)",
                            crate::source::short(c)
                        ))
                        .unwrap_or_default()
                ));
            }
            steps.push(Step::Revert {
                version: *v,
                name,
                down: d.origin.clone(),
                down_sha256: d.sha256.clone(),
                noop: empty,
                sql: d.text.clone(),
            });
        }
        Some(DownFact::Missing { .. }) | None => {
            let looked = match facts.downs.get(v) {
                Some(DownFact::Missing { looked }) => looked.clone(),
                _ => vec![],
            };
            if options.allow_empty_down {
                steps.push(Step::Revert {
                    version: *v,
                    name,
                    down: DownOrigin::Nowhere,
                    down_sha256: String::new(),
                    noop: true,
                    sql: String::new(),
                });
                return;
            }
            problems.push(Problem {
                kind: ProblemKind::MissingDown,
                version: Some(*v),
                message: format!("cannot revert {v}_{name}: it has no down migration"),
                causes: looked.into_iter().map(|l| format!("looked in {l}")).collect(),
                hints: vec![
                    available,
                    "add a down.sql for it in a new commit and pass --down-from <that commit>".into(),
                    "or pass --allow-empty-down to drop it from the ledger without running anything".into(),
                ],
            });
        }
    }
}

/// `rollback` only reverts: a target that needs applies is refused, naming `deploy`.
fn refuse_applying_in_rollback(i: Inputs<'_>, d: &mut Decisions) {
    let Inputs {
        target,
        options,
        cand,
        ..
    } = i;
    let Decisions { problems, .. } = d;
    if !options.mode.may_apply() && !cand.apply.is_empty() {
        let list: Vec<String> = cand
            .apply
            .iter()
            .filter_map(|v| target.migrations.get(*v).map(|m| m.label()))
            .collect();
        problems.push(Problem {
            kind: ProblemKind::RollbackWouldApply,
            version: cand.apply.first().copied(),
            message: format!(
                "rolling back to {} would apply {} migration(s) that are not applied: {}",
                target.reference,
                list.len(),
                list.join(", ")
            ),
            causes: vec![],
            hints: vec![format!(
                "rollback only reverts; use `git migrate deploy {}` to move there",
                target.reference
            )],
        });
    }
}

/// An apply step for each version to apply, out-of-order ones as the policy says.
fn apply_steps(i: Inputs<'_>, d: &mut Decisions) {
    let Inputs {
        target,
        facts,
        options,
        cand,
        ..
    } = i;
    let Decisions {
        problems,
        warnings,
        steps,
        ..
    } = d;
    let ooo: BTreeSet<Version> = cand.out_of_order.iter().copied().collect();
    for v in &cand.apply {
        let Some(m) = target.migrations.get(*v) else {
            continue;
        };
        let mut note = None;
        if ooo.contains(v) {
            let fact = facts
                .out_of_order
                .get(v)
                .cloned()
                .unwrap_or(OutOfOrderFact::Unknown);
            let refuse = |why: String, problems: &mut Vec<Problem>| {
                problems.push(Problem {
                    kind: ProblemKind::OutOfOrder,
                    version: Some(*v),
                    message: format!(
                        "migration {} is out of order: a higher version is already applied",
                        m.label()
                    ),
                    causes: vec![why],
                    hints: vec![
                        "give it a version above the highest applied one (rename the folder)"
                            .into(),
                        "or pass --allow-out-of-order if applying it now is right".into(),
                    ],
                });
            };
            match (options.out_of_order, fact) {
                (OutOfOrderPolicy::Allow, _) => {
                    note = Some("out of order (allowed by policy)".to_string());
                }
                (OutOfOrderPolicy::Error, _) => {
                    refuse("the out-of-order policy is `error`".into(), problems);
                    continue;
                }
                (OutOfOrderPolicy::MergeAware, OutOfOrderFact::PresentAtDeployed { commit }) => {
                    refuse(
                        format!(
                            "it was already present at the deployed commit {} but was never applied",
                            crate::source::short(&commit)
                        ),
                        problems,
                    );
                    continue;
                }
                (OutOfOrderPolicy::MergeAware, OutOfOrderFact::Merged { merge, summary }) => {
                    let n = match merge {
                        Some(c) => format!(
                            "out of order: arrived with merge {}{}",
                            crate::source::short(&c),
                            summary.map(|s| format!(" \"{s}\"")).unwrap_or_default()
                        ),
                        None => "out of order: arrived through history not reachable from the deployed commit".to_string(),
                    };
                    warnings.push(format!("{}: {n}", m.label()));
                    note = Some(n);
                }
                (OutOfOrderPolicy::MergeAware, OutOfOrderFact::Unknown) => {
                    let n = "out of order: no deployed commit to compare with".to_string();
                    warnings.push(format!("{}: {n}", m.label()));
                    note = Some(n);
                }
            }
        }
        let Some(up) = &m.up else { continue };
        steps.push(Step::Apply {
            version: *v,
            name: m.name.clone(),
            location: m.location.clone(),
            up_path: up.path.clone(),
            up_blob: up.blob.clone(),
            down: m.down.as_ref().map(|d| (d.path.clone(), d.blob.clone())),
            out_of_order: note,
        });
    }
}

/// Which applies get their down captured (the last `policy.capture_downs` of those without a
/// usable down, outside no-transaction ones), and the warning that says so.
fn capture_downs(i: Inputs<'_>, d: &mut Decisions) -> Vec<Version> {
    let Inputs { facts, options, .. } = i;
    let Decisions { warnings, .. } = d;
    let without_down = &facts.apply_without_down;
    let capturable: Vec<Version> = without_down
        .iter()
        .copied()
        .filter(|v| !facts.apply_no_transaction.contains(v))
        .collect();
    let capture: Vec<Version> =
        capturable[capturable.len().saturating_sub(options.capture_downs)..].to_vec();
    if !without_down.is_empty() && options.mode.announces_captures() {
        let list = |vs: &[Version]| {
            vs.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let no_tx = without_down.len() - capturable.len();
        let mut warning = if capture.len() == without_down.len() {
            format!(
                "{} migration(s) to apply have no usable down.sql; their downs are computed as they are applied and stored in the ledger (roll back with --compute-downs): {}",
                without_down.len(),
                list(without_down)
            )
        } else {
            format!(
                "{} migration(s) to apply have no usable down.sql: {}; the downs of the last {} are computed as they are applied (policy.capture_downs), the others by replaying the history if a rollback needs them (--compute-downs)",
                without_down.len(),
                list(without_down),
                capture.len()
            )
        };
        if no_tx > 0 {
            warning.push_str(&format!(
                "; {no_tx} of them run outside a transaction (-- git-migrate:no-transaction), so their downs are not captured"
            ));
        }
        warnings.push(warning);
    }
    capture
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{Migration, MigrationFile};

    fn set(versions: &[(Version, &str)]) -> MigrationSet {
        MigrationSet::new(
            versions
                .iter()
                .map(|(v, blob)| Migration {
                    version: *v,
                    name: format!("m{v}"),
                    location: format!("migrations/{v}_m{v}"),
                    tree: Some(format!("tree-{blob}")),
                    resolved: true,
                    up: Some(MigrationFile {
                        path: format!("migrations/{v}_m{v}/up.sql"),
                        blob: blob.to_string(),
                    }),
                    down: Some(MigrationFile {
                        path: format!("migrations/{v}_m{v}/down.sql"),
                        blob: format!("d{v}"),
                    }),
                })
                .collect(),
        )
        .unwrap()
    }

    fn live(applied: &[(Version, &str)]) -> LiveState {
        LiveState {
            ledger_exists: true,
            applied: applied
                .iter()
                .map(|(v, blob)| {
                    (
                        *v,
                        AppliedMigration {
                            version: *v,
                            name: format!("m{v}"),
                            up_sha256: format!("sha-{blob}"),
                            up_blob: Some(blob.to_string()),
                            folder_tree: Some(format!("tree-{blob}")),
                            applied_commit: Some("c0ffee".into()),
                            has_down_sql: true,
                            dirty: false,
                        },
                    )
                })
                .collect(),
            deployed_commit: Some("deployed".into()),
            ..Default::default()
        }
    }

    fn facts() -> Facts {
        Facts {
            target_up_sha256: BTreeMap::new(),
            downs: BTreeMap::new(),
            out_of_order: BTreeMap::new(),
            metadata: MetadataFact::Unchanged,
            apply_without_down: vec![],
            apply_no_transaction: BTreeSet::new(),
            layout_only_edits: BTreeSet::new(),
            computed_downs: BTreeMap::new(),
            row_estimates: BTreeMap::new(),
            ledger_findings: vec![],
            metadata_folder_missing: None,
            environment: None,
            forward_only: None,
            unadopted: None,
        }
    }

    fn down(v: Version, text: &str) -> (Version, DownFact) {
        (
            v,
            DownFact::Found(DownSql {
                text: text.into(),
                sha256: "s".into(),
                origin: DownOrigin::Commit {
                    commit: "deployed".into(),
                    path: format!("migrations/{v}/down.sql"),
                },
            }),
        )
    }

    fn opts(mode: Mode) -> PlanOptions {
        PlanOptions {
            mode,
            out_of_order: OutOfOrderPolicy::MergeAware,
            allow_empty_down: false,
            accept_edited: false,
            compute_downs: ComputeDowns::Off,
            capture_downs: CAPTURE_DOWNS,
        }
    }

    fn run(
        target: &MigrationSet,
        live: &LiveState,
        facts: &Facts,
        o: PlanOptions,
    ) -> Result<Plan, Vec<Problem>> {
        plan(
            &Target {
                reference: "REV".into(),
                commit: Some("target".into()),
                dirty: false,
                migrations: target,
                selection: None,
            },
            live,
            facts,
            o,
        )
    }

    fn actions(p: &Plan) -> Vec<String> {
        p.steps
            .iter()
            .map(|s| match s {
                Step::Revert { version, noop, .. } => {
                    format!("revert {version}{}", if *noop { " (noop)" } else { "" })
                }
                Step::Apply { version, .. } => format!("apply {version}"),
            })
            .collect()
    }

    fn problem(kind: ProblemKind, message: &str) -> Problem {
        Problem {
            kind,
            version: None,
            message: message.into(),
            causes: vec!["cause".into()],
            hints: vec![],
        }
    }

    /// The ledger's findings about itself refuse every mode but `metadata apply`, and `apply`
    /// only warns (it is how such a ledger is put right); they come after the steps' refusals.
    #[test]
    fn ledger_findings_refuse_by_mode() {
        let target = set(&[(1, "a")]);
        let live = live(&[(1, "a")]);
        let mut f = facts();
        f.ledger_findings = vec![problem(ProblemKind::LedgerEdited, "row 1 edited by hand")];
        for mode in [Mode::Deploy, Mode::Rollback] {
            let refused = run(&target, &live, &f, opts(mode)).unwrap_err();
            assert_eq!(refused.len(), 1, "{mode:?}");
            assert_eq!(refused[0].kind, ProblemKind::LedgerEdited);
        }
        let warned = run(&target, &live, &f, opts(Mode::Apply)).unwrap();
        assert_eq!(
            warned.warnings,
            vec!["row 1 edited by hand (cause)".to_string()]
        );
        assert!(run(&target, &live, &f, opts(Mode::Metadata)).is_ok());
        // After the steps' own refusals.
        let mut dirty = live.clone();
        dirty.applied.get_mut(&1).unwrap().dirty = true;
        let kinds: Vec<ProblemKind> = run(&target, &dirty, &f, opts(Mode::Deploy))
            .unwrap_err()
            .into_iter()
            .map(|p| p.kind)
            .collect();
        assert_eq!(kinds, vec![ProblemKind::Dirty, ProblemKind::LedgerEdited]);
    }

    /// A target without a metadata folder refuses only when it would clear live metadata:
    /// the metadata changes, the database has some, and the command writes metadata.
    #[test]
    fn a_missing_metadata_folder_refuses_only_when_it_would_clear_metadata() {
        let target = set(&[(1, "a")]);
        let mut live = live(&[(1, "a")]);
        let mut f = facts();
        f.metadata_folder_missing = Some(problem(ProblemKind::MetadataMissing, "no folder"));
        // Unchanged metadata: nothing would be cleared.
        assert!(run(&target, &live, &f, opts(Mode::Deploy)).is_ok());
        f.metadata = MetadataFact::Changed {
            target_sha256: "t".into(),
            changes: vec![],
        };
        // No live metadata: nothing to clear.
        live.metadata_sha256 = None;
        assert!(run(&target, &live, &f, opts(Mode::Deploy)).is_ok());
        live.metadata_sha256 = Some("live".into());
        let refused = run(&target, &live, &f, opts(Mode::Deploy)).unwrap_err();
        assert_eq!(refused[0].kind, ProblemKind::MetadataMissing);
        assert!(run(&target, &live, &f, opts(Mode::Metadata)).is_err());
        // `apply` leaves the metadata alone.
        assert!(run(&target, &live, &f, opts(Mode::Apply)).is_ok());
    }

    /// `--env`'s rules refuse before anything else, naming the rule and what lets the target in;
    /// a commit the environment accepts plans as usual.
    #[test]
    fn environment_rules_refuse_first() {
        let target = set(&[(1, "a"), (2, "b")]);
        let live = live(&[(1, "a")]);
        let env = crate::config::Environment {
            name: "production".into(),
            database_url: None,
            database_urls: vec![],
            database_urls_command: None,
            require_tag: Some("v*".into()),
            promote_from: Some("staging".into()),
            confirm: true,
            forward_only: false,
        };
        let mut f = facts();
        let with = |commit: Option<&str>, tags: &[&str], promoted: Option<PromotedFact>| {
            EnvironmentRules {
                environment: env.clone(),
                commit: commit.map(str::to_string),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                promoted,
            }
        };
        f.environment = Some(with(
            Some("c0ffee0000"),
            &["v1.0.0"],
            Some(PromotedFact::Ran),
        ));
        assert!(run(&target, &live, &f, opts(Mode::Deploy)).is_ok());
        // Untagged, and never run where it is promoted from: two refusals, first of all.
        f.environment = Some(with(Some("c0ffee0000"), &[], Some(PromotedFact::NeverRan)));
        let mut dirty = live.clone();
        dirty.applied.get_mut(&1).unwrap().dirty = true;
        let refused = run(&target, &dirty, &f, opts(Mode::Deploy)).unwrap_err();
        let kinds: Vec<ProblemKind> = refused.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            vec![
                ProblemKind::EnvironmentRule,
                ProblemKind::EnvironmentRule,
                ProblemKind::Dirty
            ]
        );
        assert_eq!(
            refused[0].message,
            "environment production only accepts commits tagged \"v*\"; commit c0ffee0000 has no tag"
        );
        assert!(
            refused[0].hints[0].starts_with("tag the release"),
            "{:?}",
            refused[0].hints
        );
        assert_eq!(
            refused[1].message,
            "production is promoted from staging, and staging has never run c0ffee0000"
        );
        // A tag that does not match, a target that is not a commit, an unreachable source.
        f.environment = Some(with(Some("c0ffee0000"), &["nightly"], None));
        let refused = run(&target, &live, &f, opts(Mode::Rollback)).unwrap_err();
        assert!(refused[0]
            .message
            .ends_with("is tagged nightly, which does not match"));
        f.environment = Some(with(None, &[], None));
        let refused = run(&target, &live, &f, opts(Mode::Deploy)).unwrap_err();
        assert!(refused[0]
            .message
            .ends_with("and this target is not a commit"));
        assert_eq!(refused[0].hints.len(), 1, "no tag hint without a commit");
        f.environment = Some(with(
            Some("c0ffee0000"),
            &["v1.0.0"],
            Some(PromotedFact::Unreachable {
                why: "connection refused".into(),
                causes: vec!["host staging-db".into()],
            }),
        ));
        let refused = run(&target, &live, &f, opts(Mode::Deploy)).unwrap_err();
        assert_eq!(refused.len(), 1);
        assert!(refused[0]
            .message
            .ends_with("cannot be reached to check that it ran this commit: connection refused"));
        assert_eq!(refused[0].causes, vec!["host staging-db".to_string()]);
    }

    /// Forward-only refuses a deploy that reverts (an older commit, or a branch lacking a
    /// migration) or that goes to an older commit with the same migrations, naming both commits
    /// and the way past it; forward, a sibling with the same migrations, and `rollback` pass.
    #[test]
    fn forward_only_refuses_going_back() {
        let live = live(&[(1, "a"), (2, "b")]);
        let older = set(&[(1, "a")]);
        let mut f = facts();
        f.downs = [down(2, "DROP TABLE b;")].into_iter().collect();
        let rule = |rule: ForwardOnlyRule, older: bool| ForwardOnly {
            rule,
            target_is_older: older,
            deployed_tags: vec!["v2".into()],
            target_tags: vec!["v1".into()],
        };
        assert_eq!(
            run(&older, &live, &f, opts(Mode::Deploy))
                .unwrap()
                .reverted(),
            vec![2],
            "without the rule the revert is planned"
        );
        f.forward_only = Some(rule(ForwardOnlyRule::Flag, true));
        let refused = run(&older, &live, &f, opts(Mode::Deploy)).unwrap_err();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].kind, ProblemKind::ForwardOnly);
        assert_eq!(
            refused[0].message,
            "forward-only: the database is at v2 (deployed), and v1 (target) is an older commit: deploying it would revert 1 migration(s)"
        );
        assert_eq!(refused[0].causes[0], "would revert 2_m2");
        assert_eq!(
            refused[0].hints,
            vec![
                "to go back on purpose, roll back explicitly: git migrate rollback REV".to_string(),
                "or deploy it explicitly, without --forward-only: git migrate deploy REV".into(),
            ]
        );
        // Every problem at once: a missing down is reported after the rule.
        f.downs.clear();
        let kinds: Vec<ProblemKind> = run(&older, &live, &f, opts(Mode::Deploy))
            .unwrap_err()
            .iter()
            .map(|p| p.kind)
            .collect();
        assert_eq!(
            kinds,
            vec![ProblemKind::ForwardOnly, ProblemKind::MissingDown]
        );
        f.downs = [down(2, "DROP TABLE b;")].into_iter().collect();
        // `rollback` is the explicit way back; `metadata apply` moves no migration.
        assert!(run(&older, &live, &f, opts(Mode::Rollback)).is_ok());
        // A branch that lacks a migration the database has.
        f.forward_only = Some(rule(ForwardOnlyRule::Environment("pods".into()), false));
        let sibling = set(&[(1, "a"), (3, "c")]);
        let refused = run(&sibling, &live, &f, opts(Mode::Deploy)).unwrap_err();
        assert!(
            refused[0]
                .message
                .ends_with("lacks 1 of its migration(s): deploying it would revert 1 migration(s)"),
            "{}",
            refused[0].message
        );
        assert!(refused[0].hints[1].ends_with("--env pods --no-forward-only"));
        assert_eq!(
            refused[0].causes[1],
            "environment pods has forward_only: true, which refuses any deploy that moves it back"
        );
        // Forward, and a commit with the same migrations that is not older, pass.
        let newer = set(&[(1, "a"), (2, "b"), (3, "c")]);
        assert_eq!(
            run(&newer, &live, &f, opts(Mode::Deploy))
                .unwrap()
                .applied(),
            vec![3]
        );
        let same = set(&[(1, "a"), (2, "b")]);
        assert!(run(&same, &live, &f, opts(Mode::Deploy)).is_ok());
        // An older commit with the same migrations moves back too.
        f.forward_only = Some(rule(ForwardOnlyRule::Flag, true));
        let refused = run(&same, &live, &f, opts(Mode::Deploy)).unwrap_err();
        assert!(refused[0].message.ends_with(
            "deploying it would revert no migration, but record the older commit as deployed"
        ));
    }

    /// A rollback on a database the Hasura CLI manages, not adopted yet, is refused alone;
    /// deploy and apply plan (they adopt it), and `metadata apply` leaves migrations alone.
    #[test]
    fn rollback_refuses_an_unadopted_database() {
        let target = set(&[(1, "a")]);
        let live = live(&[]);
        let mut f = facts();
        f.unadopted = Some(3);
        let refused = run(&target, &live, &f, opts(Mode::Rollback)).unwrap_err();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].kind, ProblemKind::NotAdopted);
        assert!(
            refused[0].message.contains("(3 applied version(s)"),
            "{}",
            refused[0].message
        );
        for mode in [Mode::Deploy, Mode::Apply, Mode::Metadata] {
            assert!(run(&target, &live, &f, opts(mode)).is_ok(), "{mode:?}");
        }
        f.unadopted = None;
        assert!(unadopted_refusal(Mode::Rollback, None).is_none());
    }

    #[test]
    fn table_of_plans() {
        struct Case {
            name: &'static str,
            target: Vec<(Version, &'static str)>,
            applied: Vec<(Version, &'static str)>,
            downs: Vec<(Version, &'static str)>,
            mode: Mode,
            allow_empty: bool,
            expect: Result<Vec<&'static str>, Vec<ProblemKind>>,
        }
        let cases = vec![
            Case {
                name: "fresh deploy applies ascending",
                target: vec![(3, "c"), (1, "a"), (2, "b")],
                applied: vec![],
                downs: vec![],
                mode: Mode::Deploy,
                allow_empty: false,
                expect: Ok(vec!["apply 1", "apply 2", "apply 3"]),
            },
            Case {
                name: "no-op",
                target: vec![(1, "a"), (2, "b")],
                applied: vec![(1, "a"), (2, "b")],
                downs: vec![],
                mode: Mode::Deploy,
                allow_empty: false,
                expect: Ok(vec![]),
            },
            Case {
                name: "rollback reverts descending",
                target: vec![(1, "a")],
                applied: vec![(1, "a"), (2, "b"), (3, "c")],
                downs: vec![(2, "drop b"), (3, "drop c")],
                mode: Mode::Rollback,
                allow_empty: false,
                expect: Ok(vec!["revert 3", "revert 2"]),
            },
            Case {
                name: "sibling branch: reverts first, then applies",
                target: vec![(1, "a"), (4, "d")],
                applied: vec![(1, "a"), (2, "b"), (3, "c")],
                downs: vec![(2, "drop b"), (3, "drop c")],
                mode: Mode::Deploy,
                allow_empty: false,
                expect: Ok(vec!["revert 3", "revert 2", "apply 4"]),
            },
            Case {
                name: "rollback refuses to apply",
                target: vec![(1, "a"), (4, "d")],
                applied: vec![(1, "a"), (2, "b")],
                downs: vec![(2, "drop b")],
                mode: Mode::Rollback,
                allow_empty: false,
                expect: Err(vec![ProblemKind::RollbackWouldApply]),
            },
            Case {
                name: "missing and empty downs are all reported",
                target: vec![],
                applied: vec![(1, "a"), (2, "b"), (3, "c")],
                downs: vec![
                    (2, "-- Could not auto-generate a down migration.\n"),
                    (3, ""),
                ],
                mode: Mode::Rollback,
                allow_empty: false,
                expect: Err(vec![
                    ProblemKind::EmptyDown,
                    ProblemKind::EmptyDown,
                    ProblemKind::MissingDown,
                ]),
            },
            Case {
                name: "allow-empty-down makes empty downs no-ops",
                target: vec![],
                applied: vec![(1, "a"), (2, "b")],
                downs: vec![(1, "drop a"), (2, "  ")],
                mode: Mode::Rollback,
                allow_empty: true,
                expect: Ok(vec!["revert 2 (noop)", "revert 1"]),
            },
        ];
        for c in cases {
            let target = set(&c.target);
            let live = live(&c.applied);
            let mut f = facts();
            f.downs = c.downs.iter().map(|(v, t)| down(*v, t)).collect();
            let mut o = opts(c.mode);
            o.allow_empty_down = c.allow_empty;
            let got = run(&target, &live, &f, o);
            match (&c.expect, got) {
                (Ok(want), Ok(p)) => assert_eq!(actions(&p), *want, "{}", c.name),
                (Err(want), Err(problems)) => {
                    let kinds: Vec<_> = problems.iter().map(|p| p.kind).collect();
                    assert_eq!(kinds, *want, "{}", c.name)
                }
                (want, got) => panic!("{}: wanted {want:?}, got {got:?}", c.name),
            }
        }
    }

    #[test]
    fn the_last_migrations_without_a_down_are_captured_up_to_the_limit() {
        let target = set(&[(1, "a"), (2, "b"), (3, "c"), (4, "d")]);
        let live = live(&[]);
        let mut f = facts();
        f.apply_without_down = vec![1, 3, 4];
        let p = run(&target, &live, &f, opts(Mode::Deploy)).unwrap();
        assert_eq!(p.capture, vec![1, 3, 4]);
        assert!(p.warnings[0].contains("their downs are computed as they are applied"));
        let mut o = opts(Mode::Deploy);
        o.capture_downs = 2;
        let p = run(&target, &live, &f, o).unwrap();
        assert_eq!(p.capture, vec![3, 4]);
        assert!(
            p.warnings[0].contains("the downs of the last 2"),
            "{:?}",
            p.warnings
        );
        o.capture_downs = 0;
        assert!(run(&target, &live, &f, o).unwrap().capture.is_empty());
        // A no-transaction migration's down is never captured, and the warning says so.
        f.apply_no_transaction.insert(4);
        let p = run(&target, &live, &f, opts(Mode::Deploy)).unwrap();
        assert_eq!(p.capture, vec![1, 3]);
        assert!(
            p.warnings[0].contains("1 of them run outside a transaction"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn compute_downs_fills_gaps_or_replaces_every_down() {
        use crate::schema::{ComputedAt, ComputedDown, Destroyed};
        let target = set(&[(1, "a")]);
        let live = live(&[(1, "a"), (2, "b"), (3, "c")]);
        let mut f = facts();
        f.downs
            .extend([down(2, "  -- nothing\n"), down(3, "drop table c;")]);
        let computed = |sql: &str| ComputedDown {
            at: ComputedAt::Apply,
            sql: sql.into(),
            destroys: vec![Destroyed {
                what: "drops table public.b and its rows".into(),
                table: Some("public.b".into()),
            }],
            error: None,
        };
        f.computed_downs.insert(2, computed("DROP TABLE public.b;"));
        f.row_estimates.insert("public.b".into(), 12);
        // Off: refused, saying a computed down is stored.
        let p = run(&target, &live, &f, opts(Mode::Rollback)).unwrap_err();
        assert_eq!(p[0].kind, ProblemKind::EmptyDown);
        assert!(
            p[0].hints[0].contains("--compute-downs"),
            "{:?}",
            p[0].hints
        );
        // Gaps: the empty one is computed, the written one runs.
        let mut o = opts(Mode::Rollback);
        o.compute_downs = ComputeDowns::Gaps;
        let plan = run(&target, &live, &f, o).unwrap();
        let origins: Vec<&DownOrigin> = plan
            .steps
            .iter()
            .map(|s| match s {
                Step::Revert { down, .. } => down,
                Step::Apply { .. } => unreachable!(),
            })
            .collect();
        assert!(matches!(origins[0], DownOrigin::Commit { .. }));
        assert_eq!(
            origins[1],
            &DownOrigin::Computed {
                at: ComputedAt::Apply
            }
        );
        assert_eq!(
            plan.destroys,
            ["2_m2: drops table public.b and its rows (about 12 rows)"]
        );
        // All: every down must be computed; 3 has none, so the plan says so.
        o.compute_downs = ComputeDowns::All;
        let p = run(&target, &live, &f, o).unwrap_err();
        assert_eq!(p.len(), 1);
        assert!(p[0]
            .message
            .contains("cannot revert 3_m3: no computed down is available"));
        // A down that could not be computed refuses, saying why.
        f.computed_downs.insert(
            3,
            ComputedDown::failed(ComputedAt::Replay, "rule public.r differs"),
        );
        let p = run(&target, &live, &f, o).unwrap_err();
        assert!(
            p[0].causes[0].contains("rule public.r differs"),
            "{:?}",
            p[0]
        );
    }

    #[test]
    fn modified_after_apply_names_both_checksums() {
        let target = set(&[(1, "a2")]);
        let live = live(&[(1, "a")]);
        let c = candidates(&target, &live);
        assert_eq!(c.checksum, vec![1]);
        let mut f = facts();
        f.target_up_sha256.insert(1, "sha-new".into());
        let p = run(&target, &live, &f, opts(Mode::Deploy)).unwrap_err();
        assert_eq!(p[0].kind, ProblemKind::ModifiedAfterApply);
        let text = p[0].causes.join("\n");
        assert!(text.contains("sha-a") && text.contains("sha-new") && text.contains("c0ffee"));
        // Same content under a new blob id (e.g. applied from the working tree) is fine.
        f.target_up_sha256.insert(1, "sha-a".into());
        assert!(run(&target, &live, &f, opts(Mode::Deploy))
            .unwrap()
            .is_noop());
    }

    #[test]
    fn equal_folder_trees_need_no_reads() {
        let mut target = set(&[(1, "a"), (2, "b")]);
        let live = live(&[(1, "a")]);
        // Unresolved folders: 1 has the ledger's tree id, 2 is new.
        for v in [1, 2] {
            let m = target.get_mut(v).unwrap();
            m.resolved = false;
            m.up = None;
            m.down = None;
        }
        assert_eq!(needs_files(&target, &live), vec![2]);
        assert!(candidates(&target, &live).checksum.is_empty());
        // A different folder tree (down.sql edited, say) must be read and its up compared.
        target.get_mut(1).unwrap().tree = Some("tree-other".into());
        assert_eq!(needs_files(&target, &live), vec![1, 2]);
    }

    #[test]
    fn out_of_order_policies() {
        let target = set(&[(1, "a"), (2, "b"), (3, "c")]);
        let live = live(&[(1, "a"), (3, "c")]);
        assert_eq!(candidates(&target, &live).out_of_order, vec![2]);
        let mut f = facts();
        f.out_of_order.insert(
            2,
            OutOfOrderFact::Merged {
                merge: Some("feedbeef00".into()),
                summary: Some("Merge branch 'x'".into()),
            },
        );
        let p = run(&target, &live, &f, opts(Mode::Deploy)).unwrap();
        assert_eq!(actions(&p), vec!["apply 2"]);
        assert!(p.warnings[0].contains("feedbeef00"), "{:?}", p.warnings);

        f.out_of_order.insert(
            2,
            OutOfOrderFact::PresentAtDeployed {
                commit: "deployed".into(),
            },
        );
        let e = run(&target, &live, &f, opts(Mode::Deploy)).unwrap_err();
        assert_eq!(e[0].kind, ProblemKind::OutOfOrder);
        let mut o = opts(Mode::Deploy);
        o.out_of_order = OutOfOrderPolicy::Allow;
        assert!(run(&target, &live, &f, o).is_ok());
        o.out_of_order = OutOfOrderPolicy::Error;
        f.out_of_order.clear();
        assert!(run(&target, &live, &f, o).is_err());
    }

    #[test]
    fn reverted_versions_do_not_make_applies_out_of_order() {
        // Deploying a sibling branch: 3 is reverted, so 2 is not out of order.
        let target = set(&[(1, "a"), (2, "b")]);
        let live = live(&[(1, "a"), (3, "c")]);
        assert!(candidates(&target, &live).out_of_order.is_empty());
    }

    #[test]
    fn metadata_mode_leaves_migrations_alone() {
        let target = set(&[(1, "a"), (3, "c")]);
        let live = live(&[(1, "a"), (2, "b")]);
        let mut f = facts();
        f.metadata = MetadataFact::Changed {
            target_sha256: "sha256:x".into(),
            changes: vec![],
        };
        let p = run(&target, &live, &f, opts(Mode::Metadata)).unwrap();
        assert!(p.steps.is_empty());
        assert!(p.metadata.is_some());
    }

    #[test]
    fn metadata_only_change() {
        let target = set(&[(1, "a")]);
        let live = live(&[(1, "a")]);
        let mut f = facts();
        f.metadata = MetadataFact::Changed {
            target_sha256: "sha256:x".into(),
            changes: vec![],
        };
        let p = run(&target, &live, &f, opts(Mode::Rollback)).unwrap();
        assert!(p.steps.is_empty());
        assert!(!p.is_noop());
    }

    #[test]
    fn hasura_selection_rules() {
        let source = set(&[(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")]);
        let l = live(&[(1, "a"), (2, "b"), (4, "d")]);
        let sel = |spec| select(spec, &source, &l);
        // --up: every pending version ascending, including the gap (3) below the highest (4).
        assert_eq!(sel(ApplySpec::Up(None)).unwrap().apply, vec![3, 5]);
        assert_eq!(sel(ApplySpec::Up(Some(1))).unwrap().apply, vec![3]);
        assert!(sel(ApplySpec::Up(Some(3)))
            .unwrap_err()
            .message
            .contains("1 short"));
        // --down: from the highest applied, descending.
        assert_eq!(sel(ApplySpec::Down(Some(2))).unwrap().revert, vec![4, 2]);
        assert_eq!(sel(ApplySpec::Down(None)).unwrap().revert, vec![4, 2, 1]);
        assert!(sel(ApplySpec::Down(Some(4))).is_err());
        // --version V --type up|down: only V.
        assert_eq!(
            sel(ApplySpec::Version {
                version: 2,
                up: false
            })
            .unwrap()
            .revert,
            vec![2]
        );
        assert!(sel(ApplySpec::Version {
            version: 3,
            up: false
        })
        .is_err());
        assert_eq!(
            sel(ApplySpec::Version {
                version: 3,
                up: true
            })
            .unwrap()
            .apply,
            vec![3]
        );
        assert!(sel(ApplySpec::Version {
            version: 2,
            up: true
        })
        .is_err());
        assert!(sel(ApplySpec::Version {
            version: 9,
            up: true
        })
        .is_err());
        // --goto: down to V keeps V; up to V includes V.
        assert_eq!(sel(ApplySpec::Goto(2)).unwrap().revert, vec![4]);
        assert_eq!(sel(ApplySpec::Goto(5)).unwrap().apply, vec![3, 5]);
        assert!(sel(ApplySpec::Goto(3))
            .unwrap_err()
            .message
            .contains("not applied"));
        // At the highest applied version, --goto still fills gaps below it (Hasura does too).
        assert_eq!(sel(ApplySpec::Goto(4)).unwrap().apply, vec![3]);
    }
}
