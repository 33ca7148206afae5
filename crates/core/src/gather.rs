//! The I/O edge of planning: reads from git (and the ledger's stored downs) exactly the facts
//! that [`crate::plan::candidates`] asks for, builds the target metadata snapshot when its
//! tree changed, and calls the pure planner.

use crate::ledger::{DbState, Ledger, LedgerError};
use crate::metadata::{self, MetadataError, MetadataFiles};
use crate::plan::{
    self, DownFact, DownOrigin, DownSql, Facts, LiveState, MetadataFact, OutOfOrderFact, Plan,
    PlanOptions, Problem, Target,
};
use crate::project::{MigrationSet, Version};
use crate::source::{Project, Repo, SourceError};
use git2::Oid;
use postgres::GenericClient;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Errors while gathering facts.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    /// Git.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Metadata.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// Ledger.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// What a plan is computed for: a project read at a revision, or nothing at all
/// (rolling back past the first deployment).
#[derive(Clone, Debug)]
pub struct TargetProject {
    /// As typed.
    pub reference: String,
    /// The project, or `None` for the empty state.
    pub project: Option<Project>,
}

impl TargetProject {
    fn migrations(&self) -> &MigrationSet {
        static EMPTY: std::sync::OnceLock<MigrationSet> = std::sync::OnceLock::new();
        self.project
            .as_ref()
            .map(|p| &p.migrations)
            .unwrap_or_else(|| EMPTY.get_or_init(MigrationSet::default))
    }

    /// The target commit (hex).
    pub fn commit(&self) -> Option<String> {
        self.project.as_ref().and_then(|p| p.commit_hex())
    }
}

/// Options of the edge (beyond the planner's).
#[derive(Clone, Debug, Default)]
pub struct GatherOptions {
    /// `--down-from REV`.
    pub down_from: Option<String>,
    /// `--project DIR`.
    pub project_dir: Option<String>,
    /// `apply`'s explicit selection, if any.
    pub selection: Option<plan::Selection>,
    /// Downs computed by replaying the applied history in a scratch database (the command
    /// layer does that for [`Planned::needs_replay`], then plans again).
    pub computed_now: BTreeMap<Version, crate::schema::ComputedDown>,
    /// What `--env` asks of the target, gathered by the command layer (it may read another
    /// environment's database).
    pub environment: Option<plan::EnvironmentRules>,
    /// `--forward-only`, or the environment's `forward_only: true` (`None`: off).
    pub forward_only: Option<plan::ForwardOnlyRule>,
}

/// A computed plan with what executing it needs.
#[derive(Debug)]
pub struct Planned {
    /// The plan (or every problem).
    pub plan: Result<Plan, Vec<Problem>>,
    /// Target metadata snapshot, when it was built.
    pub snapshot: Option<serde_json::Value>,
    /// Canonical hash of the metadata after the plan.
    pub metadata_sha256: Option<String>,
    /// Metadata folder tree id of the target.
    pub metadata_tree: Option<String>,
    /// Versions to revert whose down is to be computed (`--compute-downs`), for which the
    /// ledger stores none and [`GatherOptions::computed_now`] has none: replay the history to
    /// compute them, then plan again.
    pub needs_replay: Vec<Version>,
}

/// The computed downs of the versions to revert that may use one (a missing or empty down,
/// or every one with `--compute-downs=all`): stored in the ledger at apply time, else
/// computed by replay ([`GatherOptions::computed_now`]). Also the versions still needing a
/// replay. Read without `--compute-downs` too, so that a refusal can say one is there.
fn computed_downs(
    client: &mut impl GenericClient,
    ledger: &Ledger,
    state: &DbState,
    revert: &[Version],
    downs: &BTreeMap<Version, DownFact>,
    options: PlanOptions,
    gopts: &GatherOptions,
) -> Result<(BTreeMap<Version, crate::schema::ComputedDown>, Vec<Version>), GatherError> {
    let wanted: Vec<Version> = revert
        .iter()
        .copied()
        .filter(|v| {
            options.compute_downs == plan::ComputeDowns::All
                || !matches!(downs.get(v), Some(DownFact::Found(d))
                    if !crate::project::sql::is_effectively_empty(&d.text))
        })
        .collect();
    // A ledger of format 3 or older (or none yet) stores no computed downs.
    let stored = match state.schema_version {
        Some(v) if v >= crate::ledger::COMPUTED_DOWNS_SINCE => {
            ledger.computed_downs(client, &wanted)?
        }
        _ => vec![],
    };
    let mut found: BTreeMap<Version, crate::schema::ComputedDown> = stored.into_iter().collect();
    for v in &wanted {
        if let (false, Some(c)) = (found.contains_key(v), gopts.computed_now.get(v)) {
            found.insert(*v, c.clone());
        }
    }
    let needs_replay = match options.compute_downs {
        plan::ComputeDowns::Off => vec![],
        _ => wanted
            .into_iter()
            .filter(|v| !found.contains_key(v))
            .collect(),
    };
    Ok((found, needs_replay))
}

/// The applied history up to `last` as a replay runs it: each applied version's up SQL as it
/// ran (the blob the ledger recorded, else the file at the deployed commit, else at the commit
/// it was applied from), with a whole-file transaction wrapper blanked as a deployment does.
/// A version found nowhere carries why, for the computed downs that depend on it.
pub fn applied_history(
    repo: &Repo,
    live: &LiveState,
    last: Version,
    project_dir: Option<&str>,
) -> Result<Vec<crate::verify::replay::ReplayStep>, GatherError> {
    let mut projects = ProjectCache::new(repo, project_dir);
    let mut out = Vec::new();
    for (v, a) in live.applied.range(..=last) {
        let mut commits: Vec<String> = Vec::new();
        if !live.deployed_dirty {
            commits.extend(live.deployed_commit.clone());
        }
        commits.extend(a.applied_commit.clone());
        commits.dedup();
        let mut file = None;
        for c in &commits {
            if let Some(p) = projects.get_resolved(c, *v)? {
                if let Some(up) = p.migrations.get(*v).and_then(|m| m.up.clone()) {
                    file = Some((p.tree.clone(), up, p.at()));
                    break;
                }
            }
        }
        let recorded = a.up_blob.as_deref().and_then(|b| repo.blob_bytes(b));
        let up = match (recorded, file) {
            (Some(bytes), Some((_, up, at))) => Ok((bytes, up.path, at)),
            (Some(bytes), None) => Ok((bytes, "up.sql".to_string(), "the ledger's blob".into())),
            (None, Some((tree, up, at))) => repo
                .read(&tree, &up.path, Some(&up.blob))
                .map(|bytes| (bytes, up.path, at))
                .map_err(|e| e.to_string()),
            (None, None) => Err(format!(
                "its up file is in no commit this repository has (looked in {})",
                if commits.is_empty() {
                    "no recorded commit".to_string()
                } else {
                    commits
                        .iter()
                        .map(|c| crate::source::short(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )),
        };
        let up = up.and_then(|(bytes, path, at)| {
            crate::source::StepSql::from_up_file(bytes, &path, &at)
                .map(|s| s.text)
                .map_err(|e| e.to_string())
        });
        out.push(crate::verify::replay::ReplayStep { version: *v, up });
    }
    Ok(out)
}

/// `pg_class.reltuples` of the tables whose rows or values the computed downs destroy.
fn row_estimates(
    client: &mut impl GenericClient,
    computed: &BTreeMap<Version, crate::schema::ComputedDown>,
) -> Result<BTreeMap<String, i64>, GatherError> {
    let tables: Vec<String> = computed
        .values()
        .flat_map(|c| c.destroys.iter().filter_map(|d| d.table.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if tables.is_empty() {
        return Ok(BTreeMap::new());
    }
    Ok(Ledger::row_estimates(client, &tables)?)
}

/// Reads the metadata files of a project.
pub(crate) fn read_metadata_files(
    repo: &Repo,
    project: &Project,
) -> Result<MetadataFiles, SourceError> {
    let mut files = Vec::new();
    if let Some(entries) = repo.list(&project.tree, &project.metadata_dir)? {
        for e in entries {
            if !metadata::V2_FILE_NAMES.contains(&e.name.as_str()) {
                continue;
            }
            // A linked metadata file would otherwise read as missing (and clear what it holds).
            if let Some(kind) = e.special {
                return Err(SourceError::Unfollowed {
                    path: format!("{}/{}", project.metadata_dir, e.name),
                    at: project.at(),
                    kind,
                });
            }
            if e.name == "databases" {
                files.push((e.name, vec![]));
                continue;
            }
            if e.kind != crate::project::MigrationEntryKind::File {
                continue;
            }
            let path = format!("{}/{}", project.metadata_dir, e.name);
            let bytes = repo.read(&project.tree, &path, e.id.as_deref())?;
            files.push((e.name, bytes));
        }
    }
    Ok(MetadataFiles {
        dir: project.metadata_dir.clone(),
        at: project.at(),
        files,
    })
}

/// Builds the target snapshot of a project (or the empty metadata): the config v2 files, or
/// the config v3 layout (`databases/` with `!include`s) when the project or its metadata
/// folder says version 3.
pub fn target_snapshot(
    repo: &Repo,
    target: &TargetProject,
) -> Result<serde_json::Value, GatherError> {
    let Some(p) = &target.project else {
        return Ok(metadata::build_snapshot(&MetadataFiles {
            dir: "metadata".into(),
            at: "the empty state".into(),
            files: vec![],
        })?);
    };
    let v3 = || {
        metadata::v3::build_v3_snapshot(
            &metadata::git::ProjectReader::new(repo, p),
            &p.metadata_dir,
            &p.at(),
        )
    };
    // A metadata folder that is a link or a submodule would read as missing: no metadata.
    if let Some(kind) = repo.special_at(&p.tree, &p.metadata_dir)? {
        return Err(unfollowed_metadata(&p.metadata_dir, &p.at(), kind));
    }
    if p.config.version >= 3 {
        return Ok(v3()?);
    }
    let files = read_metadata_files(repo, p).map_err(|e| match e {
        SourceError::Unfollowed { path, at, kind } => unfollowed_metadata(&path, &at, kind),
        other => other.into(),
    })?;
    match metadata::build_snapshot(&files) {
        Err(MetadataError::Unsupported { .. }) => Ok(v3()?),
        other => Ok(other?),
    }
}

fn unfollowed_metadata(path: &str, at: &str, kind: &str) -> GatherError {
    GatherError::Metadata(MetadataError::Shape {
        path: path.to_string(),
        at: at.to_string(),
        message: format!(
            "is a {kind}; git-migrate reads only files and folders stored in git, and never \
             follows links or submodules"
        ),
    })
}

/// Gathers facts and plans. `client` is used only to read stored downs and the live
/// snapshot when needed.
pub fn plan_for(
    repo: &Repo,
    client: &mut impl GenericClient,
    ledger: &Ledger,
    target: &mut TargetProject,
    state: &DbState,
    options: PlanOptions,
    gopts: &GatherOptions,
) -> Result<Planned, GatherError> {
    let live = &state.live;
    let metadata_only = !options.mode.moves_migrations();
    // Read the files of exactly the migration folders the plan may need.
    if let Some(p) = target.project.as_mut().filter(|_| !metadata_only) {
        let needed = plan::needs_files(&p.migrations, live);
        let at = p.at();
        let dropped = repo.resolve(&mut p.migrations, needed, &at)?;
        p.skipped_folders.extend(dropped);
    }
    let target = &*target;
    let migrations = target.migrations();
    let cand = if metadata_only {
        plan::Candidates::default()
    } else {
        plan::candidates_with(migrations, live, gopts.selection.as_ref())
    };
    let mut projects = ProjectCache::new(repo, gopts.project_dir.as_deref());

    let (target_up_sha256, layout_only_edits) =
        checksum_facts(repo, target, live, &cand, migrations)?;
    let downs = down_facts(repo, client, ledger, live, &cand, &mut projects, gopts)?;
    let out_of_order = out_of_order_facts(repo, target, live, &cand, &mut projects)?;
    let (apply_without_down, apply_no_transaction) =
        apply_down_facts(repo, target, &cand, migrations)?;
    let MetadataFacts {
        tree: metadata_tree,
        fact: metadata_fact,
        snapshot,
        sha256: metadata_sha256,
    } = metadata_facts(repo, client, ledger, target, live, state)?;

    // The ledger disagreeing with its own history, and a target without a metadata folder:
    // facts for the planner, which decides what they refuse.
    let ledger_findings = state
        .findings
        .iter()
        .map(|f| f.problem(ledger.schema()))
        .collect();
    // Looked up only when it can matter: the target's metadata differs from live metadata.
    let metadata_folder_missing = match (&target.project, &metadata_fact) {
        (Some(p), MetadataFact::Changed { .. }) if live.metadata_sha256.is_some() => {
            metadata_folder_missing(repo, p, live)?
        }
        _ => None,
    };

    let (computed_downs, needs_replay) =
        computed_downs(client, ledger, state, &cand.revert, &downs, options, gopts)?;
    let row_estimates = row_estimates(client, &computed_downs)?;
    let facts = Facts {
        target_up_sha256,
        downs,
        out_of_order,
        metadata: metadata_fact,
        apply_without_down,
        apply_no_transaction,
        layout_only_edits,
        computed_downs,
        row_estimates,
        ledger_findings,
        metadata_folder_missing,
        environment: gopts.environment.clone(),
        forward_only: gopts
            .forward_only
            .clone()
            .map(|rule| forward_only_facts(repo, rule, target, live)),
        unadopted: crate::ledger::adopt::unadopted(state),
    };
    let plan = plan::plan(
        &Target {
            reference: target.reference.clone(),
            commit: target.commit(),
            dirty: target.project.as_ref().is_some_and(|p| p.tree.is_dirty()),
            migrations,
            selection: gopts.selection.as_ref(),
        },
        live,
        &facts,
        options,
    );
    if let (Ok(plan), Some(p)) = (&plan, &target.project) {
        check_up_sql(repo, p, plan)?;
    }
    Ok(Planned {
        plan,
        snapshot,
        metadata_sha256,
        metadata_tree,
        needs_replay,
    })
}

/// Checksums at the target of applied migrations whose blob id differs, and which of those
/// edits are only layout (whitespace and comments).
fn checksum_facts(
    repo: &Repo,
    target: &TargetProject,
    live: &LiveState,
    cand: &plan::Candidates,
    migrations: &MigrationSet,
) -> Result<(BTreeMap<Version, String>, BTreeSet<Version>), GatherError> {
    let mut target_up_sha256 = BTreeMap::new();
    let mut layout_only_edits = BTreeSet::new();
    if let Some(p) = &target.project {
        for v in &cand.checksum {
            if let Some(up) = migrations.get(*v).and_then(|m| m.up.as_ref()) {
                let bytes = repo.read(&p.tree, &up.path, Some(&up.blob))?;
                let sha = crate::checksum::sha256_hex(&bytes);
                let applied = &live.applied[v];
                if sha != applied.up_sha256 && layout_only_edit(repo, applied, &up.path, bytes) {
                    layout_only_edits.insert(*v);
                }
                target_up_sha256.insert(*v, sha);
            }
        }
    }
    Ok((target_up_sha256, layout_only_edits))
}

/// Where the down of each version to revert is (design §7.2): `--down-from`, the deployed
/// commit, the commit it was applied at, else the ledger's stored copy; or where it was looked.
fn down_facts(
    repo: &Repo,
    client: &mut impl GenericClient,
    ledger: &Ledger,
    live: &LiveState,
    cand: &plan::Candidates,
    projects: &mut ProjectCache<'_>,
    gopts: &GatherOptions,
) -> Result<BTreeMap<Version, DownFact>, GatherError> {
    let mut downs = BTreeMap::new();
    if !cand.revert.is_empty() {
        // Versions not found in git, with what was looked at, for the ledger's stored copies.
        let mut not_in_git: Vec<(Version, Vec<String>, Option<String>)> = Vec::new();
        let override_project = match &gopts.down_from {
            Some(rev) => {
                let mut p = repo.project(
                    &crate::source::Source::Rev(rev.clone()),
                    gopts.project_dir.as_deref(),
                )?;
                let at = p.at();
                repo.resolve(&mut p.migrations, cand.revert.iter().copied(), &at)?;
                Some(p)
            }
            None => None,
        };
        for v in &cand.revert {
            let applied = &live.applied[v];
            let mut looked = Vec::new();
            let mut found = None;
            if let (Some(p), Some(rev)) = (&override_project, &gopts.down_from) {
                if let Some(d) = p.migrations.get(*v).and_then(|m| m.down.clone()) {
                    let bytes = repo.read(&p.tree, &d.path, Some(&d.blob))?;
                    found = Some(down_sql(
                        bytes,
                        DownOrigin::Override {
                            rev: rev.clone(),
                            commit: p.commit_hex().unwrap_or_default(),
                            path: d.path.clone(),
                        },
                        &d.path,
                        &p.at(),
                    )?);
                } else {
                    looked.push(format!("{rev} (--down-from)"));
                }
            }
            let mut commits: Vec<String> = Vec::new();
            if !live.deployed_dirty {
                commits.extend(live.deployed_commit.clone());
            }
            commits.extend(applied.applied_commit.clone());
            commits.dedup();
            let mut missing_commit = None;
            for c in commits {
                if found.is_some() {
                    break;
                }
                match projects.get_resolved(&c, *v)? {
                    Some(p) => match p.migrations.get(*v).and_then(|m| m.down.clone()) {
                        Some(d) => {
                            let bytes = repo.read(&p.tree, &d.path, Some(&d.blob))?;
                            found = Some(down_sql(
                                bytes,
                                DownOrigin::Commit {
                                    commit: c.clone(),
                                    path: d.path.clone(),
                                },
                                &d.path,
                                &p.at(),
                            )?);
                        }
                        None => looked.push(format!(
                            "commit {} (no down.sql for {v})",
                            crate::source::short(&c)
                        )),
                    },
                    None if repo.has_commit(&c) => looked.push(format!(
                        "commit {} (its project could not be read)",
                        crate::source::short(&c)
                    )),
                    None => {
                        looked.push(format!(
                            "commit {} (not in this repository)",
                            crate::source::short(&c)
                        ));
                        missing_commit.get_or_insert(c);
                    }
                }
            }
            match found {
                Some(d) => {
                    downs.insert(*v, DownFact::Found(d));
                }
                None => not_in_git.push((*v, looked, missing_commit)),
            }
        }
        if !not_in_git.is_empty() {
            let versions: Vec<Version> = not_in_git.iter().map(|(v, _, _)| *v).collect();
            let stored: HashMap<Version, Option<String>> = ledger
                .stored_downs(client, &versions)?
                .into_iter()
                .collect();
            for (v, mut looked, missing_commit) in not_in_git {
                let fact = match stored.get(&v).cloned().flatten() {
                    Some(text) => DownFact::Found(DownSql {
                        sha256: crate::checksum::sha256_hex(text.as_bytes()),
                        text,
                        origin: DownOrigin::Ledger { missing_commit },
                    }),
                    None => {
                        looked.push("the ledger's stored copy (none)".into());
                        DownFact::Missing { looked }
                    }
                };
                downs.insert(v, fact);
            }
        }
    }
    Ok(downs)
}

/// How each out-of-order version arrived: present at the deployed commit already, or through
/// a merge (which one), or unknown.
fn out_of_order_facts(
    repo: &Repo,
    target: &TargetProject,
    live: &LiveState,
    cand: &plan::Candidates,
    projects: &mut ProjectCache<'_>,
) -> Result<BTreeMap<Version, OutOfOrderFact>, GatherError> {
    let mut out_of_order = BTreeMap::new();
    if !cand.out_of_order.is_empty() {
        let deployed = live
            .deployed_commit
            .as_ref()
            .filter(|c| repo.has_commit(c))
            .cloned();
        let target_commit = target.project.as_ref().and_then(|p| p.tree.commit());
        for v in &cand.out_of_order {
            let fact = match (&deployed, target_commit) {
                (Some(d), Some(t)) => {
                    if projects.versions(d)?.contains(v) {
                        OutOfOrderFact::PresentAtDeployed { commit: d.clone() }
                    } else {
                        let merge = find_merge(repo, projects, t, d, *v)?;
                        OutOfOrderFact::Merged {
                            summary: merge.and_then(|m| repo.summary(m)),
                            merge: merge.map(|m| m.to_string()),
                        }
                    }
                }
                _ => OutOfOrderFact::Unknown,
            };
            out_of_order.insert(*v, fact);
        }
    }
    Ok(out_of_order)
}

/// The versions to apply without a usable down (for the forward warning and the captures),
/// and which of them run outside a transaction.
fn apply_down_facts(
    repo: &Repo,
    target: &TargetProject,
    cand: &plan::Candidates,
    migrations: &MigrationSet,
) -> Result<(Vec<Version>, BTreeSet<Version>), GatherError> {
    let mut apply_without_down = Vec::new();
    let mut apply_no_transaction = BTreeSet::new();
    if let Some(p) = &target.project {
        for v in &cand.apply {
            let Some(m) = migrations.get(*v) else {
                continue;
            };
            let empty = match &m.down {
                None => true,
                Some(d) => {
                    let bytes = repo.read(&p.tree, &d.path, Some(&d.blob))?;
                    match crate::source::sql_text(bytes, &d.path, &p.at()) {
                        Ok(text) => crate::project::sql::is_effectively_empty(&text),
                        // The ledger keeps a copy of the down as text, which cannot hold a NUL
                        // byte: refused now rather than failing when the deployment is recorded.
                        Err(
                            e @ SourceError::NotSql {
                                problem: crate::source::NotSqlProblem::Nul,
                                ..
                            },
                        ) => return Err(e.into()),
                        // A Git LFS pointer or a file that is not UTF-8 cannot be run back.
                        Err(_) => true,
                    }
                }
            };
            if empty {
                apply_without_down.push(*v);
                // A no-transaction up does not run in the deployment transaction: its down is
                // not captured.
                if let Some(up) = &m.up {
                    let bytes = repo.read(&p.tree, &up.path, Some(&up.blob))?;
                    if bytes
                        .split(|b| *b == b'\n')
                        .next()
                        .and_then(|l| std::str::from_utf8(l).ok())
                        .is_some_and(crate::project::txcontrol::is_no_transaction)
                    {
                        apply_no_transaction.insert(*v);
                    }
                }
            }
        }
    }
    Ok((apply_without_down, apply_no_transaction))
}

/// What [`metadata_facts`] finds.
struct MetadataFacts {
    tree: Option<String>,
    fact: MetadataFact,
    snapshot: Option<serde_json::Value>,
    sha256: Option<String>,
}

/// The metadata comparison, with the target's snapshot, digest and tree id when read.
fn metadata_facts(
    repo: &Repo,
    client: &mut impl GenericClient,
    ledger: &Ledger,
    target: &TargetProject,
    live: &LiveState,
    state: &DbState,
) -> Result<MetadataFacts, GatherError> {
    let metadata_tree = target
        .project
        .as_ref()
        .and_then(|p| p.metadata_tree.clone());
    // A metadata row edited by hand is not trusted to match its tree id.
    let metadata_suspect = state.findings.iter().any(|f| f.is_metadata());
    let (metadata_fact, snapshot, metadata_sha256) = if metadata_tree.is_some()
        && metadata_tree == live.metadata_tree
        && live.metadata_sha256.is_some()
        && !metadata_suspect
    {
        (MetadataFact::Unchanged, None, live.metadata_sha256.clone())
    } else {
        let snap = target_snapshot(repo, target)?;
        let sha = metadata::snapshot_sha256(&snap);
        if live.metadata_sha256.as_deref() == Some(sha.as_str()) {
            (MetadataFact::Unchanged, Some(snap), Some(sha))
        } else {
            let old = if live.ledger_exists {
                ledger.metadata_snapshot(client)?
            } else {
                None
            };
            let changes =
                metadata::describe_changes(old.as_ref().unwrap_or(&serde_json::Value::Null), &snap);
            (
                MetadataFact::Changed {
                    target_sha256: sha.clone(),
                    changes,
                },
                Some(snap),
                Some(sha),
            )
        }
    };
    Ok(MetadataFacts {
        tree: metadata_tree,
        fact: metadata_fact,
        snapshot,
        sha256: metadata_sha256,
    })
}

/// What the forward-only rule needs from git: the tags of the deployed and target commits, and
/// whether the target is a strict ancestor of the deployed commit (an older commit of the same
/// history). A target that is not a commit, or a deployed commit missing from this clone, is
/// not known to be older; the planner still refuses the migrations it would revert.
fn forward_only_facts(
    repo: &Repo,
    rule: plan::ForwardOnlyRule,
    target: &TargetProject,
    live: &plan::LiveState,
) -> plan::ForwardOnly {
    let deployed = live
        .deployed_commit
        .as_deref()
        .and_then(|c| Oid::from_str(c).ok())
        .filter(|c| repo.git().find_commit(*c).is_ok());
    let at = target
        .project
        .as_ref()
        .filter(|p| !p.tree.is_dirty())
        .and_then(|p| p.tree.commit());
    plan::ForwardOnly {
        rule,
        target_is_older: match (at, deployed) {
            (Some(t), Some(d)) => t != d && repo.is_ancestor(t, d),
            _ => false,
        },
        deployed_tags: deployed.map(|d| repo.tags_at(d)).unwrap_or_default(),
        target_tags: at.map(|t| repo.tags_at(t)).unwrap_or_default(),
    }
}

/// A refusal when the target has no metadata folder at all while the database has metadata:
/// most likely a moved folder, a wrong `metadata_directory` or the wrong branch, and deploying
/// would clear every table, permission and action. Going back to a commit from before the folder
/// existed (an ancestor of the deployed commit) is what a rollback does, and is allowed.
fn metadata_folder_missing(
    repo: &Repo,
    p: &Project,
    live: &plan::LiveState,
) -> Result<Option<Problem>, SourceError> {
    if repo.list(&p.tree, &p.metadata_dir)?.is_some() {
        return Ok(None);
    }
    let deployed = live
        .deployed_commit
        .as_deref()
        .and_then(|c| Oid::from_str(c).ok())
        .filter(|c| repo.git().find_commit(*c).is_ok());
    if let (Some(t), Some(d), false) = (p.tree.commit(), deployed, p.tree.is_dirty()) {
        if t != d && repo.is_ancestor(t, d) {
            return Ok(None);
        }
    }
    Ok(Some(Problem {
        kind: plan::ProblemKind::MetadataMissing,
        version: None,
        message: format!(
            "{} has no metadata folder {}: deploying it would clear all of the database's metadata",
            p.at(),
            p.metadata_dir
        ),
        causes: vec![format!(
            "config.yaml at {} says metadata_directory: {} (default `metadata`)",
            p.at(),
            p.config.metadata_directory
        )],
        hints: vec![
            "restore the folder, or point metadata_directory in config.yaml at it".into(),
            "to clear the metadata on purpose, commit a metadata folder holding only version.yaml"
                .into(),
        ],
    }))
}

/// Every up.sql the plan will run must be SQL text (not a Git LFS pointer, no NUL bytes, UTF-8):
/// found here, before anything runs, and shown by `plan` and `status` too.
fn check_up_sql(repo: &Repo, p: &Project, plan: &Plan) -> Result<(), SourceError> {
    for step in &plan.steps {
        if let plan::Step::Apply {
            up_path, up_blob, ..
        } = step
        {
            let bytes = repo.read(&p.tree, up_path, Some(up_blob))?;
            crate::source::sql_text(bytes, up_path, &p.at())?;
        }
    }
    Ok(())
}

/// Whether the up file that ran (the blob the ledger recorded, read from this repository) and
/// the one at the target (`bytes`, at `path`) differ only in whitespace and comments. `false`
/// when the old blob is not here (then the edit counts as a content edit).
fn layout_only_edit(
    repo: &Repo,
    applied: &plan::AppliedMigration,
    path: &str,
    bytes: Vec<u8>,
) -> bool {
    let Some(old) = applied.up_blob.as_deref().and_then(|b| repo.blob_bytes(b)) else {
        return false;
    };
    if crate::checksum::sha256_hex(&old) != applied.up_sha256 {
        return false;
    }
    match (
        crate::source::sql_text(old, path, ""),
        crate::source::sql_text(bytes, path, ""),
    ) {
        (Ok(a), Ok(b)) => crate::project::sql::same_but_layout(&a, &b),
        _ => false,
    }
}

fn down_sql(
    bytes: Vec<u8>,
    origin: DownOrigin,
    path: &str,
    at: &str,
) -> Result<DownSql, SourceError> {
    let sha256 = crate::checksum::sha256_hex(&bytes);
    let text = crate::source::sql_text(bytes, path, at)?;
    Ok(DownSql {
        text,
        sha256,
        origin,
    })
}

/// Walks the first-parent chain from `target` towards `deployed`, looking for the merge commit
/// whose first parent lacks `version` while the merge has it.
fn find_merge(
    repo: &Repo,
    projects: &mut ProjectCache<'_>,
    target: Oid,
    deployed: &str,
    version: Version,
) -> Result<Option<Oid>, SourceError> {
    let deployed = Oid::from_str(deployed)?;
    let g = repo.git();
    let mut current = g.find_commit(target)?;
    for _ in 0..100_000 {
        if repo.is_ancestor(current.id(), deployed) {
            return Ok(None);
        }
        let Ok(first) = current.parent(0) else {
            return Ok(None);
        };
        if current.parent_count() > 1 {
            let here = projects
                .versions(&current.id().to_string())?
                .contains(&version);
            let before = projects
                .versions(&first.id().to_string())?
                .contains(&version);
            if here && !before {
                return Ok(Some(current.id()));
            }
        }
        current = first;
    }
    Ok(None)
}

/// Projects read at commits the ledger names, cached per commit.
struct ProjectCache<'r> {
    repo: &'r Repo,
    project_dir: Option<&'r str>,
    projects: HashMap<String, Option<Project>>,
    versions: HashMap<String, BTreeSet<Version>>,
}

impl<'r> ProjectCache<'r> {
    fn new(repo: &'r Repo, project_dir: Option<&'r str>) -> Self {
        ProjectCache {
            repo,
            project_dir,
            projects: HashMap::new(),
            versions: HashMap::new(),
        }
    }

    /// The project at a commit, `None` if the commit is not in the repository.
    fn get(&mut self, commit: &str) -> Result<Option<&Project>, SourceError> {
        if !self.projects.contains_key(commit) {
            // A commit that is gone, or whose project cannot be read (moved, malformed), is
            // treated as unavailable: the caller falls back to the next source of truth.
            let p = match self.repo.tree_of_commit(commit) {
                Ok(tree) => match self.repo.project_at(tree, commit, self.project_dir) {
                    Ok(p) => Some(p),
                    Err(
                        SourceError::Layout { .. }
                        | SourceError::Project(_)
                        | SourceError::Config(_),
                    ) => None,
                    Err(e) => return Err(e),
                },
                Err(SourceError::MissingCommit { .. }) => None,
                Err(e) => return Err(e),
            };
            self.projects.insert(commit.to_string(), p);
        }
        Ok(self.projects[commit].as_ref())
    }

    /// The project at a commit with `version`'s folder read.
    fn get_resolved(
        &mut self,
        commit: &str,
        version: Version,
    ) -> Result<Option<&Project>, SourceError> {
        self.get(commit)?;
        let repo = self.repo;
        match self.projects.get_mut(commit).and_then(|p| p.as_mut()) {
            Some(p) => {
                let at = p.at();
                repo.resolve(&mut p.migrations, [version], &at)?;
                Ok(Some(&*p))
            }
            None => Ok(None),
        }
    }

    /// Versions present at a commit (empty when unreadable).
    fn versions(&mut self, commit: &str) -> Result<&BTreeSet<Version>, SourceError> {
        if !self.versions.contains_key(commit) {
            let set = match self.get(commit) {
                Ok(Some(p)) => p.migrations.iter().map(|m| m.version).collect(),
                Ok(None) => BTreeSet::new(),
                Err(e) => return Err(e),
            };
            self.versions.insert(commit.to_string(), set);
        }
        Ok(&self.versions[commit])
    }
}
