//! Config v3 metadata: `databases/databases.yaml` with nested `!include`s, plus the top-level
//! files, built into one snapshot (Hasura metadata version 3 shape).
//!
//! Everything is read through a [`MetadataReader`] (git blobs, the index or the working tree), so
//! building is pure: the same files always give the same snapshot.
//!
//! Includes follow the Hasura CLI (`cli/internal/metadataobject/sources/yaml.go`): a value may be
//! the YAML tag form `!include path` or the string form `"!include path"` (what
//! `hasura metadata export` writes). Paths are relative to the folder of the file that holds the
//! include, includes nest, and the included file's YAML replaces the include value. Unlike the
//! CLI, includes are resolved in every metadata file, an include may not leave the metadata folder,
//! cycles and nesting deeper than [`MAX_INCLUDE_DEPTH`] are errors, and every error names the
//! chain of files that led to it.
//!
//! Speed (a 5,000-table folder is 5,000 files): every reachable file is read first and parsed on
//! all cores ([`super::parsed`]), each blob once per [`BuildCache`]. When no file uses `<<` merge
//! keys, each file is converted to JSON on its own (in parallel too) and the files are spliced
//! together at their includes; otherwise the tree is resolved as YAML, merges applied file by
//! file and converted at the end, the original procedure. Both give the same value and the same
//! errors in the same order.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use git2::Oid;
use serde_json::{Map, Value};
use yaml_serde::Value as Yaml;

pub use super::parsed::BuildCache;
use super::parsed::{
    is_plain_leaf, parallel, placeholder_slots, string_include, unquote, Bytes, FastMap,
    IncludeRef, Parsed,
};
use super::MetadataError;

/// How many includes may nest below a root file (`databases.yaml` → `tables.yaml` → table file
/// is 2).
pub(crate) const MAX_INCLUDE_DEPTH: usize = 32;

/// How many includes one snapshot may resolve in total (guards against a file that includes
/// another one many times at every level, which would grow the snapshot exponentially).
pub(crate) const MAX_INCLUDES: usize = 200_000;

/// Reads files of a metadata folder by path relative to it (e.g. "databases/databases.yaml").
pub(crate) trait MetadataReader {
    /// The file's bytes, or None when it does not exist.
    fn read(&self, rel_path: &str) -> Result<Option<Vec<u8>>, MetadataError>;

    /// The file's content id (its git blob id), when the reader knows it without reading the
    /// file: equal ids mean equal bytes. `None` (the default) when unknown or missing; builds
    /// sharing a [`BuildCache`] then parse the file again.
    fn content_id(&self, _rel_path: &str) -> Option<Oid> {
        None
    }
}

/// An in-memory metadata folder: relative path → bytes.
impl MetadataReader for HashMap<String, Vec<u8>> {
    fn read(&self, rel_path: &str) -> Result<Option<Vec<u8>>, MetadataError> {
        Ok(self.get(rel_path).cloned())
    }
}

/// An in-memory metadata folder: relative path → bytes.
impl MetadataReader for BTreeMap<String, Vec<u8>> {
    fn read(&self, rel_path: &str) -> Result<Option<Vec<u8>>, MetadataError> {
        Ok(self.get(rel_path).cloned())
    }
}

/// Any closure `|rel_path| -> Result<Option<bytes>, MetadataError>` is a reader.
impl<F> MetadataReader for F
where
    F: Fn(&str) -> Result<Option<Vec<u8>>, MetadataError>,
{
    fn read(&self, rel_path: &str) -> Result<Option<Vec<u8>>, MetadataError> {
        self(rel_path)
    }
}

/// Whether a top-level key holds a list or a mapping.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Mapping,
}

impl Kind {
    fn empty(self) -> Value {
        match self {
            Kind::List => Value::Array(vec![]),
            Kind::Mapping => Value::Object(Map::new()),
        }
    }

    fn matches(self, v: &Value) -> bool {
        match self {
            Kind::List => v.is_array(),
            Kind::Mapping => v.is_object(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::List => "list",
            Kind::Mapping => "mapping",
        }
    }
}

/// The sources file, relative to the metadata folder.
const DATABASES_FILE: &str = "databases/databases.yaml";

/// Top-level files that map one-to-one onto a key: (file, JSON key, list or mapping).
/// `version.yaml`, `databases/databases.yaml`, `actions.yaml` and `actions.graphql` are handled
/// separately. Names and keys: hasura-cli.md §2.2 and `metadataobject.go`.
const SIMPLE_FILES: &[(&str, &str, Kind)] = &[
    ("remote_schemas.yaml", "remote_schemas", Kind::List),
    ("query_collections.yaml", "query_collections", Kind::List),
    ("allow_list.yaml", "allowlist", Kind::List),
    ("cron_triggers.yaml", "cron_triggers", Kind::List),
    ("rest_endpoints.yaml", "rest_endpoints", Kind::List),
    ("inherited_roles.yaml", "inherited_roles", Kind::List),
    ("network.yaml", "network", Kind::Mapping),
    ("api_limits.yaml", "api_limits", Kind::Mapping),
    (
        "graphql_schema_introspection.yaml",
        "graphql_schema_introspection",
        Kind::Mapping,
    ),
    ("metrics_config.yaml", "metrics_config", Kind::Mapping),
    ("opentelemetry.yaml", "opentelemetry", Kind::Mapping),
    ("backend_configs.yaml", "backend_configs", Kind::Mapping),
];

/// The key left out of the snapshot when empty: the server rejects `metrics_config: {}`, and the
/// Hasura CLI leaves it out too (hasura-cli.md §2.2).
const OMIT_WHEN_EMPTY: &str = "metrics_config";

/// The root files `build_v3_snapshot` reads, relative to the metadata folder; everything else it
/// reads is reached through `!include`.
pub(crate) const V3_ROOT_FILES: &[&str] = &[
    "version.yaml",
    DATABASES_FILE,
    "actions.yaml",
    "actions.graphql",
    "remote_schemas.yaml",
    "query_collections.yaml",
    "allow_list.yaml",
    "cron_triggers.yaml",
    "rest_endpoints.yaml",
    "inherited_roles.yaml",
    "network.yaml",
    "api_limits.yaml",
    "graphql_schema_introspection.yaml",
    "metrics_config.yaml",
    "opentelemetry.yaml",
    "backend_configs.yaml",
];

/// Builds the snapshot of a config v3 metadata folder. `dir` is the metadata folder's path in the repository (for messages, e.g. "hasura/metadata"), `at` the commit or source (e.g. "abc1234567").
///
/// The result is Hasura's export shape for metadata version 3:
/// `{"version":3,"sources":[{"name","kind","configuration","tables":[…],"functions":[…],…}],
/// "actions":[…],"custom_types":{…},"remote_schemas":[…],"query_collections":[…],
/// "allowlist":[…],"cron_triggers":[…],"rest_endpoints":[…],"inherited_roles":[…],
/// "network":{…},"api_limits":{…},"graphql_schema_introspection":{…},"metrics_config":{…},
/// "opentelemetry":{…},"backend_configs":{…}}`, plus `actions_graphql` (the SDL text) when
/// `actions.graphql` is not empty. A missing file (or an empty one) gives an empty list or
/// mapping; `metrics_config` is left out when empty, as the Hasura CLI does. A source's missing
/// `tables` / `functions` are empty lists. `<<` merge keys are applied.
pub(crate) fn build_v3_snapshot(
    reader: &dyn MetadataReader,
    dir: &str,
    at: &str,
) -> Result<Value, MetadataError> {
    build_v3_snapshot_with(reader, dir, at, &BuildCache::new(), None).map(|b| b.value)
}

/// Blobs present in both revisions that `metadata diff` compares, and which of them are plain
/// leaves (see [`super::parsed`]): such a file gives the same value in both revisions, so a
/// build may put a sentinel in its place instead of parsing it ([`build_v3_snapshot_with`]).
pub(crate) struct SameBlobs {
    ids: HashSet<Oid>,
    leaf: RefCell<HashMap<Oid, bool>>,
}

impl SameBlobs {
    /// The blob ids found in both revisions' metadata folders.
    pub fn new(ids: HashSet<Oid>) -> SameBlobs {
        SameBlobs {
            ids,
            leaf: RefCell::new(HashMap::new()),
        }
    }
}

/// A built snapshot and how many sentinels it holds.
pub(crate) struct Built {
    /// The snapshot.
    pub value: Value,
    /// How many `{"$gm_same_blob": id}` sentinels stand in it for files not parsed.
    pub sentinels: usize,
}

/// Includes at least this deep below a root file's value may become sentinels: shallower values
/// are read by the builder itself (`version`, a source's `name`, `tables` and `functions`,
/// `actions` and `custom_types`).
const SENTINEL_MIN_DEPTH: usize = 3;

/// [`build_v3_snapshot`] with a cache shared with other builds (parse each blob once) and,
/// with `same`, sentinels: an include of a file whose blob is in `same` and which is a plain
/// leaf, at least [`SENTINEL_MIN_DEPTH`] levels deep and not below a `<<` merge key, becomes
/// `{"$gm_same_blob": "<blob id>"}` without being parsed (see [`super::same_blob`]). Needs a
/// reader that knows content ids. Without `same` the result is exactly `build_v3_snapshot`'s.
pub(crate) fn build_v3_snapshot_with(
    reader: &dyn MetadataReader,
    dir: &str,
    at: &str,
    cache: &BuildCache,
    same: Option<&SameBlobs>,
) -> Result<Built, MetadataError> {
    let mut b = Builder::new(reader, dir, at, cache, same);
    b.prefetch();
    let result = match b.build() {
        Err(Fail::NeedExact) => {
            b.restart_exact();
            b.build()
        }
        other => other,
    };
    match result {
        Ok(value) => Ok(Built {
            value,
            sentinels: b.sentinels,
        }),
        Err(Fail::Meta(e)) => Err(e),
        Err(Fail::NeedExact) => unreachable!("the exact procedure does not give up"),
    }
}

/// Why a build step stopped.
enum Fail {
    /// A real error.
    Meta(MetadataError),
    /// The JSON splice met a file with merge keys (not parsed before the build started): build
    /// again the exact way.
    NeedExact,
}

impl From<MetadataError> for Fail {
    fn from(e: MetadataError) -> Fail {
        Fail::Meta(e)
    }
}

/// A file read for this build.
#[derive(Clone)]
struct FileData {
    id: Option<Oid>,
    bytes: Bytes,
}

/// What this build knows about one path.
#[derive(Default)]
struct Slot {
    /// The read, once done. An error is handed to the first step that needs the file (the file
    /// is read again if needed once more, as the reader would have been asked again).
    read: Option<Result<Option<FileData>, MetadataError>>,
    parsed: Option<Arc<Parsed>>,
}

/// One snapshot build: the reader, names for messages and the include budget.
struct Builder<'a> {
    reader: &'a dyn MetadataReader,
    /// Metadata folder in the repository, without a trailing `/` ("" for the root).
    dir: String,
    at: String,
    /// Includes resolved so far.
    includes: usize,
    cache: &'a BuildCache,
    same: Option<&'a SameBlobs>,
    files: FastMap<String, Slot>,
    /// Resolve as YAML and apply merges file by file (some file has `<<` merge keys), instead
    /// of splicing JSON.
    exact: bool,
    /// Sentinels put in so far.
    sentinels: usize,
    /// The first error converting a file to JSON (splice mode), reported after the include
    /// errors, as converting the whole tree at the end would.
    convert_error: Option<String>,
}

impl<'a> Builder<'a> {
    fn new(
        reader: &'a dyn MetadataReader,
        dir: &str,
        at: &str,
        cache: &'a BuildCache,
        same: Option<&'a SameBlobs>,
    ) -> Self {
        let dir = dir.trim_end_matches('/');
        Builder {
            reader,
            dir: if dir == "." {
                String::new()
            } else {
                dir.into()
            },
            at: at.into(),
            includes: 0,
            cache,
            same,
            files: FastMap::default(),
            exact: false,
            sentinels: 0,
            convert_error: None,
        }
    }

    /// The snapshot (see [`build_v3_snapshot`]).
    fn build(&mut self) -> Result<Value, Fail> {
        let mut out = Map::new();

        let version = match self.load_root_json("version.yaml")? {
            None | Some(Value::Null) => Value::from(3),
            Some(Value::Object(o)) => match o.get("version") {
                None | Some(Value::Null) => Value::from(3),
                Some(v) if v.as_i64() == Some(3) || v.as_str() == Some("3") => Value::from(3),
                Some(v) => {
                    return Err(self
                        .shape(
                            "version.yaml",
                            format!(
                                "expected `version: 3` in a config v3 metadata folder, found {v}"
                            ),
                        )
                        .into())
                }
            },
            Some(_) => {
                return Err(self
                    .shape(
                        "version.yaml",
                        "expected a mapping with `version: 3`".to_string(),
                    )
                    .into())
            }
        };
        out.insert("version".into(), version);

        let sources = self.sources()?;
        out.insert("sources".into(), sources);

        let (actions, custom_types) = self.actions()?;
        out.insert("actions".into(), actions);
        out.insert("custom_types".into(), custom_types);
        if let Some(bytes) = self.reader.read("actions.graphql")? {
            let sdl = String::from_utf8(bytes).map_err(|_| MetadataError::Encoding {
                path: self.full("actions.graphql"),
                at: self.at.clone(),
            })?;
            if !sdl.trim().is_empty() {
                out.insert("actions_graphql".into(), Value::String(sdl));
            }
        }

        for &(file, key, kind) in SIMPLE_FILES {
            let value = match self.load_root_json(file)? {
                None | Some(Value::Null) => kind.empty(),
                Some(v) if kind.matches(&v) => v,
                Some(_) => {
                    return Err(self
                        .shape(file, format!("expected a {} at the top level", kind.name()))
                        .into())
                }
            };
            if key == OMIT_WHEN_EMPTY && value.as_object().is_some_and(Map::is_empty) {
                continue;
            }
            out.insert(key.into(), value);
        }
        Ok(Value::Object(out))
    }

    /// Forgets what the splice did, to build again the exact way.
    fn restart_exact(&mut self) {
        self.exact = true;
        self.includes = 0;
        self.sentinels = 0;
        self.convert_error = None;
    }

    /// Repository path of a file given relative to the metadata folder.
    fn full(&self, rel: &str) -> String {
        if self.dir.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{}", self.dir, rel)
        }
    }

    fn shape(&self, rel: &str, message: String) -> MetadataError {
        MetadataError::Shape {
            path: self.full(rel),
            at: self.at.clone(),
            message,
        }
    }

    fn include_error(&self, chain: &[String], message: String) -> MetadataError {
        MetadataError::Include {
            chain: chain.iter().map(|f| self.full(f)).collect(),
            at: self.at.clone(),
            message,
        }
    }

    // ----------------------------------------------------------------------------- reading

    /// Reads a file through the reader once per build.
    fn read_file(&mut self, rel: &str) -> Result<Option<FileData>, MetadataError> {
        let slot = self.files.entry(rel.to_string()).or_default();
        match slot.read.take() {
            Some(Ok(data)) => {
                slot.read = Some(Ok(data.clone()));
                Ok(data)
            }
            Some(Err(e)) => Err(e),
            None => {
                let id = self.reader.content_id(rel);
                let data = self.reader.read(rel)?.map(|bytes| FileData {
                    id,
                    bytes: Arc::new(bytes),
                });
                self.files.entry(rel.to_string()).or_default().read = Some(Ok(data.clone()));
                Ok(data)
            }
        }
    }

    /// Reads a file ahead (errors are kept for the step that needs the file).
    fn read_ahead(&mut self, rel: &str) -> Option<FileData> {
        if self.files.get(rel).is_none_or(|s| s.read.is_none()) {
            let id = self.reader.content_id(rel);
            let read = self.reader.read(rel).map(|b| {
                b.map(|bytes| FileData {
                    id,
                    bytes: Arc::new(bytes),
                })
            });
            self.files.entry(rel.to_string()).or_default().read = Some(read);
        }
        match &self.files[rel].read {
            Some(Ok(Some(data))) => Some(data.clone()),
            _ => None,
        }
    }

    /// The parse of a file: this build's, the cache's (same blob), or parsed now.
    fn parsed(&mut self, rel: &str, data: &FileData) -> Arc<Parsed> {
        if let Some(p) = self.files.get(rel).and_then(|s| s.parsed.clone()) {
            return p;
        }
        let cached = data
            .id
            .and_then(|id| self.cache.by_id.borrow().get(&id).cloned());
        let p = cached.unwrap_or_else(|| {
            let p = Arc::new(Parsed::parse(data.bytes.clone()));
            if let Some(id) = data.id {
                self.cache.by_id.borrow_mut().insert(id, p.clone());
            }
            p
        });
        self.files.entry(rel.to_string()).or_default().parsed = Some(p.clone());
        p
    }

    /// The blob id to put a sentinel for, when the include of `target` at `depth` (below a
    /// root file's value) may be one.
    fn sentinel_for(&mut self, target: &str, depth: usize, under_merge: bool) -> Option<Oid> {
        let same = self.same?;
        if depth < SENTINEL_MIN_DEPTH || under_merge {
            return None;
        }
        let id = self.reader.content_id(target)?;
        if !same.ids.contains(&id) {
            return None;
        }
        let known = same.leaf.borrow().get(&id).copied();
        let leaf = match known {
            Some(leaf) => leaf,
            None => {
                let leaf = self
                    .read_ahead(target)
                    .is_some_and(|d| d.id == Some(id) && is_plain_leaf(&d.bytes));
                same.leaf.borrow_mut().insert(id, leaf);
                if leaf {
                    // Not needed: the sentinel stands for it.
                    if let Some(slot) = self.files.get_mut(target) {
                        slot.read = None;
                    }
                }
                leaf
            }
        };
        leaf.then_some(id)
    }

    /// Reads every file the build will need and parses them on all cores, level by level
    /// along the includes; then decides between the JSON splice and the exact procedure and,
    /// for the splice, converts the files to JSON on all cores. Errors are left for the build
    /// to meet in its order; a file this misses is parsed when the build gets to it.
    fn prefetch(&mut self) {
        let mut level: Vec<(String, usize, bool)> = V3_ROOT_FILES
            .iter()
            .filter(|f| **f != "actions.graphql")
            .map(|f| (f.to_string(), 0, false))
            .collect();
        let mut seen: FastMap<String, ()> = FastMap::default();
        let mut docs: Vec<Arc<Parsed>> = Vec::new();
        while !level.is_empty() {
            let mut ready: Vec<(String, usize, bool, Arc<Parsed>)> = Vec::new();
            let mut jobs: Vec<(String, usize, bool, FileData)> = Vec::new();
            for (rel, depth, under_merge) in level.drain(..) {
                if seen.insert(rel.clone(), ()).is_some() {
                    continue;
                }
                if depth > 0 && self.sentinel_for(&rel, depth, under_merge).is_some() {
                    continue;
                }
                let Some(data) = self.read_ahead(&rel) else {
                    continue;
                };
                let cached = data
                    .id
                    .and_then(|id| self.cache.by_id.borrow().get(&id).cloned());
                match cached {
                    Some(p) => ready.push((rel, depth, under_merge, p)),
                    None => jobs.push((rel, depth, under_merge, data)),
                }
            }
            let parsed = parallel(
                &jobs,
                |j| j.3.bytes.len(),
                |j| Arc::new(Parsed::parse(j.3.bytes.clone())),
            );
            for ((rel, depth, under_merge, data), p) in jobs.into_iter().zip(parsed) {
                if let Some(id) = data.id {
                    self.cache.by_id.borrow_mut().insert(id, p.clone());
                }
                ready.push((rel, depth, under_merge, p));
            }
            for (rel, depth, under_merge, p) in ready {
                if let Parsed::Doc(doc) = &*p {
                    let base = rel.rfind('/').map_or("", |i| &rel[..i]);
                    for inc in &doc.includes {
                        if let Ok(Ok(target)) = inc.target.as_deref().map(|w| join_inside(base, w))
                        {
                            level.push((target, depth + inc.depth, under_merge || inc.under_merge));
                        }
                    }
                }
                self.files.entry(rel).or_default().parsed = Some(p.clone());
                docs.push(p);
            }
        }
        self.exact = docs
            .iter()
            .any(|p| matches!(&**p, Parsed::Doc(d) if d.merge || d.clash));
        #[cfg(test)]
        {
            self.exact |= tests::FORCE_EXACT.with(|f| f.get());
        }
        if !self.exact {
            parallel(
                &docs,
                |p| match &**p {
                    Parsed::Doc(d) => d.size(),
                    _ => 0,
                },
                |p| {
                    if let Parsed::Doc(d) = &**p {
                        d.prepare_json();
                    }
                },
            );
        }
    }

    // ----------------------------------------------------------------------------- loading

    /// A root file, includes resolved and merge keys applied, as JSON; None when missing.
    fn load_root_json(&mut self, rel: &str) -> Result<Option<Value>, Fail> {
        let Some(data) = self.read_file(rel)? else {
            return Ok(None);
        };
        let mut chain = vec![rel.to_string()];
        if self.exact {
            let yaml = self.load_yaml(&data, &mut chain, 0, false)?;
            return serde_json::to_value(&yaml)
                .map(Some)
                .map_err(|e| self.shape(rel, e.to_string()).into());
        }
        self.convert_error = None;
        let value = self.load_json(&data, &mut chain, 0)?;
        match self.convert_error.take() {
            Some(e) => Err(self.shape(rel, e).into()),
            None => Ok(Some(value)),
        }
    }

    /// The parsed document of the last file in `chain`, or its parse error.
    fn document(&mut self, data: &FileData, chain: &[String]) -> Result<Arc<Parsed>, Fail> {
        let rel = chain.last().cloned().unwrap_or_default();
        let p = self.parsed(&rel, data);
        match &*p {
            Parsed::Doc(doc) => {
                for d in &doc.duplicates {
                    crate::yaml::warn(d.warning(&self.full(&rel), &self.at));
                }
                Ok(p)
            }
            Parsed::Encoding => Err(MetadataError::Encoding {
                path: self.full(&rel),
                at: self.at.clone(),
            }
            .into()),
            Parsed::Syntax {
                line,
                column,
                message,
            } => {
                let mut message = message.clone();
                if chain.len() > 1 {
                    let via: Vec<String> = chain[..chain.len() - 1]
                        .iter()
                        .map(|f| self.full(f))
                        .collect();
                    message.push_str(&format!(" (included via {})", via.join(" → ")));
                }
                Err(MetadataError::Syntax {
                    path: self.full(&rel),
                    at: self.at.clone(),
                    line: *line,
                    column: *column,
                    message,
                }
                .into())
            }
        }
    }

    /// The exact procedure: parses the last file in `chain`, resolves its includes and applies
    /// `<<`. `depth`: how deep the file's value sits below its root file's value.
    fn load_yaml(
        &mut self,
        data: &FileData,
        chain: &mut Vec<String>,
        depth: usize,
        under_merge: bool,
    ) -> Result<Yaml, Fail> {
        let rel = chain.last().cloned().unwrap_or_default();
        let p = self.document(data, chain)?;
        let Parsed::Doc(doc) = &*p else {
            unreachable!("document() gives documents")
        };
        let mut value = doc.yaml();
        self.resolve(&mut value, chain, depth, under_merge)?;
        // Go's yaml.v3 (and so the Hasura CLI) applies `<<` merge keys. After resolving, so that
        // `<<: !include common.yaml` works too.
        value
            .apply_merge()
            .map_err(|e| self.shape(&rel, format!("merge key `<<`: {e}")))?;
        Ok(value)
    }

    /// Replaces every include below `value` with the included file's YAML, and drops other tags
    /// (keeping the tagged value), as Go's yaml.v3 does when decoding into plain values.
    fn resolve(
        &mut self,
        value: &mut Yaml,
        chain: &mut Vec<String>,
        depth: usize,
        under_merge: bool,
    ) -> Result<(), Fail> {
        match value {
            Yaml::String(s) => {
                if let Some(path) = string_include(s) {
                    let path = path.to_string();
                    *value = self.include_yaml(&path, chain, depth, under_merge)?;
                }
            }
            Yaml::Tagged(tagged) if tagged.tag == "include" => {
                let path = match &tagged.value {
                    Yaml::String(s) => unquote(s.trim()).to_string(),
                    other => {
                        let found = match other {
                            Yaml::Null => "nothing".to_string(),
                            Yaml::Bool(_) | Yaml::Number(_) => "a non-string scalar".to_string(),
                            Yaml::Sequence(_) => "a list".to_string(),
                            Yaml::Mapping(_) => "a mapping".to_string(),
                            _ => "a tagged value".to_string(),
                        };
                        return Err(self.include_path_error(chain, &found).into());
                    }
                };
                *value = self.include_yaml(&path, chain, depth, under_merge)?;
            }
            Yaml::Tagged(tagged) => {
                let mut inner = std::mem::replace(&mut tagged.value, Yaml::Null);
                self.resolve(&mut inner, chain, depth, under_merge)?;
                *value = inner;
            }
            Yaml::Sequence(items) => {
                for item in items {
                    self.resolve(item, chain, depth + 1, under_merge)?;
                }
            }
            Yaml::Mapping(map) => {
                for (k, v) in map.iter_mut() {
                    let merge = under_merge || k.as_str() == Some("<<");
                    self.resolve(v, chain, depth + 1, merge)?;
                }
            }
            Yaml::Null | Yaml::Bool(_) | Yaml::Number(_) => {}
        }
        Ok(())
    }

    fn include_path_error(&self, chain: &[String], found: &str) -> MetadataError {
        self.include_error(
            chain,
            format!("`!include` must be followed by a file path, found {found}"),
        )
    }

    /// Loads the file `written` (an include path as written in the last file of `chain`), the
    /// exact way.
    fn include_yaml(
        &mut self,
        written: &str,
        chain: &mut Vec<String>,
        depth: usize,
        under_merge: bool,
    ) -> Result<Yaml, Fail> {
        let target = self.check_include(written, chain)?;
        if let Some(id) = self.sentinel_for(&target, depth, under_merge) {
            self.sentinels += 1;
            let mut m = yaml_serde::Mapping::new();
            m.insert(
                Yaml::String(super::same_blob::SENTINEL_KEY.to_string()),
                Yaml::String(id.to_string()),
            );
            return Ok(Yaml::Mapping(m));
        }
        let data = self.read_include(written, &target, chain)?;
        chain.push(target);
        let loaded = self.load_yaml(&data, chain, depth, under_merge);
        chain.pop();
        loaded
    }

    /// The JSON splice: the last file in `chain` as JSON with its includes spliced in.
    fn load_json(
        &mut self,
        data: &FileData,
        chain: &mut Vec<String>,
        depth: usize,
    ) -> Result<Value, Fail> {
        let p = self.document(data, chain)?;
        let Parsed::Doc(doc) = &*p else {
            unreachable!("document() gives documents")
        };
        if doc.merge || doc.clash {
            return Err(Fail::NeedExact);
        }
        let mut value = match doc.json(self.cache.keep.get()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.convert_error.get_or_insert(e);
                None
            }
        };
        // A file without includes has no placeholder (a string that looks like one is a clash,
        // which takes the exact procedure): nothing to look for.
        let mut slots = match &mut value {
            Some(v) if !doc.includes.is_empty() => {
                placeholder_slots(v, doc.includes.len()).ok_or(Fail::NeedExact)?
            }
            _ => Vec::new(),
        };
        for (k, inc) in doc.includes.iter().enumerate() {
            let child = self.include_json(inc, chain, depth + inc.depth)?;
            if let Some(slot) = slots.get_mut(k) {
                **slot = child;
            }
        }
        Ok(value.unwrap_or(Value::Null))
    }

    /// [`Self::include_yaml`] for the JSON splice.
    fn include_json(
        &mut self,
        inc: &IncludeRef,
        chain: &mut Vec<String>,
        depth: usize,
    ) -> Result<Value, Fail> {
        let written = match &inc.target {
            Ok(w) => w.as_str(),
            Err(found) => return Err(self.include_path_error(chain, found).into()),
        };
        let target = self.check_include(written, chain)?;
        if let Some(id) = self.sentinel_for(&target, depth, inc.under_merge) {
            self.sentinels += 1;
            return Ok(super::same_blob::sentinel(&id.to_string()));
        }
        let data = self.read_include(written, &target, chain)?;
        chain.push(target);
        let loaded = self.load_json(&data, chain, depth);
        chain.pop();
        loaded
    }

    /// The target of an include (relative to the metadata folder), once the path, cycles,
    /// nesting and the include budget are checked.
    fn check_include(&mut self, written: &str, chain: &[String]) -> Result<String, MetadataError> {
        let including = chain.last().cloned().unwrap_or_default();
        let base = match including.rfind('/') {
            Some(i) => &including[..i],
            None => "",
        };
        let target = match join_inside(base, written) {
            Ok(t) => t,
            Err(PathProblem::Empty) => {
                return Err(
                    self.include_error(chain, format!("`!include {written}` has no file path"))
                )
            }
            Err(PathProblem::Absolute) => {
                return Err(self.include_error(
                    chain,
                    format!(
                        "`!include {written}` is an absolute path; include paths are relative to \
                         the folder of the including file and must stay inside the metadata \
                         folder {}",
                        self.folder_name()
                    ),
                ))
            }
            Err(PathProblem::Escapes) => {
                return Err(self.include_error(
                    chain,
                    format!(
                        "`!include {written}` leaves the metadata folder {}",
                        self.folder_name()
                    ),
                ))
            }
        };
        if chain.contains(&target) {
            let mut cycle = chain.to_vec();
            cycle.push(target.clone());
            return Err(self.include_error(
                &cycle,
                format!(
                    "include cycle: `!include {written}` in {} includes {} again",
                    self.full(&including),
                    self.full(&target)
                ),
            ));
        }
        if chain.len() > MAX_INCLUDE_DEPTH {
            return Err(self.include_error(
                chain,
                format!(
                    "`!include {written}` nests includes deeper than {MAX_INCLUDE_DEPTH} levels"
                ),
            ));
        }
        self.includes += 1;
        if self.includes > MAX_INCLUDES {
            return Err(self.include_error(
                chain,
                format!("more than {MAX_INCLUDES} includes in one metadata folder"),
            ));
        }
        Ok(target)
    }

    /// Reads an included file; a missing one is an error.
    fn read_include(
        &mut self,
        written: &str,
        target: &str,
        chain: &[String],
    ) -> Result<FileData, MetadataError> {
        match self.read_file(target)? {
            Some(data) => Ok(data),
            None => {
                let including = chain.last().cloned().unwrap_or_default();
                Err(self.include_error(
                    chain,
                    format!(
                        "`!include {written}` in {}: {} does not exist",
                        self.full(&including),
                        self.full(target)
                    ),
                ))
            }
        }
    }

    fn folder_name(&self) -> String {
        if self.dir.is_empty() {
            "(the repository root)".to_string()
        } else {
            self.dir.clone()
        }
    }

    /// `databases/databases.yaml` as the `sources` list.
    fn sources(&mut self) -> Result<Value, Fail> {
        let items = match self.load_root_json(DATABASES_FILE)? {
            None | Some(Value::Null) => return Ok(Value::Array(vec![])),
            Some(Value::Array(items)) => items,
            Some(_) => {
                return Err(self
                    .shape(
                        DATABASES_FILE,
                        "expected a list of sources at the top level".to_string(),
                    )
                    .into())
            }
        };
        let mut seen = HashSet::new();
        let mut sources = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let Value::Object(mut source) = item else {
                return Err(self
                    .shape(
                        DATABASES_FILE,
                        format!("source #{} is not a mapping", i + 1),
                    )
                    .into());
            };
            let name = match source.get("name").and_then(Value::as_str) {
                Some(n) => n.to_string(),
                None => {
                    return Err(self
                        .shape(DATABASES_FILE, format!("source #{} has no `name`", i + 1))
                        .into())
                }
            };
            if !seen.insert(name.clone()) {
                return Err(self
                    .shape(
                        DATABASES_FILE,
                        format!("source `{name}` is listed more than once"),
                    )
                    .into());
            }
            for key in ["tables", "functions"] {
                match source.get(key) {
                    None | Some(Value::Null) => {
                        source.insert(key.into(), Value::Array(vec![]));
                    }
                    Some(Value::Array(_)) => {}
                    Some(_) => {
                        return Err(self
                            .shape(
                                DATABASES_FILE,
                                format!("source `{name}`: `{key}` must be a list"),
                            )
                            .into())
                    }
                }
            }
            sources.push(Value::Object(source));
        }
        Ok(Value::Array(sources))
    }

    /// `actions.yaml` as (`actions`, `custom_types`).
    fn actions(&mut self) -> Result<(Value, Value), Fail> {
        const FILE: &str = "actions.yaml";
        let mut o = match self.load_root_json(FILE)? {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(o)) => o,
            Some(_) => {
                return Err(self
                    .shape(
                        FILE,
                        "expected a mapping with `actions` and `custom_types`".to_string(),
                    )
                    .into())
            }
        };
        let actions = match o.remove("actions") {
            None | Some(Value::Null) => Value::Array(vec![]),
            Some(v @ Value::Array(_)) => v,
            Some(_) => {
                return Err(self
                    .shape(FILE, "`actions` must be a list".to_string())
                    .into())
            }
        };
        let custom_types = match o.remove("custom_types") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(v @ Value::Object(_)) => v,
            Some(_) => {
                return Err(self
                    .shape(FILE, "`custom_types` must be a mapping".to_string())
                    .into())
            }
        };
        if let Some(extra) = o.keys().next() {
            return Err(self
                .shape(
                    FILE,
                    format!(
                        "unexpected key `{extra}` (expected only `actions` and `custom_types`)"
                    ),
                )
                .into());
        }
        Ok((actions, custom_types))
    }
}

/// Why an include path cannot be used.
#[derive(Debug, PartialEq, Eq)]
enum PathProblem {
    Empty,
    Absolute,
    Escapes,
}

/// `base/written`, normalised (`.`, `..`, repeated `/`), as a path relative to the metadata
/// folder; an absolute path or one that climbs above the folder is refused.
fn join_inside(base: &str, written: &str) -> Result<String, PathProblem> {
    if written.is_empty() {
        return Err(PathProblem::Empty);
    }
    if written.starts_with('/') || written.starts_with('\\') || has_drive_prefix(written) {
        return Err(PathProblem::Absolute);
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in base.split('/').chain(written.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathProblem::Escapes);
                }
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(PathProblem::Empty);
    }
    Ok(parts.join("/"))
}

/// `C:\…` or `C:/…`.
fn has_drive_prefix(p: &str) -> bool {
    let b = p.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'/' || b[2] == b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::random_folders::{folder, Ids, Lcg};
    use crate::metadata::snapshot_sha256;
    use serde_json::json;

    thread_local! {
        /// Builds in this thread take the exact (YAML) procedure.
        pub(super) static FORCE_EXACT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// The result, with an error as its message and its debug form (to compare errors).
    fn outcome(r: Result<Value, MetadataError>) -> Result<Value, String> {
        r.map_err(|e| format!("{e} | {e:?}"))
    }

    #[test]
    fn the_json_splice_equals_the_exact_procedure() {
        let mut r = Lcg(42);
        let (mut ok, mut failed) = (0, 0);
        for round in 0..500 {
            let (merges, errors) = (r.chance(30), r.chance(30));
            let f = folder(&mut r, merges, errors);
            let spliced = outcome(build_v3_snapshot(&f, DIR, AT));
            FORCE_EXACT.with(|x| x.set(true));
            let exact = outcome(build_v3_snapshot(&f, DIR, AT));
            FORCE_EXACT.with(|x| x.set(false));
            let show = || {
                f.iter()
                    .map(|(k, v)| format!("--- {k}\n{}", String::from_utf8_lossy(v)))
                    .collect::<String>()
            };
            assert_eq!(spliced, exact, "round {round}\n{}", show());
            // Content ids and a cache shared by several builds change nothing.
            let cache = BuildCache::new();
            cache.keep_values(true);
            for keep in [true, false, true] {
                cache.keep_values(keep);
                let again = build_v3_snapshot_with(&Ids(&f), DIR, AT, &cache, None);
                assert_eq!(
                    outcome(again.map(|b| b.value)),
                    exact,
                    "round {round}\n{}",
                    show()
                );
            }
            if exact.is_ok() {
                ok += 1;
            } else {
                failed += 1;
            }
        }
        assert!(ok > 150 && failed > 50, "{ok} built, {failed} failed");
    }

    const AT: &str = "abc1234567";
    const DIR: &str = "hasura/metadata";

    fn reader(files: &[(&str, &str)]) -> HashMap<String, Vec<u8>> {
        files
            .iter()
            .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
            .collect()
    }

    fn build(files: &[(&str, &str)]) -> Result<Value, MetadataError> {
        build_v3_snapshot(&reader(files), DIR, AT)
    }

    const DATABASES: &str = r#"- name: default
  kind: postgres
  configuration:
    connection_info:
      database_url:
        from_env: HASURA_GRAPHQL_DATABASE_URL
      isolation_level: read-committed
      pool_settings:
        connection_lifetime: 600
        idle_timeout: 180
        max_connections: 50
        retries: 1
      use_prepared_statements: true
  tables: "!include default/tables/tables.yaml"
  functions: "!include default/functions/functions.yaml"
- name: analytics
  kind: postgres
  configuration:
    connection_info:
      database_url:
        from_env: ANALYTICS_DATABASE_URL
      isolation_level: read-committed
      use_prepared_statements: false
  customization:
    root_fields:
      namespace: analytics
  tables: !include analytics/tables/tables.yaml
"#;

    const DEFAULT_TABLES: &str = r#"- "!include public_users.yaml"
- "!include public_orders.yaml"
- "!include public_order_items.yaml"
"#;

    const USERS: &str = r#"table:
  name: users
  schema: public
array_relationships:
  - name: orders
    using:
      foreign_key_constraint_on:
        column: user_id
        table:
          name: orders
          schema: public
select_permissions:
  - role: user
    permission:
      columns:
        - id
        - email
      filter:
        id:
          _eq: X-Hasura-User-Id
"#;

    const ORDERS: &str = r#"table:
  name: orders
  schema: public
object_relationships:
  - name: user
    using:
      foreign_key_constraint_on: user_id
array_relationships:
  - name: items
    using:
      foreign_key_constraint_on:
        column: order_id
        table:
          name: order_items
          schema: public
insert_permissions:
  - role: user
    permission:
      check:
        user_id:
          _eq: X-Hasura-User-Id
      set:
        user_id: x-hasura-User-Id
      columns:
        - total
select_permissions:
  - role: user
    permission:
      columns: [id, total, user_id]
      filter:
        user_id:
          _eq: X-Hasura-User-Id
event_triggers:
  - name: order_created
    definition:
      enable_manual: false
      insert:
        columns: '*'
    retry_conf:
      interval_sec: 10
      num_retries: 0
      timeout_sec: 60
    webhook_from_env: ORDER_WEBHOOK_URL
"#;

    const ORDER_ITEMS: &str = r#"table:
  name: order_items
  schema: public
object_relationships:
  - name: order
    using:
      foreign_key_constraint_on: order_id
"#;

    const FUNCTIONS: &str = "- \"!include public_search_users.yaml\"\n";
    const SEARCH_USERS: &str = r#"function:
  name: search_users
  schema: public
configuration:
  exposed_as: query
permissions:
  - role: user
"#;

    const ANALYTICS_TABLES: &str = "- !include \"reporting_daily_sales.yaml\"\n";
    const DAILY_SALES: &str = r#"table:
  name: daily_sales
  schema: reporting
select_permissions:
  - role: analyst
    permission:
      columns: '*'
      filter: {}
"#;

    const ACTIONS: &str = r#"actions:
  - name: checkout
    definition:
      kind: synchronous
      handler: '{{ACTION_BASE_URL}}/checkout'
      forward_client_headers: true
    permissions:
      - role: user
custom_types:
  enums: []
  input_objects:
    - name: CheckoutInput
  objects:
    - name: CheckoutOutput
  scalars: []
"#;

    const ACTIONS_GRAPHQL: &str = r#"type Mutation {
  checkout(input: CheckoutInput!): CheckoutOutput
}
input CheckoutInput { order_id: Int! }
type CheckoutOutput { ok: Boolean! }
"#;

    const CRON: &str = r#"- name: nightly_cleanup
  webhook: '{{CLEANUP_URL}}'
  schedule: 0 3 * * *
  include_in_metadata: true
  payload: {}
  retry_conf:
    num_retries: 1
    retry_interval_seconds: 10
    timeout_seconds: 60
    tolerance_seconds: 21600
"#;

    const REST: &str = r#"- name: user_orders
  url: users/:id/orders
  methods:
    - GET
  definition:
    query:
      collection_name: allowed-queries
      query_name: user_orders
  comment: ""
"#;

    const QUERY_COLLECTIONS: &str = r#"- name: allowed-queries
  definition:
    queries:
      - name: user_orders
        query: |
          query user_orders($id: Int!) { orders(where: {user_id: {_eq: $id}}) { id total } }
"#;

    fn project() -> Vec<(&'static str, &'static str)> {
        vec![
            ("version.yaml", "version: 3\n"),
            ("databases/databases.yaml", DATABASES),
            ("databases/default/tables/tables.yaml", DEFAULT_TABLES),
            ("databases/default/tables/public_users.yaml", USERS),
            ("databases/default/tables/public_orders.yaml", ORDERS),
            (
                "databases/default/tables/public_order_items.yaml",
                ORDER_ITEMS,
            ),
            ("databases/default/functions/functions.yaml", FUNCTIONS),
            (
                "databases/default/functions/public_search_users.yaml",
                SEARCH_USERS,
            ),
            ("databases/analytics/tables/tables.yaml", ANALYTICS_TABLES),
            (
                "databases/analytics/tables/reporting_daily_sales.yaml",
                DAILY_SALES,
            ),
            ("actions.yaml", ACTIONS),
            ("actions.graphql", ACTIONS_GRAPHQL),
            ("allow_list.yaml", "- collection: allowed-queries\n"),
            ("cron_triggers.yaml", CRON),
            ("query_collections.yaml", QUERY_COLLECTIONS),
            ("remote_schemas.yaml", "[]\n"),
            ("rest_endpoints.yaml", REST),
            (
                "inherited_roles.yaml",
                "- role_name: staff\n  role_set: [user, analyst]\n",
            ),
            ("network.yaml", "{}\n"),
            ("api_limits.yaml", "disabled: false\n"),
            (
                "graphql_schema_introspection.yaml",
                "disabled_for_roles: []\n",
            ),
            ("opentelemetry.yaml", ""),
            ("backend_configs.yaml", "{}\n"),
        ]
    }

    /// The project with some files replaced (or added).
    fn project_with(changes: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut files = project();
        for (path, text) in changes {
            files.retain(|(p, _)| p != path);
            files.push((path, text));
        }
        files
    }

    fn include_parts(e: MetadataError) -> (Vec<String>, String, String) {
        match e {
            MetadataError::Include { chain, at, message } => (chain, at, message),
            other => panic!("expected an include error, got {other:?}: {other}"),
        }
    }

    #[test]
    fn builds_a_realistic_project() {
        let s = build(&project()).unwrap();
        assert_eq!(s["version"], 3);
        let sources = s["sources"].as_array().unwrap();
        assert_eq!(sources.len(), 2);

        let default = &sources[0];
        assert_eq!(default["name"], "default");
        assert_eq!(default["kind"], "postgres");
        assert_eq!(
            default["configuration"]["connection_info"]["database_url"]["from_env"],
            "HASURA_GRAPHQL_DATABASE_URL"
        );
        let tables = default["tables"].as_array().unwrap();
        let names: Vec<&str> = tables
            .iter()
            .map(|t| t["table"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["users", "orders", "order_items"]);
        assert_eq!(
            tables[0]["array_relationships"][0]["using"]["foreign_key_constraint_on"]["column"],
            "user_id"
        );
        assert_eq!(
            tables[0]["select_permissions"][0]["permission"]["columns"],
            json!(["id", "email"])
        );
        assert_eq!(tables[1]["object_relationships"][0]["name"], "user");
        assert_eq!(tables[1]["insert_permissions"][0]["role"], "user");
        assert_eq!(tables[1]["event_triggers"][0]["name"], "order_created");
        assert_eq!(
            tables[1]["event_triggers"][0]["definition"]["insert"]["columns"],
            "*"
        );
        assert_eq!(
            default["functions"],
            json!([{
                "function": {"name": "search_users", "schema": "public"},
                "configuration": {"exposed_as": "query"},
                "permissions": [{"role": "user"}]
            }])
        );

        let analytics = &sources[1];
        assert_eq!(analytics["name"], "analytics");
        assert_eq!(
            analytics["customization"]["root_fields"]["namespace"],
            "analytics"
        );
        assert_eq!(analytics["tables"][0]["table"]["schema"], "reporting");
        assert_eq!(analytics["functions"], json!([]), "missing functions key");

        assert_eq!(s["actions"][0]["name"], "checkout");
        assert_eq!(s["actions"][0]["permissions"][0]["role"], "user");
        assert_eq!(
            s["custom_types"]["input_objects"][0]["name"],
            "CheckoutInput"
        );
        assert_eq!(s["actions_graphql"], ACTIONS_GRAPHQL);
        assert_eq!(s["allowlist"], json!([{"collection": "allowed-queries"}]));
        assert_eq!(s["cron_triggers"][0]["schedule"], "0 3 * * *");
        assert_eq!(s["cron_triggers"][0]["payload"], json!({}));
        assert_eq!(s["query_collections"][0]["name"], "allowed-queries");
        assert_eq!(s["remote_schemas"], json!([]));
        assert_eq!(s["rest_endpoints"][0]["url"], "users/:id/orders");
        assert_eq!(s["rest_endpoints"][0]["methods"], json!(["GET"]));
        assert_eq!(
            s["inherited_roles"][0]["role_set"],
            json!(["user", "analyst"])
        );
        assert_eq!(s["network"], json!({}));
        assert_eq!(s["api_limits"], json!({"disabled": false}));
        assert_eq!(
            s["graphql_schema_introspection"],
            json!({"disabled_for_roles": []})
        );
        assert_eq!(
            s["opentelemetry"],
            json!({}),
            "empty file is an empty mapping"
        );
        assert_eq!(s["backend_configs"], json!({}));
        assert!(
            s.get("metrics_config").is_none(),
            "missing metrics_config is left out"
        );

        let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "actions",
                "actions_graphql",
                "allowlist",
                "api_limits",
                "backend_configs",
                "cron_triggers",
                "custom_types",
                "graphql_schema_introspection",
                "inherited_roles",
                "network",
                "opentelemetry",
                "query_collections",
                "remote_schemas",
                "rest_endpoints",
                "sources",
                "version",
            ]
        );
    }

    #[test]
    fn missing_files_are_empty_and_match_empty_files() {
        let empty = build(&[]).unwrap();
        assert_eq!(
            empty,
            json!({
                "version": 3,
                "sources": [],
                "actions": [],
                "custom_types": {},
                "remote_schemas": [],
                "query_collections": [],
                "allowlist": [],
                "cron_triggers": [],
                "rest_endpoints": [],
                "inherited_roles": [],
                "network": {},
                "api_limits": {},
                "graphql_schema_introspection": {},
                "opentelemetry": {},
                "backend_configs": {},
            })
        );
        // The files `hasura init` writes: present but empty.
        let present = build(&[
            ("version.yaml", "version: 3\n"),
            ("databases/databases.yaml", "[]\n"),
            ("actions.yaml", "actions: []\ncustom_types:\n  enums: []\n"),
            ("actions.graphql", "\n"),
            ("allow_list.yaml", "[]\n"),
            ("cron_triggers.yaml", "[]\n"),
            ("query_collections.yaml", "[]\n"),
            ("remote_schemas.yaml", "[]\n"),
            ("rest_endpoints.yaml", "[]\n"),
            ("inherited_roles.yaml", "[]\n"),
            ("network.yaml", "{}\n"),
            ("api_limits.yaml", "{}\n"),
            ("graphql_schema_introspection.yaml", "{}\n"),
            ("metrics_config.yaml", "{}\n"),
            ("opentelemetry.yaml", "{}\n"),
            ("backend_configs.yaml", "{}\n"),
        ])
        .unwrap();
        let mut expected = empty.clone();
        expected["custom_types"] = json!({"enums": []});
        assert_eq!(present, expected);
        // A source with neither tables nor functions gets empty lists.
        let s = build(&[(
            "databases/databases.yaml",
            "- name: default\n  kind: postgres\n  configuration: {}\n",
        )])
        .unwrap();
        assert_eq!(
            s["sources"],
            json!([{"name": "default", "kind": "postgres", "configuration": {},
                    "tables": [], "functions": []}])
        );
    }

    #[test]
    fn every_source_key_is_kept() {
        let s = build(&[
            (
                "databases/databases.yaml",
                r#"- name: s1
  kind: postgres
  configuration: {connection_info: {database_url: {from_env: DB}}}
  query_tags: {disabled: false, format: standard}
  health_check: {interval: 10, test: {sql: SELECT 1}}
  custom_return_types:
    - name: quiz_answer
      fields: {answer: {nullable: false, type: text}}
  native_queries:
    - code: select answer from questions
      returns: quiz_answer
      root_field_name: quiz_answers
  some_future_key: [1, 2]
  tables: []
"#,
            ),
            ("metrics_config.yaml", "analyze_query_variables: true\n"),
        ])
        .unwrap();
        let src = &s["sources"][0];
        assert_eq!(src["query_tags"]["format"], "standard");
        assert_eq!(src["health_check"]["test"]["sql"], "SELECT 1");
        assert_eq!(src["custom_return_types"][0]["name"], "quiz_answer");
        assert_eq!(src["native_queries"][0]["root_field_name"], "quiz_answers");
        assert_eq!(src["some_future_key"], json!([1, 2]));
        assert_eq!(
            s["metrics_config"],
            json!({"analyze_query_variables": true})
        );
    }

    #[test]
    fn both_include_spellings_and_quoted_paths_with_spaces() {
        // The four spellings of Hasura's own fixture (build_test/t1).
        let s = build(&[
            (
                "databases/databases.yaml",
                r#"- name: s1
  kind: postgres
  tables: !include "s1/tables/tables.yaml"
  functions: !include s1/functions/functions.yaml
- name: s2
  kind: postgres
  tables: "!include s2/tables/tables.yaml"
- name: s 3
  kind: postgres
  tables: !include "s 3/tables/tables.yaml"
- name: s 4
  kind: postgres
  tables: "!include s 4/tables/tables.yaml"
- name: s 5
  kind: postgres
  tables: "!include \"s 5/tables/tables.yaml\""
"#,
            ),
            (
                "databases/s1/tables/tables.yaml",
                "- !include public_t1.yaml\n",
            ),
            (
                "databases/s1/tables/public_t1.yaml",
                "table: {schema: public, name: t1}\n",
            ),
            (
                "databases/s1/functions/functions.yaml",
                "- '!include public_f.yaml'\n",
            ),
            (
                "databases/s1/functions/public_f.yaml",
                "function: {schema: public, name: f}\n",
            ),
            (
                "databases/s2/tables/tables.yaml",
                "- table: {schema: public, name: t2}\n",
            ),
            (
                "databases/s 3/tables/tables.yaml",
                "- table: {schema: public, name: t3}\n",
            ),
            (
                "databases/s 4/tables/tables.yaml",
                "- table: {schema: public, name: t4}\n",
            ),
            (
                "databases/s 5/tables/tables.yaml",
                "- table: {schema: public, name: t5}\n",
            ),
        ])
        .unwrap();
        let sources = s["sources"].as_array().unwrap();
        let got: Vec<(String, String)> = sources
            .iter()
            .map(|src| {
                (
                    src["name"].as_str().unwrap().to_string(),
                    src["tables"][0]["table"]["name"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("s1", "t1"),
                ("s2", "t2"),
                ("s 3", "t3"),
                ("s 4", "t4"),
                ("s 5", "t5")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(sources[0]["functions"][0]["function"]["name"], "f");
    }

    #[test]
    fn only_strings_starting_with_the_include_word_are_includes() {
        assert_eq!(string_include("!include a.yaml"), Some("a.yaml"));
        assert_eq!(string_include("!include  \"a b.yaml\" "), Some("a b.yaml"));
        assert_eq!(string_include("!include"), Some(""));
        assert_eq!(string_include("!included a.yaml"), None);
        assert_eq!(string_include("see !include a.yaml"), None);
        assert_eq!(string_include("plain"), None);
        // Such strings stay as they are.
        let s = build(&[(
            "rest_endpoints.yaml",
            "- name: e\n  comment: \"see !include a.yaml\"\n",
        )])
        .unwrap();
        assert_eq!(s["rest_endpoints"][0]["comment"], "see !include a.yaml");
    }

    #[test]
    fn includes_nest_and_resolve_relative_to_the_including_file() {
        let s = build(&[
            (
                "databases/databases.yaml",
                "- name: default\n  kind: postgres\n  tables: \"!include default/tables/tables.yaml\"\n",
            ),
            (
                "databases/default/tables/tables.yaml",
                "- \"!include public_a.yaml\"\n- \"!include ./nested/../public_b.yaml\"\n",
            ),
            (
                "databases/default/tables/public_a.yaml",
                // A value deep inside a table file, two more levels down, then back up.
                "table: {schema: public, name: a}\nselect_permissions: !include perms/a.yaml\n",
            ),
            (
                "databases/default/tables/perms/a.yaml",
                "- role: user\n  permission: !include ../../shared/all_columns.yaml\n",
            ),
            (
                "databases/default/shared/all_columns.yaml",
                "columns: '*'\nfilter: {}\n",
            ),
            (
                "databases/default/tables/public_b.yaml",
                "table: {schema: public, name: b}\n",
            ),
            // Includes work in any top-level file, relative to the metadata folder.
            ("cron_triggers.yaml", "- !include cron/nightly.yaml\n"),
            ("cron/nightly.yaml", "name: nightly\nschedule: '0 0 * * *'\n"),
        ])
        .unwrap();
        let tables = &s["sources"][0]["tables"];
        assert_eq!(tables[0]["table"]["name"], "a");
        assert_eq!(
            tables[0]["select_permissions"],
            json!([{"role": "user", "permission": {"columns": "*", "filter": {}}}])
        );
        assert_eq!(tables[1]["table"]["name"], "b");
        assert_eq!(s["cron_triggers"][0]["name"], "nightly");
    }

    #[test]
    fn the_same_file_may_be_included_twice_without_a_cycle() {
        let s = build(&[
            (
                "databases/databases.yaml",
                "- name: a\n  kind: postgres\n  configuration: !include common.yaml\n\
                 - name: b\n  kind: postgres\n  configuration: !include common.yaml\n",
            ),
            (
                "databases/common.yaml",
                "connection_info: {database_url: {from_env: DB}}\n",
            ),
        ])
        .unwrap();
        assert_eq!(
            s["sources"][0]["configuration"],
            s["sources"][1]["configuration"]
        );
    }

    #[test]
    fn merge_keys_are_applied_in_root_and_included_files() {
        let s = build(&[
            (
                "databases/databases.yaml",
                r#"- &base
  name: default
  kind: postgres
  configuration:
    connection_info: {database_url: {from_env: DB}}
  tables: "!include default/tables.yaml"
- <<: *base
  name: replica
  tables: []
"#,
            ),
            (
                "databases/default/tables.yaml",
                r#"- table: {schema: public, name: a}
  select_permissions:
    - role: user
      permission: &perm
        columns: [id]
        filter: {}
    - role: editor
      permission:
        <<: *perm
        columns: [id, body]
"#,
            ),
            (
                "actions.yaml",
                "actions:\n  - name: x\n    definition:\n      <<: !include defs/common.yaml\n      handler: http://x\n",
            ),
            ("defs/common.yaml", "kind: synchronous\nhandler: http://default\n"),
        ])
        .unwrap();
        let replica = &s["sources"][1];
        assert_eq!(replica["name"], "replica");
        assert_eq!(replica["kind"], "postgres");
        assert_eq!(
            replica["configuration"]["connection_info"]["database_url"]["from_env"],
            "DB"
        );
        assert_eq!(replica["tables"], json!([]));
        let perms = &s["sources"][0]["tables"][0]["select_permissions"];
        assert_eq!(
            perms[1]["permission"],
            json!({"columns": ["id", "body"], "filter": {}})
        );
        assert!(perms[1]["permission"].get("<<").is_none());
        assert_eq!(
            s["actions"][0]["definition"],
            json!({"kind": "synchronous", "handler": "http://x"})
        );
    }

    #[test]
    fn other_tags_are_dropped_keeping_the_value() {
        let s = build(&[(
            "remote_schemas.yaml",
            "- name: r\n  definition: !custom {url: http://r}\n  comment: !!str 12\n",
        )])
        .unwrap();
        assert_eq!(
            s["remote_schemas"],
            json!([{"name": "r", "definition": {"url": "http://r"}, "comment": "12"}])
        );
    }

    #[test]
    fn syntax_error_names_file_line_column_and_commit() {
        let e = build(&project_with(&[(
            "databases/default/tables/public_orders.yaml",
            "table:\n  name: orders\n  schema: [public\n",
        )]))
        .unwrap_err();
        let MetadataError::Syntax {
            ref path,
            ref at,
            line,
            column,
            ref message,
        } = e
        else {
            panic!("expected a syntax error, got {e:?}");
        };
        assert_eq!(
            path,
            "hasura/metadata/databases/default/tables/public_orders.yaml"
        );
        assert_eq!(at, AT);
        assert!(line >= 3, "{e}");
        assert!(column >= 1, "{e}");
        assert!(
            message.contains(
                "included via hasura/metadata/databases/databases.yaml → \
                 hasura/metadata/databases/default/tables/tables.yaml"
            ),
            "{e}"
        );
        let s = e.to_string();
        assert!(
            s.starts_with(&format!(
                "hasura/metadata/databases/default/tables/public_orders.yaml:{line}:{column} @ {AT}"
            )),
            "{s}"
        );

        // In a root file: line and column exactly.
        let e = build(&[("cron_triggers.yaml", "- name: a\n  schedule: [\n")]).unwrap_err();
        let MetadataError::Syntax { line, column, .. } = e else {
            panic!("{e:?}")
        };
        assert_eq!((line, column), (3, 1), "{e}");
        assert!(e
            .to_string()
            .starts_with("hasura/metadata/cron_triggers.yaml:3:1 @ abc1234567"));
    }

    #[test]
    fn missing_include_names_the_including_file_the_path_and_the_chain() {
        let files = project()
            .into_iter()
            .filter(|(p, _)| *p != "databases/default/tables/public_order_items.yaml")
            .collect::<Vec<_>>();
        let e = build(&files).unwrap_err();
        let text = e.to_string();
        let (chain, at, message) = include_parts(e);
        assert_eq!(
            chain,
            [
                "hasura/metadata/databases/databases.yaml",
                "hasura/metadata/databases/default/tables/tables.yaml",
            ]
        );
        assert_eq!(at, AT);
        assert_eq!(
            message,
            "`!include public_order_items.yaml` in hasura/metadata/databases/default/tables/tables.yaml: \
             hasura/metadata/databases/default/tables/public_order_items.yaml does not exist"
        );
        assert!(
            text.starts_with(
                "hasura/metadata/databases/databases.yaml → \
                 hasura/metadata/databases/default/tables/tables.yaml @ abc1234567: "
            ),
            "{text}"
        );
        // A missing file directly under databases.yaml.
        let e = build(&project_with(&[(
            "databases/databases.yaml",
            "- name: x\n  kind: postgres\n  tables: \"!include x/tables/tables.yaml\"\n",
        )]))
        .unwrap_err();
        let (chain, _, message) = include_parts(e);
        assert_eq!(chain, ["hasura/metadata/databases/databases.yaml"]);
        assert!(message.contains("hasura/metadata/databases/x/tables/tables.yaml does not exist"));
    }

    #[test]
    fn include_cycles_name_the_cycle() {
        let e = build(&[
            (
                "databases/databases.yaml",
                "- name: default\n  kind: postgres\n  tables: \"!include default/tables/tables.yaml\"\n",
            ),
            ("databases/default/tables/tables.yaml", "- \"!include public_a.yaml\"\n"),
            (
                "databases/default/tables/public_a.yaml",
                "table: {schema: public, name: a}\ncomputed_fields: !include ../../databases.yaml\n",
            ),
        ])
        .unwrap_err();
        let (chain, _, message) = include_parts(e);
        assert_eq!(
            chain,
            [
                "hasura/metadata/databases/databases.yaml",
                "hasura/metadata/databases/default/tables/tables.yaml",
                "hasura/metadata/databases/default/tables/public_a.yaml",
                "hasura/metadata/databases/databases.yaml",
            ]
        );
        assert!(message.starts_with("include cycle"), "{message}");
        assert!(
            message.contains("`!include ../../databases.yaml`"),
            "{message}"
        );

        // A file that includes itself.
        let e = build(&[("network.yaml", "tls: !include ./network.yaml\n")]).unwrap_err();
        let (chain, _, message) = include_parts(e);
        assert_eq!(
            chain,
            [
                "hasura/metadata/network.yaml",
                "hasura/metadata/network.yaml"
            ]
        );
        assert!(message.starts_with("include cycle"), "{message}");
    }

    #[test]
    fn includes_may_not_leave_the_metadata_folder() {
        for (written, needle) in [
            ("../../x.yaml", "leaves the metadata folder hasura/metadata"),
            (
                "../../../x.yaml",
                "leaves the metadata folder hasura/metadata",
            ),
            (
                "default/../../../x.yaml",
                "leaves the metadata folder hasura/metadata",
            ),
            ("/etc/passwd", "is an absolute path"),
            ("C:\\\\x.yaml", "is an absolute path"),
        ] {
            let databases =
                format!("- name: default\n  kind: postgres\n  tables: \"!include {written}\"\n");
            let files = reader(&[("databases/databases.yaml", &databases)]);
            let read_outside = |p: &str| -> Result<Option<Vec<u8>>, MetadataError> {
                assert!(!p.starts_with('/') && !p.starts_with(".."), "asked for {p}");
                files.read(p)
            };
            let e = build_v3_snapshot(&read_outside, DIR, AT).unwrap_err();
            let (chain, _, message) = include_parts(e);
            assert_eq!(
                chain,
                ["hasura/metadata/databases/databases.yaml"],
                "{written}"
            );
            assert!(message.contains(needle), "{written}: {message}");
        }
        // One level up from databases/ is still inside the folder.
        let s = build(&[
            (
                "databases/databases.yaml",
                "- name: default\n  kind: postgres\n  tables: \"!include ../shared/tables.yaml\"\n",
            ),
            ("shared/tables.yaml", "- table: {schema: public, name: a}\n"),
        ])
        .unwrap();
        assert_eq!(s["sources"][0]["tables"][0]["table"]["name"], "a");
        // From a top-level file even one level up leaves the folder.
        let e = build(&[("allow_list.yaml", "- !include ../allow.yaml\n")]).unwrap_err();
        let (chain, _, message) = include_parts(e);
        assert_eq!(chain, ["hasura/metadata/allow_list.yaml"]);
        assert!(message.contains("leaves the metadata folder"), "{message}");
    }

    #[test]
    fn path_normalisation() {
        assert_eq!(
            join_inside("databases", "default/tables/t.yaml").unwrap(),
            "databases/default/tables/t.yaml"
        );
        assert_eq!(
            join_inside("databases/default/tables", "./a//b/../t.yaml").unwrap(),
            "databases/default/tables/a/t.yaml"
        );
        assert_eq!(join_inside("databases", "../x.yaml").unwrap(), "x.yaml");
        assert_eq!(
            join_inside("databases", "../../x.yaml"),
            Err(PathProblem::Escapes)
        );
        assert_eq!(join_inside("", "a/../../x.yaml"), Err(PathProblem::Escapes));
        assert_eq!(
            join_inside("databases", "/etc/passwd"),
            Err(PathProblem::Absolute)
        );
        assert_eq!(join_inside("databases", ""), Err(PathProblem::Empty));
        assert_eq!(join_inside("databases", ".."), Err(PathProblem::Empty));
    }

    #[test]
    fn include_without_a_path_is_an_error() {
        for databases in [
            "- name: d\n  kind: postgres\n  tables: !include\n",
            "- name: d\n  kind: postgres\n  tables: \"!include\"\n",
            "- name: d\n  kind: postgres\n  tables: !include {a: 1}\n",
        ] {
            let e = build(&[("databases/databases.yaml", databases)]).unwrap_err();
            let (chain, _, _) = include_parts(e);
            assert_eq!(chain, ["hasura/metadata/databases/databases.yaml"]);
        }
    }

    #[test]
    fn nesting_deeper_than_32_is_an_error() {
        // f0 includes f1 includes … f{n}.
        fn chain_files(n: usize) -> BTreeMap<String, Vec<u8>> {
            let mut files = BTreeMap::new();
            files.insert(
                "network.yaml".to_string(),
                b"next: !include d/f1.yaml\n".to_vec(),
            );
            for i in 1..n {
                files.insert(
                    format!("d/f{i}.yaml"),
                    format!("next: \"!include f{}.yaml\"\n", i + 1).into_bytes(),
                );
            }
            files.insert(format!("d/f{n}.yaml"), b"end: true\n".to_vec());
            files
        }
        let s = build_v3_snapshot(&chain_files(MAX_INCLUDE_DEPTH), DIR, AT).unwrap();
        let mut v = &s["network"];
        for _ in 0..MAX_INCLUDE_DEPTH {
            v = &v["next"];
        }
        assert_eq!(v["end"], true);

        let e = build_v3_snapshot(&chain_files(MAX_INCLUDE_DEPTH + 1), DIR, AT).unwrap_err();
        let (chain, _, message) = include_parts(e);
        assert_eq!(chain.len(), MAX_INCLUDE_DEPTH + 1);
        assert_eq!(chain[0], "hasura/metadata/network.yaml");
        assert_eq!(chain[MAX_INCLUDE_DEPTH], "hasura/metadata/d/f32.yaml");
        assert!(message.contains("deeper than 32"), "{message}");
    }

    #[test]
    fn too_many_includes_in_total_is_an_error() {
        // Every level includes the next one twice: 2^32 includes without the budget.
        let mut files = BTreeMap::new();
        files.insert(
            "network.yaml".to_string(),
            b"a: !include d/f1.yaml\n".to_vec(),
        );
        for i in 1..MAX_INCLUDE_DEPTH {
            files.insert(
                format!("d/f{i}.yaml"),
                format!("[!include f{n}.yaml, !include f{n}.yaml]\n", n = i + 1).into_bytes(),
            );
        }
        files.insert(format!("d/f{MAX_INCLUDE_DEPTH}.yaml"), b"x\n".to_vec());
        let e = build_v3_snapshot(&files, DIR, AT).unwrap_err();
        let (_, _, message) = include_parts(e);
        assert!(message.contains("more than 200000 includes"), "{message}");
    }

    #[test]
    fn invalid_utf8_is_an_encoding_error() {
        let mut files = reader(&project());
        files.insert(
            "databases/default/tables/public_users.yaml".into(),
            b"table: {schema: public, name: \xff}\n".to_vec(),
        );
        let e = build_v3_snapshot(&files, DIR, AT).unwrap_err();
        assert!(
            matches!(&e, MetadataError::Encoding { path, at }
                if path == "hasura/metadata/databases/default/tables/public_users.yaml" && at == AT),
            "{e:?}"
        );
        let mut files = reader(&[]);
        files.insert("actions.graphql".into(), b"type \xfe".to_vec());
        let e = build_v3_snapshot(&files, DIR, AT).unwrap_err();
        assert!(
            matches!(&e, MetadataError::Encoding { path, .. } if path == "hasura/metadata/actions.graphql"),
            "{e:?}"
        );
    }

    #[test]
    fn wrong_shapes_are_errors() {
        for (file, text, needle) in [
            (
                "databases/databases.yaml",
                "name: default\n",
                "expected a list of sources",
            ),
            (
                "databases/databases.yaml",
                "- kind: postgres\n",
                "has no `name`",
            ),
            (
                "databases/databases.yaml",
                "- name: a\n  kind: postgres\n- name: a\n  kind: postgres\n",
                "listed more than once",
            ),
            (
                "databases/databases.yaml",
                "- name: a\n  kind: postgres\n  tables: {}\n",
                "`tables` must be a list",
            ),
            ("cron_triggers.yaml", "name: x\n", "expected a list"),
            ("network.yaml", "[]\n", "expected a mapping"),
            ("actions.yaml", "[]\n", "expected a mapping with `actions`"),
            (
                "actions.yaml",
                "actions: []\nextra: 1\n",
                "unexpected key `extra`",
            ),
            ("version.yaml", "version: 2\n", "expected `version: 3`"),
        ] {
            let e = build(&[(file, text)]).unwrap_err();
            match &e {
                MetadataError::Shape { path, at, message } => {
                    assert_eq!(path, &format!("hasura/metadata/{file}"));
                    assert_eq!(at, AT);
                    assert!(message.contains(needle), "{file}: {message}");
                }
                other => panic!("{file}: expected a shape error, got {other:?}"),
            }
        }
    }

    #[test]
    fn reader_errors_are_passed_on() {
        let failing = |p: &str| -> Result<Option<Vec<u8>>, MetadataError> {
            if p == "databases/default/tables/tables.yaml" {
                Err(MetadataError::Shape {
                    path: p.into(),
                    at: "git".into(),
                    message: "object not found".into(),
                })
            } else {
                reader(&project()).read(p)
            }
        };
        let e = build_v3_snapshot(&failing, DIR, AT).unwrap_err();
        assert!(e.to_string().contains("object not found"), "{e}");
    }

    #[test]
    fn formatting_and_order_do_not_change_the_hash() {
        let a = build(&project()).unwrap();
        let reformatted = project_with(&[
            (
                "databases/databases.yaml",
                // Flow style, other key order, other include spellings, sources swapped.
                r#"# two sources
- name: analytics
  kind: postgres
  tables: "!include analytics/tables/tables.yaml"
  customization: {root_fields: {namespace: analytics}}
  configuration:
    connection_info: {use_prepared_statements: false, isolation_level: read-committed,
                      database_url: {from_env: ANALYTICS_DATABASE_URL}}
- functions: !include 'default/functions/functions.yaml'
  tables: !include "./default/tables/../tables/tables.yaml"
  configuration:
    connection_info:
        use_prepared_statements: true
        pool_settings: {retries: 1, max_connections: 50, idle_timeout: 180, connection_lifetime: 600}
        isolation_level: "read-committed"
        database_url: {from_env: 'HASURA_GRAPHQL_DATABASE_URL'}
  kind: postgres
  name: default
"#,
            ),
            (
                "databases/default/tables/tables.yaml",
                "[!include public_order_items.yaml, \"!include public_users.yaml\", !include public_orders.yaml]\n",
            ),
            (
                "databases/default/tables/public_users.yaml",
                r#"select_permissions:
- permission:
    filter: {id: {_eq: X-Hasura-User-Id}}
    columns: [id, email]
  role: user
array_relationships:
- using: {foreign_key_constraint_on: {table: {schema: public, name: orders}, column: user_id}}
  name: orders
table: {schema: public, name: users}
"#,
            ),
            (
                "cron_triggers.yaml",
                "- {name: nightly_cleanup, webhook: \"{{CLEANUP_URL}}\", schedule: \"0 3 * * *\", \
                 include_in_metadata: true, payload: {}, retry_conf: {num_retries: 1, \
                 retry_interval_seconds: 10, timeout_seconds: 60, tolerance_seconds: 21600}}\n",
            ),
            ("network.yaml", ""),
            ("remote_schemas.yaml", "# none\n"),
        ]);
        let b = build(&reformatted).unwrap();
        assert_ne!(a, b, "the raw snapshots differ in list order");
        assert_eq!(snapshot_sha256(&a), snapshot_sha256(&b));

        // A real change does change the hash.
        let changed = project_with(&[(
            "databases/default/tables/public_order_items.yaml",
            "table: {schema: public, name: order_items}\n",
        )]);
        let c = build(&changed).unwrap();
        assert_ne!(snapshot_sha256(&a), snapshot_sha256(&c));
    }

    #[test]
    fn reads_only_through_the_reader_and_names_the_root_folder() {
        // dir "" (metadata at the repository root) and a trailing slash both give clean paths.
        let files = reader(&[(
            "databases/databases.yaml",
            "- name: d\n  tables: !include /x\n",
        )]);
        let e = build_v3_snapshot(&files, "", AT).unwrap_err();
        let (chain, _, message) = include_parts(e);
        assert_eq!(chain, ["databases/databases.yaml"]);
        assert!(message.contains("(the repository root)"), "{message}");
        let e = build_v3_snapshot(&files, "meta/", AT).unwrap_err();
        let (chain, _, _) = include_parts(e);
        assert_eq!(chain, ["meta/databases/databases.yaml"]);
    }
}
