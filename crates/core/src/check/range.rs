//! The I/O edge of `check`: which commits to look at, and the facts the rules need from them.

use super::rules::{self, CheckInput, EntryFact, FileFact, Text};
use super::{allows_in_message, apply_allows, parse_allow, Allow, BadAllow, Finding, Rule};
use crate::gather::{target_snapshot, GatherError, TargetProject};
use crate::metadata::MetadataError;
use crate::project::join_path as join;
use crate::project::{MigrationEntryKind, MigrationSet, Version};
use crate::source::{short, Project, ProjectDirError, Repo, SourceError, TreeRef};
use git2::{Oid, Sort};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Why a check could not run (exit 2): not findings, but a problem with the input.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Git.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// libgit2.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    /// A hook input line that does not parse.
    #[error("cannot read {what} input line {line:?}: expected {expected}")]
    BadHookLine {
        /// `--pre-push` / `--pre-receive`.
        what: &'static str,
        /// The line.
        line: String,
        /// The expected shape.
        expected: &'static str,
    },
    /// An object named by the hook input is missing.
    #[error("{what}: object {id} is not in this repository")]
    MissingObject {
        /// `--pre-push` / `--pre-receive`.
        what: &'static str,
        /// The id.
        id: String,
    },
    /// Reading the metadata failed for a reason that is not a finding.
    #[error(transparent)]
    Gather(#[from] GatherError),
}

/// What to check.
#[derive(Clone, Debug)]
pub enum RangeSpec {
    /// `A..B`, or one revision `X` (meaning `X^..X`).
    Revs(String),
    /// The index against `HEAD`.
    Staged,
    /// git's pre-push stdin (`<local ref> <local sha> <remote ref> <remote sha>` lines).
    PrePush {
        /// The remote's name (first hook argument), if given.
        remote: Option<String>,
        /// Standard input.
        input: String,
    },
    /// git's pre-receive stdin (`<old> <new> <ref>` lines).
    PreReceive {
        /// Standard input.
        input: String,
    },
    /// `@{upstream}..HEAD`, else the last commit.
    Default,
}

/// One range to check.
#[derive(Clone, Debug)]
pub struct CheckRange {
    /// How it was named (`origin/main..HEAD`, `refs/heads/main`, `the index`).
    pub label: String,
    /// The base tree (merge base, parent, `HEAD` for the index); `None` = nothing before.
    pub base: Option<TreeRef>,
    /// The tip.
    pub tip: TreeRef,
    /// The commits of the range, newest first (empty for the index).
    pub commits: Vec<Oid>,
}

/// The result for one range.
#[derive(Clone, Debug)]
pub struct RangeReport {
    /// The range.
    pub range: CheckRange,
    /// Findings (allowed ones are marked).
    pub findings: Vec<Finding>,
    /// Allowances that could not be understood.
    pub bad_allows: Vec<BadAllow>,
    /// New migrations at the tip, ascending (for `--verify`).
    pub new_versions: Vec<Version>,
    /// The project at the tip, when there is one.
    pub project: Option<Project>,
    /// Why nothing was checked, when nothing was.
    pub skipped: Option<String>,
}

fn is_zero(id: &str) -> bool {
    id.bytes().all(|b| b == b'0')
}

fn commit_tree(repo: &Repo, c: Oid) -> Result<TreeRef, CheckError> {
    let commit = repo.git().find_commit(c)?;
    Ok(TreeRef::Git {
        tree: commit.tree_id(),
        commit: Some(c),
    })
}

/// Peels an id from hook input to a commit; `None` for tags of trees/blobs.
fn peel_commit(repo: &Repo, id: &str, what: &'static str) -> Result<Option<Oid>, CheckError> {
    let oid = Oid::from_str(id).map_err(|_| CheckError::MissingObject {
        what,
        id: id.to_string(),
    })?;
    let obj = repo
        .git()
        .find_object(oid, None)
        .map_err(|_| CheckError::MissingObject {
            what,
            id: id.to_string(),
        })?;
    Ok(obj.peel_to_commit().ok().map(|c| c.id()))
}

/// Commits reachable from `tip` and not from any of `hide`, newest first.
fn walk(repo: &Repo, tip: Oid, hide: &[Oid]) -> Result<Vec<Oid>, CheckError> {
    let mut w = repo.git().revwalk()?;
    w.set_sorting(Sort::TOPOLOGICAL)?;
    w.push(tip)?;
    for h in hide {
        w.hide(*h)?;
    }
    Ok(w.collect::<Result<Vec<_>, _>>()?)
}

/// The base of a set of new commits: the first ancestor along first parents that is not new.
fn boundary(repo: &Repo, tip: Oid, new: &[Oid]) -> Result<Option<Oid>, CheckError> {
    let new: HashSet<Oid> = new.iter().copied().collect();
    let mut c = repo.git().find_commit(tip)?;
    loop {
        if !new.contains(&c.id()) {
            return Ok(Some(c.id()));
        }
        match c.parent(0) {
            Ok(p) => c = p,
            Err(_) => return Ok(None),
        }
    }
}

/// A range from `base` (exclusive) to `tip`, with the base the merge base.
fn between(repo: &Repo, label: String, from: Oid, tip: Oid) -> Result<CheckRange, CheckError> {
    let commits = walk(repo, tip, &[from])?;
    let base = match repo.git().merge_base(from, tip) {
        Ok(b) => Some(b),
        Err(_) => boundary(repo, tip, &commits)?,
    };
    Ok(CheckRange {
        label,
        base: base.map(|b| commit_tree(repo, b)).transpose()?,
        tip: commit_tree(repo, tip)?,
        commits,
    })
}

/// A range of commits new relative to `hide`.
fn new_commits(
    repo: &Repo,
    label: String,
    tip: Oid,
    hide: &[Oid],
) -> Result<CheckRange, CheckError> {
    let commits = walk(repo, tip, hide)?;
    let base = boundary(repo, tip, &commits)?;
    Ok(CheckRange {
        label,
        base: base.map(|b| commit_tree(repo, b)).transpose()?,
        tip: commit_tree(repo, tip)?,
        commits,
    })
}

fn last_commit(repo: &Repo, rev: &str) -> Result<CheckRange, CheckError> {
    let tip = repo.resolve_commit(rev)?;
    let c = repo.git().find_commit(tip)?;
    let base = c.parent_id(0).ok();
    Ok(CheckRange {
        label: rev.to_string(),
        base: base.map(|b| commit_tree(repo, b)).transpose()?,
        tip: commit_tree(repo, tip)?,
        commits: vec![tip],
    })
}

fn ref_targets(repo: &Repo, glob: &str) -> Vec<Oid> {
    let Ok(refs) = repo.git().references_glob(glob) else {
        return vec![];
    };
    refs.filter_map(Result::ok)
        .filter_map(|r| r.peel_to_commit().ok().map(|c| c.id()))
        .collect()
}

/// Turns what the user (or git) gave into ranges.
pub fn ranges(repo: &Repo, spec: &RangeSpec) -> Result<Vec<CheckRange>, CheckError> {
    match spec {
        RangeSpec::Revs(r) => {
            if let Some((a, b)) = r.split_once("..") {
                let b = b.trim_start_matches('.');
                let a_id = repo.resolve_commit(if a.is_empty() { "HEAD" } else { a })?;
                let b_id = repo.resolve_commit(if b.is_empty() { "HEAD" } else { b })?;
                Ok(vec![between(repo, r.clone(), a_id, b_id)?])
            } else {
                Ok(vec![last_commit(repo, r)?])
            }
        }
        RangeSpec::Default => {
            let upstream = repo
                .git()
                .revparse_single("@{upstream}")
                .ok()
                .and_then(|o| o.peel_to_commit().ok());
            match upstream {
                Some(u) => {
                    let head = repo.resolve_commit("HEAD")?;
                    Ok(vec![between(
                        repo,
                        "@{upstream}..HEAD".into(),
                        u.id(),
                        head,
                    )?])
                }
                None => Ok(vec![last_commit(repo, "HEAD")?]),
            }
        }
        RangeSpec::Staged => {
            let tip = repo.tree(&crate::source::Source::Staged)?;
            let base = match repo.git().head().ok().and_then(|h| h.target()) {
                Some(h) => Some(commit_tree(repo, h)?),
                None => None,
            };
            Ok(vec![CheckRange {
                label: "the index".into(),
                base,
                tip,
                commits: vec![],
            }])
        }
        RangeSpec::PrePush { remote, input } => {
            let mut out = Vec::new();
            for line in input.lines().filter(|l| !l.trim().is_empty()) {
                let parts: Vec<&str> = line.split_whitespace().collect();
                let [local_ref, local, _remote_ref, remote_sha] = parts[..] else {
                    return Err(CheckError::BadHookLine {
                        what: "pre-push",
                        line: line.to_string(),
                        expected: "<local ref> <local sha> <remote ref> <remote sha>",
                    });
                };
                if is_zero(local) {
                    continue; // a deletion
                }
                let Some(tip) = peel_commit(repo, local, "pre-push")? else {
                    continue;
                };
                let known_remote = (!is_zero(remote_sha))
                    .then(|| Oid::from_str(remote_sha).ok())
                    .flatten()
                    .filter(|o| repo.git().find_commit(*o).is_ok());
                match known_remote {
                    Some(r) => out.push(between(repo, local_ref.to_string(), r, tip)?),
                    None => {
                        let hide = remote
                            .as_deref()
                            .map(|r| ref_targets(repo, &format!("refs/remotes/{r}/*")))
                            .unwrap_or_default();
                        out.push(new_commits(repo, local_ref.to_string(), tip, &hide)?);
                    }
                }
            }
            Ok(out)
        }
        RangeSpec::PreReceive { input } => {
            let mut out = Vec::new();
            let existing = ref_targets(repo, "refs/*");
            for line in input.lines().filter(|l| !l.trim().is_empty()) {
                let parts: Vec<&str> = line.split_whitespace().collect();
                let [old, new, refname] = parts[..] else {
                    return Err(CheckError::BadHookLine {
                        what: "pre-receive",
                        line: line.to_string(),
                        expected: "<old sha> <new sha> <ref name>",
                    });
                };
                if is_zero(new) {
                    continue; // a deletion
                }
                let Some(tip) = peel_commit(repo, new, "pre-receive")? else {
                    continue;
                };
                if is_zero(old) {
                    out.push(new_commits(repo, refname.to_string(), tip, &existing)?);
                } else {
                    match peel_commit(repo, old, "pre-receive")? {
                        Some(o) => out.push(between(repo, refname.to_string(), o, tip)?),
                        None => out.push(new_commits(repo, refname.to_string(), tip, &existing)?),
                    }
                }
            }
            Ok(out)
        }
    }
}

fn entries(
    repo: &Repo,
    tree: &TreeRef,
    dir: &str,
) -> Result<BTreeMap<String, EntryFact>, CheckError> {
    Ok(repo
        .list(tree, dir)?
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            (
                e.name,
                EntryFact {
                    kind: e.kind,
                    id: e.id.unwrap_or_default(),
                },
            )
        })
        .collect())
}

fn folder_files(
    repo: &Repo,
    tree: &TreeRef,
    dir: &str,
) -> Result<BTreeMap<String, FileFact>, CheckError> {
    Ok(repo
        .list(tree, dir)?
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            (
                e.name,
                FileFact {
                    kind: e.kind,
                    id: e.id.unwrap_or_default(),
                },
            )
        })
        .collect())
}

fn no_project(e: &SourceError) -> bool {
    matches!(e, SourceError::Project(ProjectDirError::NotFound { .. }))
}

/// The metadata rules: build the snapshot at the tip when the metadata (or config) changed.
fn metadata_findings(
    repo: &Repo,
    project: &Project,
    base: Option<&Project>,
) -> Result<Vec<Finding>, CheckError> {
    if let Some(b) = base {
        if b.metadata_tree == project.metadata_tree
            && b.metadata_dir == project.metadata_dir
            && b.config.version == project.config.version
        {
            return Ok(vec![]);
        }
    }
    if project.metadata_tree.is_none() {
        return Ok(vec![]);
    }
    let target = TargetProject {
        reference: project.source_name.clone(),
        project: Some(project.clone()),
    };
    let err = match target_snapshot(repo, &target) {
        Ok(_) => return Ok(vec![]),
        Err(GatherError::Metadata(e)) => e,
        Err(e) => return Err(e.into()),
    };
    let (rule, path, hint) = match &err {
        MetadataError::Syntax { path, .. } | MetadataError::Encoding { path, .. } => (
            Rule::MetadataParse,
            path.clone(),
            "fix the YAML (export it again with `git migrate metadata export` if unsure)",
        ),
        MetadataError::Shape { path, .. } | MetadataError::Unsupported { path, .. } => (
            Rule::MetadataParse,
            path.clone(),
            "compare the file with what `git migrate metadata export` writes",
        ),
        MetadataError::Include { chain, .. } => (
            Rule::MetadataInclude,
            chain.last().cloned().unwrap_or_default(),
            "point the !include at a file inside the metadata folder, relative to the including file",
        ),
    };
    Ok(vec![Finding {
        rule,
        commit: None,
        path,
        version: None,
        message: err.to_string(),
        hint: hint.into(),
        allowed_by: None,
        line: None,
    }])
}

/// The object id at `path` in a commit's tree, if any.
fn id_at(commit: &git2::Commit, path: &str) -> Option<Oid> {
    commit
        .tree()
        .ok()
        .and_then(|t| t.get_path(std::path::Path::new(path)).ok())
        .map(|e| e.id())
}

/// The newest commit of the range that changed `path` (against its first parent).
fn attribute(repo: &Repo, commits: &[Oid], path: &str) -> Option<Oid> {
    for c in commits {
        let Ok(commit) = repo.git().find_commit(*c) else {
            continue;
        };
        let now = id_at(&commit, path);
        let before = commit.parent(0).ok().and_then(|p| id_at(&p, path));
        if now != before {
            return Some(*c);
        }
    }
    None
}

/// Checks one range. `env_allow` is `GIT_MIGRATE_ALLOW` (`;`-separated allowances).
pub fn check_range(
    repo: &Repo,
    range: CheckRange,
    project_dir: Option<&str>,
    env_allow: Option<&str>,
    lint: Option<&crate::lint::LintConfig>,
) -> Result<RangeReport, CheckError> {
    let mut report = RangeReport {
        range: range.clone(),
        findings: vec![],
        bad_allows: vec![],
        new_versions: vec![],
        project: None,
        skipped: None,
    };
    if range.commits.is_empty()
        && range.base.is_some()
        && !matches!(range.tip, TreeRef::Git { commit: None, .. })
    {
        report.skipped = Some("no new commits".into());
        return Ok(report);
    }
    let tip_loc = match repo.locate_project(&range.tip, project_dir) {
        Ok(l) => l,
        Err(e) if no_project(&e) => {
            report.skipped = Some("no Hasura project at the tip".into());
            return Ok(report);
        }
        Err(e) => return Err(e.into()),
    };
    let base_loc = match &range.base {
        Some(b) => match repo.locate_project(b, project_dir) {
            Ok(l) => Some(l),
            Err(e) if no_project(&e) => None,
            // A base whose config was broken: compare with nothing before.
            Err(SourceError::Config(_)) => None,
            // A base without the --database-name database (the range adds it, or the move to
            // config v3): everything in its folder is new.
            Err(SourceError::Project(p)) if p.is_database() => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    // Config v3 keeps one migrations folder per database: check them all (unless
    // --database-name picked one).
    let mut dirs: Vec<(String, Option<String>)> = Vec::new();
    if tip_loc.config.version >= 3 && !repo.database_chosen() {
        let root = |l: &crate::source::ProjectLocation| {
            crate::source::join_path(&l.dir, &l.config.migrations_directory)
        };
        let tip_root = root(&tip_loc);
        let base_root = base_loc
            .as_ref()
            .filter(|l| l.config.version >= 3)
            .map(root);
        let mut names: Vec<String> = Vec::new();
        let mut add = |tree: &TreeRef, dir: &str| -> Result<(), CheckError> {
            for e in repo.list(tree, dir)?.unwrap_or_default() {
                if e.kind == MigrationEntryKind::Dir && !names.contains(&e.name) {
                    names.push(e.name);
                }
            }
            Ok(())
        };
        add(&range.tip, &tip_root)?;
        if let (Some(b), Some(r)) = (&range.base, &base_root) {
            add(b, r)?;
        }
        names.sort();
        for n in names {
            dirs.push((join(&tip_root, &n), base_root.as_ref().map(|r| join(r, &n))));
        }
    } else {
        dirs.push((
            tip_loc.migrations_dir.clone(),
            base_loc.as_ref().map(|l| l.migrations_dir.clone()),
        ));
    }
    for (tip_dir, base_dir) in &dirs {
        let base = range.base.as_ref().zip(base_dir.as_deref());
        let (findings, new) =
            migration_findings(repo, &range.tip, base, tip_dir, (lint, project_dir))?;
        report.findings.extend(findings);
        if *tip_dir == tip_loc.migrations_dir {
            report.new_versions = new;
        }
    }

    // Metadata: build the tip's snapshot when it changed.
    let empty_project =
        |tree: &TreeRef, loc: crate::source::ProjectLocation| -> Result<Project, CheckError> {
            Ok(Project {
                tree: tree.clone(),
                source_name: range.label.clone(),
                metadata_tree: repo.dir_id(tree, &loc.metadata_dir)?,
                dir: loc.dir,
                config: loc.config,
                migrations_dir: loc.migrations_dir,
                migrations: MigrationSet::default(),
                metadata_dir: loc.metadata_dir,
                ignored_yaml: vec![],
                skipped_folders: vec![],
            })
        };
    let tip_project = empty_project(&range.tip, tip_loc)?;
    let base_project = match (&range.base, base_loc) {
        (Some(b), Some(l)) => Some(empty_project(b, l)?),
        _ => None,
    };
    report.findings.extend(metadata_findings(
        repo,
        &tip_project,
        base_project.as_ref(),
    )?);
    report.project = Some(tip_project);

    // Which commit did it.
    for f in &mut report.findings {
        f.commit = Some(match &range.tip {
            TreeRef::Git { commit: None, .. } => "the index".into(),
            TreeRef::Fs { .. } => "the working tree".into(),
            TreeRef::Git {
                commit: Some(tip), ..
            } => short(
                &attribute(repo, &range.commits, &f.path)
                    .unwrap_or(*tip)
                    .to_string(),
            ),
        });
    }

    // Allowances: trailers of every commit in the range, and GIT_MIGRATE_ALLOW.
    let mut allows: Vec<Allow> = Vec::new();
    for c in &range.commits {
        if let Ok(commit) = repo.git().find_commit(*c) {
            let msg = String::from_utf8_lossy(commit.message_bytes()).into_owned();
            let (ok, bad) = allows_in_message(&msg, &short(&c.to_string()));
            allows.extend(ok);
            report.bad_allows.extend(bad);
        }
    }
    if let Some(env) = env_allow {
        for part in env.split([';', '\n']).filter(|p| !p.trim().is_empty()) {
            match parse_allow(part, "GIT_MIGRATE_ALLOW") {
                Ok(a) => allows.push(a),
                Err(b) => report.bad_allows.push(b),
            }
        }
    }
    apply_allows(&mut report.findings, &allows);
    Ok(report)
}

/// The migration rules over one migrations folder (base → tip): findings and new versions.
fn migration_findings(
    repo: &Repo,
    tip: &TreeRef,
    base: Option<(&TreeRef, &str)>,
    tip_dir: &str,
    (lint, project_dir): (Option<&crate::lint::LintConfig>, Option<&str>),
) -> Result<(Vec<Finding>, Vec<Version>), CheckError> {
    let tip_dir_id = repo.dir_id(tip, tip_dir)?;
    let base_dir_id = match base {
        Some((b, d)) => repo.dir_id(b, d)?,
        None => None,
    };
    if tip_dir_id.is_some() && tip_dir_id == base_dir_id {
        return Ok((vec![], vec![]));
    }
    let mut input = CheckInput {
        migrations_dir: tip_dir.to_string(),
        lint: lint.cloned(),
        ..Default::default()
    };
    input.tip = entries(repo, tip, tip_dir)?;
    if let Some((b, d)) = base {
        input.base = entries(repo, b, d)?;
    }
    let (tip_folders, base_folders) = rules::folders_needed(&input);
    for name in tip_folders {
        let files = folder_files(repo, tip, &join(tip_dir, &name))?;
        input.tip_files.insert(name, files);
    }
    if let Some((b, d)) = base {
        for name in base_folders {
            let files = folder_files(repo, b, &join(d, &name))?;
            input.base_files.insert(name, files);
        }
    }
    for id in rules::blobs_needed(&input) {
        let Ok(oid) = Oid::from_str(&id) else {
            continue;
        };
        let text = match repo.git().find_blob(oid) {
            Ok(b) => match std::str::from_utf8(b.content()) {
                Ok(t) => Text::Utf8(t.to_string()),
                Err(_) => Text::NotUtf8,
            },
            Err(_) => continue,
        };
        input.texts.insert(id, text);
    }
    let mut findings = rules::evaluate(&input);
    findings.extend(tracked_drops(repo, tip, &input, project_dir)?);
    Ok((findings, new_versions(&input)))
}

/// `up-drops-tracked`: a new or changed `up.sql` that drops or renames a table or column that
/// the metadata at the tip still tracks, or names in a permission or relationship (the
/// requirements the consistency check knows). The metadata is read only when an up drops or
/// renames something.
fn tracked_drops(
    repo: &Repo,
    tip: &TreeRef,
    input: &CheckInput,
    project_dir: Option<&str>,
) -> Result<Vec<Finding>, CheckError> {
    use crate::metadata::consistency::{requirements, Requirement};
    let dropped = rules::up_drops(input);
    let Some(config) = input.lint.as_ref() else {
        return Ok(vec![]);
    };
    if dropped.is_empty() {
        return Ok(vec![]);
    }
    let Ok(project) = repo.project_at(tip.clone(), "the tip", project_dir) else {
        return Ok(vec![]);
    };
    let target = crate::gather::TargetProject {
        reference: "the tip".into(),
        project: Some(project),
    };
    // A metadata folder that does not build is `metadata-parse`'s finding, not this rule's.
    let Ok(snapshot) = crate::gather::target_snapshot(repo, &target) else {
        return Ok(vec![]);
    };
    let reqs = requirements(&snapshot);
    let severity = config.severity(crate::lint::UP_DROPS_TRACKED);
    let mut out = Vec::new();
    for (path, version, d) in dropped {
        let users: BTreeSet<&str> = reqs
            .items
            .iter()
            .filter_map(|r| match (r, &d.column) {
                (
                    Requirement::Relation {
                        object, relation, ..
                    },
                    None,
                ) if relation.to_string() == d.table => Some(object.as_str()),
                (
                    Requirement::Column {
                        object,
                        relation,
                        column,
                        ..
                    },
                    Some(c),
                ) if relation.to_string() == d.table && column == c => Some(object.as_str()),
                _ => None,
            })
            .collect();
        if users.is_empty() {
            continue;
        }
        let what = match &d.column {
            Some(c) => format!("column {}.{c}", d.table),
            None => format!("table {}", d.table),
        };
        let users: Vec<&str> = users.into_iter().collect();
        out.push(rules::lint_finding(
            &path,
            version,
            crate::lint::LintFinding {
                rule: crate::lint::UP_DROPS_TRACKED,
                severity,
                line: d.line,
                column: d.column_at,
                message: format!(
                    "the up {} {what}, which the metadata at the same commit still uses: {}",
                    d.verb,
                    users.join(", ")
                ),
                help: Some(
                    "change the metadata in the same commit (untrack the table, drop the column from permissions and relationships)".into(),
                ),
            },
        ));
    }
    Ok(out)
}

/// Versions of migration folders that are new at the tip (not at the base at all).
fn new_versions(input: &CheckInput) -> Vec<Version> {
    let version = |name: &str| -> Option<Version> {
        let (d, _) = name.split_once('_')?;
        d.parse().ok()
    };
    let base: HashSet<Version> = input.base.keys().filter_map(|n| version(n)).collect();
    let mut out: Vec<Version> = input
        .tip
        .iter()
        .filter(|(_, e)| e.kind == MigrationEntryKind::Dir || e.kind == MigrationEntryKind::File)
        .filter_map(|(n, _)| version(n))
        .filter(|v| !base.contains(v))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}
