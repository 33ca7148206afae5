//! Random config v3 metadata folders for tests: includes in both spellings at any depth, shared
//! files, anchors and aliases, `<<` merge keys (chained too), other tags, keys that are not
//! strings and, on request, errors (missing includes, syntax errors, repeated keys, bad include
//! values).

use std::collections::{BTreeMap, HashSet};

use git2::{ObjectType, Oid};

use super::v3::MetadataReader;
use super::MetadataError;

/// A small deterministic random number generator.
pub(super) struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

struct Gen<'r> {
    r: &'r mut Lcg,
    anchors: Vec<String>,
    next_anchor: usize,
    /// Paths (relative to the including file's folder) that may be included.
    targets: Vec<String>,
    merges: bool,
    errors: bool,
    plain: bool,
}

impl Gen<'_> {
    fn scalar(&mut self) -> String {
        match self.r.below(12) {
            0 => format!("{}", self.r.below(100)),
            1 => "true".into(),
            2 => "null".into(),
            3 => format!("\"s{}\"", self.r.below(5)),
            4 if !self.plain => format!("!custom {}", self.r.below(3)),
            5 | 6 if !self.targets.is_empty() => {
                let t = self.targets[self.r.below(self.targets.len() as u64) as usize].clone();
                if self.r.chance(50) {
                    format!("\"!include {t}\"")
                } else {
                    format!("!include {t}")
                }
            }
            7 if self.errors && self.r.chance(10) => "!include {a: 1}".into(),
            8 if self.errors && self.r.chance(5) => "[unclosed".into(),
            _ => format!("w{}", self.r.below(4)),
        }
    }

    fn value(&mut self, depth: usize) -> String {
        if depth == 0 || self.r.chance(35) {
            if !self.anchors.is_empty() && self.r.chance(10) {
                let a = self.anchors[self.r.below(self.anchors.len() as u64) as usize].clone();
                return format!("*{a}");
            }
            return self.scalar();
        }
        if self.r.chance(50) {
            self.mapping(depth)
        } else {
            let n = self.r.below(4);
            let items: Vec<String> = (0..n).map(|_| self.value(depth - 1)).collect();
            format!("[{}]", items.join(", "))
        }
    }

    fn mapping(&mut self, depth: usize) -> String {
        let keys = [
            "a", "b", "name", "columns", "filter", "role", "x", "1", "comment",
        ];
        let n = self.r.below(4);
        let mut used = HashSet::new();
        let mut parts = Vec::new();
        for _ in 0..n {
            let mut k = keys[self.r.below(keys.len() as u64) as usize].to_string();
            if self.errors && self.r.chance(2) {
                k = "a".into(); // maybe a duplicate key
            } else if !used.insert(k.clone()) {
                continue;
            }
            parts.push(format!("{k}: {}", self.value(depth.saturating_sub(1))));
        }
        if self.merges && self.r.chance(25) && !used.contains("<<") {
            let v = if !self.anchors.is_empty() && self.r.chance(60) {
                let a = self.anchors[self.r.below(self.anchors.len() as u64) as usize].clone();
                format!("*{a}")
            } else if !self.targets.is_empty() && self.r.chance(40) {
                format!(
                    "!include {}",
                    self.targets[self.r.below(self.targets.len() as u64) as usize]
                )
            } else {
                self.mapping(depth.saturating_sub(1))
            };
            parts.push(format!("<<: {v}"));
        }
        let body = format!("{{{}}}", parts.join(", "));
        if self.r.chance(20) {
            let a = format!("an{}", self.next_anchor);
            self.next_anchor += 1;
            self.anchors.push(a.clone());
            format!("&{a} {body}")
        } else {
            body
        }
    }
}

fn table_file(r: &mut Lcg, name: &str, targets: &[String], merges: bool, errors: bool) -> String {
    let plain = r.chance(60);
    let mut g = Gen {
        r,
        anchors: vec![],
        next_anchor: 0,
        targets: if plain { vec![] } else { targets.to_vec() },
        merges: merges && !plain,
        errors: errors && !plain,
        plain,
    };
    let perm = g.value(2);
    let perm2 = g.value(2);
    let extra = g.value(3);
    let cols = if g.r.chance(50) { "[id, b]" } else { "[id]" };
    format!(
        "{{table: {{schema: public, name: {name}}}, select_permissions: [{{role: user, permission: {{columns: {cols}, filter: {perm}}}}}, {{role: r{}, permission: {perm2}}}], extra: {extra}}}\n",
        g.r.below(3)
    )
}

/// A random config v3 metadata folder (paths relative to it). `merges`: use `<<` merge keys;
/// `errors`: sometimes make it fail to build.
pub(super) fn folder(r: &mut Lcg, merges: bool, errors: bool) -> BTreeMap<String, Vec<u8>> {
    let mut f = BTreeMap::new();
    let n_shared = 3;
    for i in 0..n_shared {
        let mut g = Gen {
            r,
            anchors: vec![],
            next_anchor: 0,
            targets: if i > 0 {
                vec![format!("s{}.yaml", i - 1)]
            } else {
                vec![]
            },
            merges,
            errors,
            plain: false,
        };
        let v = g.mapping(3);
        f.insert(format!("shared/s{i}.yaml"), v.into_bytes());
    }
    let shared_targets: Vec<String> = (0..n_shared)
        .map(|i| format!("../../../shared/s{i}.yaml"))
        .collect();
    let mut sources = Vec::new();
    for (si, src) in ["default", "other"].iter().enumerate() {
        if si == 1 && r.chance(50) {
            continue;
        }
        let n = 2 + r.below(5);
        let mut list = Vec::new();
        for t in 0..n {
            let name = format!("t{si}_{t}");
            let file = format!("public_{name}.yaml");
            if r.chance(80) {
                let body = table_file(r, &name, &shared_targets, merges, errors);
                f.insert(format!("databases/{src}/tables/{file}"), body.into_bytes());
                list.push(format!("- \"!include {file}\"\n"));
            } else if r.chance(50) {
                list.push(format!("- {{table: {{schema: public, name: {name}}}}}\n"));
            } else if errors {
                list.push(format!("- \"!include missing_{name}.yaml\"\n"));
            }
        }
        f.insert(
            format!("databases/{src}/tables/tables.yaml"),
            list.concat().into_bytes(),
        );
        let config = if r.chance(30) {
            "!include ../shared/s0.yaml".to_string()
        } else {
            "{connection_info: {database_url: {from_env: DB}}}".to_string()
        };
        let merge = if merges && r.chance(30) {
            "  <<: {customization: {x: 1}}\n"
        } else {
            ""
        };
        sources.push(format!(
            "- name: {src}\n  kind: postgres\n  configuration: {config}\n{merge}  tables: \"!include {src}/tables/tables.yaml\"\n"
        ));
    }
    f.insert(
        "databases/databases.yaml".into(),
        sources.concat().into_bytes(),
    );
    f.insert("version.yaml".into(), b"version: 3\n".to_vec());
    if r.chance(50) {
        f.insert(
            "cron_triggers.yaml".into(),
            b"- name: c\n  schedule: '* * * * *'\n  payload: !include shared/s1.yaml\n".to_vec(),
        );
    }
    f
}

/// A reader over a map that knows content ids (git blob ids of the bytes).
pub(super) struct Ids<'m>(pub &'m BTreeMap<String, Vec<u8>>);
impl MetadataReader for Ids<'_> {
    fn read(&self, rel_path: &str) -> Result<Option<Vec<u8>>, MetadataError> {
        Ok(self.0.get(rel_path).cloned())
    }
    fn content_id(&self, rel_path: &str) -> Option<Oid> {
        self.0
            .get(rel_path)
            .map(|b| Oid::hash_object(ObjectType::Blob, b).unwrap())
    }
}

/// The blob ids of a folder's files.
pub(super) fn ids(m: &BTreeMap<String, Vec<u8>>) -> HashSet<Oid> {
    m.values()
        .map(|b| Oid::hash_object(ObjectType::Blob, b).unwrap())
        .collect()
}
