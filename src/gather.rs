//! The I/O edge of planning: reads from git (and the ledger's stored downs) exactly the facts
//! that [`crate::plan::candidates`] asks for, builds the target metadata snapshot when its
//! tree changed, and calls the pure planner.

use crate::ledger::{DbState, Ledger, LedgerError};
use crate::metadata::{self, MetadataError, MetadataFiles};
use crate::plan::{
    self, DownFact, DownOrigin, DownSql, Facts, MetadataFact, OutOfOrderFact, Plan, PlanOptions,
    Problem, Target,
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
}

/// Reads the metadata files of a project.
pub fn read_metadata_files(repo: &Repo, project: &Project) -> Result<MetadataFiles, SourceError> {
    let mut files = Vec::new();
    if let Some(entries) = repo.list(&project.tree, &project.metadata_dir)? {
        for e in entries {
            if !metadata::V2_FILE_NAMES.contains(&e.name.as_str()) {
                continue;
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

/// Reads a project's metadata folder for the config v3 builder (git or working tree).
struct TreeReader<'a> {
    repo: &'a Repo,
    project: &'a Project,
}

impl metadata::v3::MetadataReader for TreeReader<'_> {
    fn read(&self, rel_path: &str) -> Result<Option<Vec<u8>>, MetadataError> {
        let path = format!("{}/{}", self.project.metadata_dir, rel_path);
        self.repo
            .read_optional(&self.project.tree, &path)
            .map_err(|e| MetadataError::Shape {
                path,
                at: self.project.at(),
                message: e.to_string(),
            })
    }
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
        metadata::v3::build_v3_snapshot(&TreeReader { repo, project: p }, &p.metadata_dir, &p.at())
    };
    if p.config.version >= 3 {
        return Ok(v3()?);
    }
    match metadata::build_snapshot(&read_metadata_files(repo, p)?) {
        Err(MetadataError::Unsupported { .. }) => Ok(v3()?),
        other => Ok(other?),
    }
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
    let metadata_only = options.mode == plan::Mode::Metadata;
    // Read the files of exactly the migration folders the plan may need.
    if let Some(p) = target.project.as_mut().filter(|_| !metadata_only) {
        let needed = plan::needs_files(&p.migrations, live);
        let at = p.at();
        repo.resolve(&mut p.migrations, needed, &at)?;
    }
    let target = &*target;
    let migrations = target.migrations();
    let cand = if metadata_only {
        plan::Candidates::default()
    } else {
        plan::candidates_with(migrations, live, gopts.selection.as_ref())
    };
    let mut projects = ProjectCache::new(repo, gopts.project_dir.as_deref());

    // Checksums of applied migrations whose blob id differs.
    let mut target_up_sha256 = BTreeMap::new();
    if let Some(p) = &target.project {
        for v in &cand.checksum {
            if let Some(up) = migrations.get(*v).and_then(|m| m.up.as_ref()) {
                let bytes = repo.read(&p.tree, &up.path, Some(&up.blob))?;
                target_up_sha256.insert(*v, metadata::sha256_hex(&bytes));
            }
        }
    }

    // Downs (§7.2).
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
                        sha256: metadata::sha256_hex(text.as_bytes()),
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

    // Out-of-order versions: how did they arrive?
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
                        let merge = find_merge(repo, &mut projects, t, d, *v)?;
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

    // Downs of the migrations to apply, for the forward warning.
    let mut apply_without_down = Vec::new();
    if let Some(p) = &target.project {
        for v in &cand.apply {
            let Some(m) = migrations.get(*v) else {
                continue;
            };
            let empty = match &m.down {
                None => true,
                Some(d) => {
                    let bytes = repo.read(&p.tree, &d.path, Some(&d.blob))?;
                    crate::project::sql::is_effectively_empty(&String::from_utf8_lossy(&bytes))
                }
            };
            if empty {
                apply_without_down.push(*v);
            }
        }
    }

    // Metadata: equal tree ids mean nothing to parse.
    let metadata_tree = target
        .project
        .as_ref()
        .and_then(|p| p.metadata_tree.clone());
    let (metadata_fact, snapshot, metadata_sha256) = if metadata_tree.is_some()
        && metadata_tree == live.metadata_tree
        && live.metadata_sha256.is_some()
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

    let facts = Facts {
        target_up_sha256,
        downs,
        out_of_order,
        metadata: metadata_fact,
        apply_without_down,
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
    Ok(Planned {
        plan,
        snapshot,
        metadata_sha256,
        metadata_tree,
    })
}

fn down_sql(
    bytes: Vec<u8>,
    origin: DownOrigin,
    path: &str,
    at: &str,
) -> Result<DownSql, SourceError> {
    let sha256 = metadata::sha256_hex(&bytes);
    let text = String::from_utf8(bytes).map_err(|e| SourceError::Read {
        path: path.to_string(),
        at: at.to_string(),
        source: format!("not valid UTF-8 ({e}); SQL files must be UTF-8").into(),
    })?;
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
