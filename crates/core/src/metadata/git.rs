//! Config v3 metadata straight from git trees: a [`MetadataReader`] that lists each folder once
//! and knows blob ids, the snapshot of one revision, and the two snapshots `metadata diff A B`
//! compares (by content addressing, see [`super::same_blob`]).

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use git2::{ObjectType, Oid, Repository};
use serde_json::Value;

use super::parsed::FastMap;
use super::same_blob::strip_matched;
use super::v3::{build_v3_snapshot_with, BuildCache, MetadataReader, SameBlobs};
use super::MetadataError;
use crate::source::{Project, Repo, TreeRef};

/// The entries of one folder by name: (object id, kind, `symbolic link` or `submodule` for an
/// entry git-migrate does not follow).
type Listing = FastMap<Vec<u8>, (Oid, Option<ObjectType>, Option<&'static str>)>;

/// Reads a metadata folder from a git tree. Folders are listed once each and files looked up by
/// name in their folder's listing (not from the root tree for every file).
pub(crate) struct GitReader<'r> {
    repo: &'r Repository,
    /// The metadata folder's tree; `None` when the folder does not exist.
    root: Option<Oid>,
    /// The folder's repository path and the source, for messages.
    dir: String,
    at: String,
    /// Listings by folder path relative to the metadata folder ("" = the folder itself);
    /// `None` for a folder that does not exist.
    dirs: RefCell<FastMap<String, Option<Rc<Listing>>>>,
}

impl<'r> GitReader<'r> {
    /// A reader of the metadata folder with tree `root` (None: no such folder). `dir` and `at`
    /// name the folder and the source in messages.
    pub fn new(repo: &'r Repository, root: Option<Oid>, dir: &str, at: &str) -> GitReader<'r> {
        GitReader {
            repo,
            root,
            dir: dir.trim_end_matches('/').to_string(),
            at: at.to_string(),
            dirs: RefCell::new(FastMap::default()),
        }
    }

    /// The reader of a project's metadata folder when the project was read from git (a commit
    /// or the index); `None` for the working tree.
    pub(crate) fn for_project(repo: &'r Repo, p: &Project) -> Option<GitReader<'r>> {
        let TreeRef::Git { .. } = p.tree else {
            return None;
        };
        let root = match &p.metadata_tree {
            Some(hex) => Some(Oid::from_str(hex).ok()?),
            None => None,
        };
        Some(GitReader::new(repo.git(), root, &p.metadata_dir, &p.at()))
    }

    fn listing(&self, dir: &str) -> Result<Option<Rc<Listing>>, git2::Error> {
        if let Some(l) = self.dirs.borrow().get(dir) {
            return Ok(l.clone());
        }
        let tree = if dir.is_empty() {
            self.root
        } else {
            let (parent, name) = split(dir);
            self.listing(parent)?
                .and_then(|l| match l.get(name.as_bytes()) {
                    Some((id, Some(ObjectType::Tree), None)) => Some(*id),
                    _ => None,
                })
        };
        let listing = match tree {
            Some(id) => {
                let t = self.repo.find_tree(id)?;
                Some(Rc::new(
                    t.iter()
                        .map(|e| {
                            let special = crate::source::special_git(&e);
                            (e.name_bytes().to_vec(), (e.id(), e.kind(), special))
                        })
                        .collect::<Listing>(),
                ))
            }
            None => None,
        };
        self.dirs
            .borrow_mut()
            .insert(dir.to_string(), listing.clone());
        Ok(listing)
    }

    /// The blob id of a regular file (relative to the metadata folder), if it is one.
    fn blob(&self, rel: &str) -> Result<Option<Oid>, git2::Error> {
        Ok(match self.special(rel)? {
            Some(_) => None,
            None => {
                let (dir, name) = split(rel);
                self.listing(dir)?
                    .and_then(|l| match l.get(name.as_bytes()) {
                        Some((id, Some(ObjectType::Blob), None)) => Some(*id),
                        _ => None,
                    })
            }
        })
    }

    /// `symbolic link` or `submodule` when the entry is one (never followed).
    fn special(&self, rel: &str) -> Result<Option<&'static str>, git2::Error> {
        let (dir, name) = split(rel);
        Ok(self
            .listing(dir)?
            .and_then(|l| l.get(name.as_bytes()).and_then(|(_, _, s)| *s)))
    }

    /// The blob ids of every file in the folder and below it (what could not be read is left
    /// out: a build reading it reports the error).
    pub(crate) fn blob_ids(&self) -> HashSet<Oid> {
        let mut out = HashSet::new();
        let mut stack = vec![String::new()];
        while let Some(dir) = stack.pop() {
            let Ok(Some(listing)) = self.listing(&dir) else {
                continue;
            };
            for (name, (id, kind, special)) in listing.iter() {
                match kind.filter(|_| special.is_none()) {
                    Some(ObjectType::Blob) => {
                        out.insert(*id);
                    }
                    Some(ObjectType::Tree) => {
                        if let Ok(name) = std::str::from_utf8(name) {
                            stack.push(if dir.is_empty() {
                                name.to_string()
                            } else {
                                format!("{dir}/{name}")
                            });
                        }
                    }
                    _ => {}
                }
            }
        }
        out
    }
}

/// ("a/b", "c") for "a/b/c"; ("", "c") for "c".
fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

impl MetadataReader for GitReader<'_> {
    fn read(&self, rel_path: &str) -> Result<Option<Vec<u8>>, MetadataError> {
        let fail = |e: git2::Error| MetadataError::Shape {
            path: if self.dir.is_empty() {
                rel_path.to_string()
            } else {
                format!("{}/{}", self.dir, rel_path)
            },
            at: self.at.clone(),
            message: format!("git: {e}"),
        };
        let path = if self.dir.is_empty() {
            rel_path.to_string()
        } else {
            format!("{}/{}", self.dir, rel_path)
        };
        // A linked file would read as its target's text, or as missing: refused, as from the
        // working tree.
        if let Some(kind) = self.special(rel_path).map_err(fail)? {
            let e = crate::source::SourceError::Unfollowed {
                path: path.clone(),
                at: self.at.clone(),
                kind,
            };
            return Err(MetadataError::Shape {
                path,
                at: self.at.clone(),
                message: e.to_string(),
            });
        }
        let bytes = match self.blob(rel_path).map_err(fail)? {
            Some(id) => Some(self.repo.find_blob(id).map_err(fail)?.content().to_vec()),
            None => None,
        };
        not_an_lfs_pointer(bytes, &path, &self.at)
    }

    fn content_id(&self, rel_path: &str) -> Option<Oid> {
        self.blob(rel_path).ok().flatten()
    }
}

/// A file's bytes, refused when they are a Git LFS pointer: git-migrate reads git objects and
/// never fetches LFS content, so the pointer would read as (broken) metadata.
fn not_an_lfs_pointer(
    bytes: Option<Vec<u8>>,
    path: &str,
    at: &str,
) -> Result<Option<Vec<u8>>, MetadataError> {
    if bytes.as_deref().is_some_and(crate::source::is_lfs_pointer) {
        return Err(super::lfs_pointer_error(path, at));
    }
    Ok(bytes)
}

/// The one reader of a project's metadata folder for the config v3 builder: from git trees
/// ([`GitReader`]: folders listed once, blob ids known) when the project was read from a commit
/// or the index, else from the working tree through [`Repo`].
pub(crate) enum ProjectReader<'r> {
    /// Read from git.
    Git(GitReader<'r>),
    /// Read from the working tree.
    Worktree {
        /// The repository.
        repo: &'r Repo,
        /// The project.
        project: &'r Project,
    },
}

impl<'r> ProjectReader<'r> {
    /// The reader of `p`'s metadata folder.
    pub(crate) fn new(repo: &'r Repo, p: &'r Project) -> ProjectReader<'r> {
        match GitReader::for_project(repo, p) {
            Some(g) => ProjectReader::Git(g),
            None => ProjectReader::Worktree { repo, project: p },
        }
    }
}

impl MetadataReader for ProjectReader<'_> {
    fn read(&self, rel_path: &str) -> Result<Option<Vec<u8>>, MetadataError> {
        match self {
            ProjectReader::Git(g) => g.read(rel_path),
            ProjectReader::Worktree { repo, project } => {
                let path = format!("{}/{}", project.metadata_dir, rel_path);
                let bytes =
                    repo.read_optional(&project.tree, &path)
                        .map_err(|e| MetadataError::Shape {
                            path: path.clone(),
                            at: project.at(),
                            message: e.to_string(),
                        })?;
                not_an_lfs_pointer(bytes, &path, &project.at())
            }
        }
    }

    fn content_id(&self, rel_path: &str) -> Option<Oid> {
        match self {
            ProjectReader::Git(g) => g.content_id(rel_path),
            ProjectReader::Worktree { .. } => None,
        }
    }
}

/// The snapshot of a config v3 project read from git (a commit or the index): the value
/// `gather::target_snapshot` gives, read folder by folder. `None` for a project of an older
/// config version or read from the working tree.
pub fn build_project(repo: &Repo, p: &Project) -> Option<Result<Value, MetadataError>> {
    if p.config.version < 3 {
        return None;
    }
    let reader = GitReader::for_project(repo, p)?;
    Some(
        build_v3_snapshot_with(&reader, &p.metadata_dir, &p.at(), &BuildCache::new(), None)
            .map(|b| b.value),
    )
}

/// The two snapshots `metadata diff A B` compares, when both projects are config v3 and read
/// from git; `None` otherwise (build them one by one with `gather::target_snapshot`).
///
/// Each distinct blob is parsed once. Unless `full`, files shared by both revisions are not
/// parsed at all when possible: the snapshots then come back without the objects that both
/// hold unchanged ([`super::same_blob`]), and [`super::describe_changes`] of them is that of
/// the full snapshots. With `full` (for a diff of the whole text), the full snapshots.
pub fn diff_snapshots(
    repo: &Repo,
    a: &Project,
    b: &Project,
    full: bool,
) -> Option<Result<(Value, Value), MetadataError>> {
    if a.config.version < 3 || b.config.version < 3 {
        return None;
    }
    let ra = GitReader::for_project(repo, a)?;
    let rb = GitReader::for_project(repo, b)?;
    let shared = || {
        let in_a = ra.blob_ids();
        rb.blob_ids()
            .into_iter()
            .filter(|id| in_a.contains(id))
            .collect()
    };
    Some(diff_with(
        (&ra, &a.metadata_dir, &a.at()),
        (&rb, &b.metadata_dir, &b.at()),
        shared,
        full,
    ))
}

/// A metadata folder to build: the reader, the folder's repository path and the source.
pub(super) type Side<'s> = (&'s dyn MetadataReader, &'s str, &'s str);

/// [`diff_snapshots`] for any two readers that know content ids; `shared` gives the blob ids
/// in both folders.
pub(super) fn diff_with(
    a: Side<'_>,
    b: Side<'_>,
    shared: impl FnOnce() -> HashSet<Oid>,
    full: bool,
) -> Result<(Value, Value), MetadataError> {
    let cache = BuildCache::new();
    cache.keep_values(true);
    if !full {
        let shared = shared();
        if !shared.is_empty() {
            let same = SameBlobs::new(shared);
            let built = build_v3_snapshot_with(a.0, a.1, a.2, &cache, Some(&same)).and_then(|x| {
                // The last build of the usual case: it takes what it parsed instead of copying.
                cache.keep_values(false);
                let y = build_v3_snapshot_with(b.0, b.1, b.2, &cache, Some(&same))?;
                cache.keep_values(true);
                Ok((x, y))
            });
            cache.keep_values(true);
            if let Ok((mut x, mut y)) = built {
                // No sentinel at all: these are the full snapshots.
                if (x.sentinels, y.sentinels) == (0, 0)
                    || strip_matched(&mut x.value, &mut y.value, (x.sentinels, y.sentinels))
                {
                    return Ok((x.value, y.value));
                }
            }
            // Sentinels that do not match (or an error, which the full builds report in the
            // order they meet it): the full snapshots, reusing what was parsed.
        }
    }
    let x = build_v3_snapshot_with(a.0, a.1, a.2, &cache, None)?;
    cache.keep_values(false);
    let y = build_v3_snapshot_with(b.0, b.1, b.2, &cache, None)?;
    Ok((x.value, y.value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::random_folders::{folder, ids, Ids, Lcg};
    use crate::metadata::v3::build_v3_snapshot;
    use std::collections::BTreeMap;

    fn files(list: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        list.iter()
            .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
            .collect()
    }

    fn both(
        a: &BTreeMap<String, Vec<u8>>,
        b: &BTreeMap<String, Vec<u8>>,
        full: bool,
    ) -> (Value, Value) {
        let shared: HashSet<Oid> = ids(a).intersection(&ids(b)).copied().collect();
        diff_with((&Ids(a), "m", "a"), (&Ids(b), "m", "b"), || shared, full).unwrap()
    }

    const DATABASES: &str =
        "- name: default\n  kind: postgres\n  tables: \"!include default/tables/tables.yaml\"\n\
        - name: other\n  kind: postgres\n  tables: \"!include other/tables/tables.yaml\"\n";

    fn two_sources(default: &[&str], other: &[&str]) -> BTreeMap<String, Vec<u8>> {
        let list = |names: &[&str]| {
            names
                .iter()
                .map(|n| format!("- \"!include public_{n}.yaml\"\n"))
                .collect::<String>()
        };
        let mut f = files(&[("databases/databases.yaml", DATABASES)]);
        for (src, names) in [("default", default), ("other", other)] {
            f.insert(
                format!("databases/{src}/tables/tables.yaml"),
                list(names).into_bytes(),
            );
            for n in names {
                f.insert(
                    format!("databases/{src}/tables/public_{n}.yaml"),
                    format!("table: {{name: {n}, schema: public}}\ncomment: {n}\n").into_bytes(),
                );
            }
        }
        f
    }

    #[test]
    fn shared_table_files_are_left_out_and_the_diff_is_the_same() {
        let a = two_sources(&["t1", "t2", "t3"], &["t4"]);
        let mut b = a.clone();
        b.insert(
            "databases/default/tables/public_t2.yaml".into(),
            b"table: {name: t2, schema: public}\ncomment: changed\n".to_vec(),
        );
        let (x, y) = both(&a, &b, false);
        // Only t2 is left in the stripped snapshots.
        let tables = |v: &Value, s: usize| v["sources"][s]["tables"].as_array().unwrap().len();
        assert_eq!(
            (tables(&x, 0), tables(&x, 1), tables(&y, 0), tables(&y, 1)),
            (1, 0, 1, 0)
        );
        let full = both(&a, &b, true);
        assert_eq!(full.0, build_v3_snapshot(&a, "m", "a").unwrap());
        assert_eq!(tables(&full.1, 0), 3);
        assert_eq!(
            crate::metadata::describe_changes(&x, &y),
            crate::metadata::describe_changes(&full.0, &full.1)
        );
    }

    #[test]
    fn a_table_file_moved_to_the_other_source_gives_the_full_snapshots() {
        let a = two_sources(&["t1", "t2"], &["t4"]);
        let b = two_sources(&["t1"], &["t4", "t2"]);
        let (x, y) = both(&a, &b, false);
        assert_eq!(x, build_v3_snapshot(&a, "m", "a").unwrap());
        assert_eq!(y, build_v3_snapshot(&b, "m", "b").unwrap());
        let lines: Vec<String> = crate::metadata::describe_changes(&x, &y)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            lines,
            [
                "table default.public.t2 removed",
                "table other.public.t2 added"
            ]
        );
    }

    #[test]
    fn an_unchanged_file_including_a_changed_one_is_read() {
        let mut a = two_sources(&["t1"], &[]);
        a.insert(
            "databases/default/tables/public_t1.yaml".into(),
            b"table: {name: t1, schema: public}\nselect_permissions: !include perms.yaml\n"
                .to_vec(),
        );
        a.insert(
            "databases/default/tables/perms.yaml".into(),
            b"- {role: user, permission: {columns: [id], filter: {}}}\n".to_vec(),
        );
        let mut b = a.clone();
        b.insert(
            "databases/default/tables/perms.yaml".into(),
            b"- {role: user, permission: {columns: [id, x], filter: {}}}\n".to_vec(),
        );
        let (x, y) = both(&a, &b, false);
        let lines: Vec<String> = crate::metadata::describe_changes(&x, &y)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            lines,
            ["table default.public.t1 changed: select permission for role user: columns +x"]
        );
    }

    /// Whether a snapshot has an identity-keyed list with an element without identity or two with
    /// the same (the documented blind spot of the sentinel diff).
    fn has_identity_problems(v: &Value, key: &str) -> bool {
        match v {
            Value::Object(o) => o.iter().any(|(k, x)| has_identity_problems(x, k)),
            Value::Array(items) => {
                if crate::metadata::is_identity_list(key) {
                    let mut seen = HashSet::new();
                    for i in items {
                        match crate::metadata::identity(key, i) {
                            Some(id) if seen.insert(id.clone()) => {}
                            _ => return true,
                        }
                    }
                }
                items.iter().any(|i| has_identity_problems(i, ""))
            }
            _ => false,
        }
    }

    /// Random pairs of folders: the list of changes from the stripped snapshots is the one from
    /// the full snapshots.
    #[test]
    fn sentinel_diffs_equal_full_diffs() {
        let mut r = Lcg(7);
        let (mut fast, mut compared) = (0, 0);
        for round in 0..600 {
            let merges = r.chance(40);
            let errs = r.chance(10);
            let a = folder(&mut r, merges, errs);
            let mut b = a.clone();
            // Mutations: edit a table file, move one to the other source, edit a shared file
            // (included by unchanged files), drop any file, change network.yaml.
            for _ in 0..=r.below(3) {
                let keys: Vec<String> = b.keys().cloned().collect();
                let k = keys[r.below(keys.len() as u64) as usize].clone();
                match r.below(5) {
                    0 if k.contains("/tables/public_") => {
                        let body = String::from_utf8(b[&k].clone()).unwrap();
                        b.insert(k, body.replacen("[id]", "[id, z]", 1).into_bytes());
                    }
                    1 if k.starts_with("databases/default/tables/public_") => {
                        // move to the other source
                        let file = k.rsplit('/').next().unwrap().to_string();
                        let body = b.remove(&k).unwrap();
                        b.insert(format!("databases/other/tables/{file}"), body);
                        let t = "databases/default/tables/tables.yaml".to_string();
                        let list =
                            String::from_utf8(b.get(&t).cloned().unwrap_or_default()).unwrap();
                        b.insert(
                            t,
                            list.replace(&format!("- \"!include {file}\"\n"), "")
                                .into_bytes(),
                        );
                        let o = "databases/other/tables/tables.yaml".to_string();
                        let mut list =
                            String::from_utf8(b.get(&o).cloned().unwrap_or_default()).unwrap();
                        list.push_str(&format!("- \"!include {file}\"\n"));
                        b.insert(o, list.into_bytes());
                        let d0 = b
                            .get("databases/databases.yaml")
                            .cloned()
                            .unwrap_or_default();
                        if !String::from_utf8_lossy(&d0).contains("name: other") {
                            let mut d = String::from_utf8(d0).unwrap();
                            d.push_str("- name: other\n  kind: postgres\n  tables: \"!include other/tables/tables.yaml\"\n");
                            b.insert("databases/databases.yaml".into(), d.into_bytes());
                        }
                    }
                    2 if k.starts_with("shared/") => {
                        let mut body = b[&k].clone();
                        body.truncate(body.len() - 1);
                        body.extend_from_slice(b", zz: 1}");
                        if body.starts_with(b"{}") || body.starts_with(b"{,") {
                            body = b"{zz: 1}".to_vec();
                        }
                        b.insert(k, body);
                    }
                    3 => {
                        b.remove(&k);
                    }
                    _ => {
                        b.insert(
                            "network.yaml".into(),
                            format!("x: {}\n", r.below(3)).into_bytes(),
                        );
                    }
                }
            }
            let full_a = build_v3_snapshot(&a, "m", "a");
            let full_b = build_v3_snapshot(&b, "m", "b");
            let (Ok(full_a), Ok(full_b)) = (full_a, full_b) else {
                continue;
            };
            if has_identity_problems(&full_a, "") || has_identity_problems(&full_b, "") {
                continue;
            }
            let expected = crate::metadata::describe_changes(&full_a, &full_b);
            let shared: HashSet<Oid> = ids(&a).intersection(&ids(&b)).copied().collect();
            let (ra, rb) = (Ids(&a), Ids(&b));
            let (x, y) = diff_with((&ra, "m", "a"), (&rb, "m", "b"), || shared, false).unwrap();
            compared += 1;
            // Stripped (the fast way) or the full snapshots (sentinels did not match).
            if x != full_a || y != full_b {
                fast += 1;
            }
            let got = crate::metadata::describe_changes(&x, &y);
            let ctx = || {
                let show = |m: &BTreeMap<String, Vec<u8>>| {
                    m.iter()
                        .map(|(k, v)| format!("--- {k}\n{}", String::from_utf8_lossy(v)))
                        .collect::<String>()
                };
                format!("A:\n{}\nB:\n{}\nx={x}\ny={y}", show(&a), show(&b))
            };
            assert_eq!(got, expected, "round {round}\n{}", ctx());
        }
        assert!(
            fast > 150 && compared - fast > 150,
            "{fast} stripped and {} full of {compared}",
            compared - fast
        );
    }
}
