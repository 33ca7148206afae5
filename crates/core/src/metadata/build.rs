//! Building the metadata snapshot (Hasura export shape) from a config v2 metadata folder.

use serde_json::{Map, Value};

/// Errors building a snapshot. Every message names the file and the commit.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// YAML syntax error.
    #[error("{path}:{line}:{column} @ {at}: {message}")]
    Syntax {
        /// File path in the repository.
        path: String,
        /// Commit or source.
        at: String,
        /// 1-based line (0 = unknown).
        line: usize,
        /// 1-based column.
        column: usize,
        /// Parser message.
        message: String,
    },
    /// Not UTF-8.
    #[error("{path} @ {at} is not valid UTF-8 text")]
    Encoding {
        /// File path in the repository.
        path: String,
        /// Commit or source.
        at: String,
    },
    /// Right syntax, wrong shape.
    #[error("{path} @ {at}: {message}")]
    Shape {
        /// File path in the repository.
        path: String,
        /// Commit or source.
        at: String,
        /// What is wrong.
        message: String,
    },
    /// A config v3 `!include` that cannot be followed: its target is missing, it forms a cycle,
    /// it leaves the metadata folder, it has no usable path, or includes nest too deeply.
    #[error("{} @ {at}: {message}", chain.join(" → "))]
    Include {
        /// The files from the root file (e.g. `…/databases/databases.yaml`) down to the one holding
        /// the offending include (for a cycle: down to the file that is included again), as
        /// repository paths.
        chain: Vec<String>,
        /// Commit or source.
        at: String,
        /// What is wrong, naming the include path as written.
        message: String,
    },
    /// A config v3 metadata layout (databases/databases.yaml): the v2 builder hands it over to
    /// the v3 one (`gather::target_snapshot` does).
    #[error("{path} @ {at}: this is a config v3 metadata folder; build it with metadata::v3::build_v3_snapshot")]
    Unsupported {
        /// File path.
        path: String,
        /// Commit or source.
        at: String,
    },
}

/// The files of a metadata folder, as `(file name, bytes)` read by the caller.
pub struct MetadataFiles {
    /// Metadata folder relative to the repository root (for messages).
    pub dir: String,
    /// Commit or source (for messages).
    pub at: String,
    /// Files present, by name.
    pub files: Vec<(String, Vec<u8>)>,
}

/// (file, JSON key, empty value) for config v2 files. `actions.yaml` is special.
/// (file, JSON key, empty value).
type FileSpec = (&'static str, &'static str, fn() -> Value);

const V2_FILES: &[FileSpec] = &[
    ("tables.yaml", "tables", || Value::Array(vec![])),
    ("functions.yaml", "functions", || Value::Array(vec![])),
    ("remote_schemas.yaml", "remote_schemas", || {
        Value::Array(vec![])
    }),
    ("query_collections.yaml", "query_collections", || {
        Value::Array(vec![])
    }),
    ("allow_list.yaml", "allowlist", || Value::Array(vec![])),
    ("cron_triggers.yaml", "cron_triggers", || {
        Value::Array(vec![])
    }),
    ("network.yaml", "network", || Value::Object(Map::new())),
];

/// Which files `build_snapshot` reads (so the caller reads nothing else).
pub const V2_FILE_NAMES: &[&str] = &[
    "version.yaml",
    "tables.yaml",
    "functions.yaml",
    "remote_schemas.yaml",
    "query_collections.yaml",
    "allow_list.yaml",
    "actions.yaml",
    "actions.graphql",
    "cron_triggers.yaml",
    "network.yaml",
    "databases",
];

/// The error for a metadata file that is a Git LFS pointer.
pub fn lfs_pointer_error(path: &str, at: &str) -> MetadataError {
    MetadataError::Shape {
        path: path.to_string(),
        at: at.to_string(),
        message: "this is a Git LFS pointer file, not the metadata it stands for: git-migrate \
                  reads git objects and never fetches LFS content; keep metadata out of Git LFS \
                  (git lfs untrack <pattern>, git add --renormalize .)"
            .into(),
    }
}

fn parse_yaml(path: &str, at: &str, bytes: &[u8]) -> Result<Value, MetadataError> {
    if crate::source::is_lfs_pointer(bytes) {
        return Err(lfs_pointer_error(path, at));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| MetadataError::Encoding {
        path: path.to_string(),
        at: at.to_string(),
    })?;
    // A key written twice keeps its later value, with a warning (crate::yaml).
    let crate::yaml::Lenient {
        value: mut v,
        duplicates,
    } = crate::yaml::parse(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        MetadataError::Syntax {
            path: path.to_string(),
            at: at.to_string(),
            line,
            column,
            message: e.to_string(),
        }
    })?;
    for d in &duplicates {
        crate::yaml::warn(d.warning(path, at));
    }
    // Config v2 has no includes: a `!include` here would become table data (`{"!include": …}`)
    // or a string where a table belongs. Most likely a config v3 folder read as v2.
    if let Some(written) = find_include(&v) {
        return Err(MetadataError::Shape {
            path: path.to_string(),
            at: at.to_string(),
            message: format!(
                "`!include {written}`: includes are only read in config v3 metadata folders \
                 (`version: 3` in config.yaml and metadata/version.yaml); this project is config v2"
            ),
        });
    }
    // Go's yaml.v3 (and so the Hasura CLI) applies `<<` merge keys.
    v.apply_merge().map_err(|e| MetadataError::Shape {
        path: path.to_string(),
        at: at.to_string(),
        message: e.to_string(),
    })?;
    serde_json::to_value(&v).map_err(|e| MetadataError::Shape {
        path: path.to_string(),
        at: at.to_string(),
        message: e.to_string(),
    })
}

/// The path of the first include (`!include path` or `"!include path"`) in a YAML value.
fn find_include(v: &yaml_serde::Value) -> Option<String> {
    use yaml_serde::Value as Y;
    match v {
        Y::Tagged(t) if t.tag == "include" => Some(match &t.value {
            Y::String(s) => s.clone(),
            _ => String::new(),
        }),
        Y::Tagged(t) => find_include(&t.value),
        Y::String(s) => super::parsed::string_include(s).map(str::to_string),
        Y::Sequence(items) => items.iter().find_map(find_include),
        Y::Mapping(m) => m.iter().find_map(|(_, v)| find_include(v)),
        Y::Null | Y::Bool(_) | Y::Number(_) => None,
    }
}

/// Builds the snapshot `{"version":2,"tables":[…],…}` from config v2 files.
/// A missing file is an empty list or mapping.
pub fn build_snapshot(input: &MetadataFiles) -> Result<Value, MetadataError> {
    let get = |name: &str| {
        input
            .files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    };
    let path = |name: &str| format!("{}/{}", input.dir, name);
    if get("databases").is_some() {
        return Err(MetadataError::Unsupported {
            path: path("databases/databases.yaml"),
            at: input.at.clone(),
        });
    }
    let mut out = Map::new();
    let version = match get("version.yaml") {
        Some(b) => {
            match parse_yaml(&path("version.yaml"), &input.at, b)?
                .get("version")
                .cloned()
            {
                Some(v) => v,
                None => Value::from(2),
            }
        }
        None => Value::from(2),
    };
    if version.as_i64() == Some(3) {
        return Err(MetadataError::Unsupported {
            path: path("version.yaml"),
            at: input.at.clone(),
        });
    }
    out.insert("version".into(), version);
    for (file, key, empty) in V2_FILES {
        let value = match get(file) {
            Some(b) => match parse_yaml(&path(file), &input.at, b)? {
                Value::Null => empty(),
                v => v,
            },
            None => empty(),
        };
        let expected_list = matches!(empty(), Value::Array(_));
        if expected_list && !value.is_array() || !expected_list && !value.is_object() {
            return Err(MetadataError::Shape {
                path: path(file),
                at: input.at.clone(),
                message: format!(
                    "expected a {} at the top level",
                    if expected_list { "list" } else { "mapping" }
                ),
            });
        }
        out.insert((*key).into(), value);
    }
    let actions = match get("actions.yaml") {
        Some(b) => parse_yaml(&path("actions.yaml"), &input.at, b)?,
        None => Value::Null,
    };
    let (actions_list, custom_types) = match actions {
        Value::Null => (Value::Array(vec![]), Value::Object(Map::new())),
        Value::Object(mut o) => (
            o.remove("actions")
                .filter(|v| !v.is_null())
                .unwrap_or(Value::Array(vec![])),
            o.remove("custom_types")
                .filter(|v| !v.is_null())
                .unwrap_or(Value::Object(Map::new())),
        ),
        _ => {
            return Err(MetadataError::Shape {
                path: path("actions.yaml"),
                at: input.at.clone(),
                message: "expected a mapping with `actions` and `custom_types`".into(),
            })
        }
    };
    out.insert("actions".into(), actions_list);
    out.insert("custom_types".into(), custom_types);
    if let Some(b) = get("actions.graphql") {
        let sdl = std::str::from_utf8(b).map_err(|_| MetadataError::Encoding {
            path: path("actions.graphql"),
            at: input.at.clone(),
        })?;
        if !sdl.trim().is_empty() {
            out.insert("actions_graphql".into(), Value::String(sdl.to_string()));
        }
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> MetadataFiles {
        MetadataFiles {
            dir: "hasura/metadata".into(),
            at: "abc1234".into(),
            files: list
                .iter()
                .map(|(n, b)| (n.to_string(), b.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn builds_v2_snapshot_with_defaults() {
        let s = build_snapshot(&files(&[
            ("version.yaml", "version: 2\n"),
            (
                "tables.yaml",
                "- table:\n    schema: public\n    name: users\n",
            ),
            ("allow_list.yaml", "[]\n"),
            ("actions.yaml", "actions: []\ncustom_types:\n  enums: []\n"),
        ]))
        .unwrap();
        assert_eq!(s["version"], 2);
        assert_eq!(s["tables"][0]["table"]["name"], "users");
        assert_eq!(s["allowlist"], serde_json::json!([]));
        assert_eq!(s["functions"], serde_json::json!([]));
        assert_eq!(s["custom_types"]["enums"], serde_json::json!([]));
        assert_eq!(s["network"], serde_json::json!({}));
    }

    #[test]
    fn reindentation_is_not_a_change() {
        let a = build_snapshot(&files(&[(
            "tables.yaml",
            "- table:\n    schema: public\n    name: users\n",
        )]))
        .unwrap();
        let b = build_snapshot(&files(&[(
            "tables.yaml",
            "-   table: {name: users, schema: public}\n",
        )]))
        .unwrap();
        assert_eq!(
            super::super::snapshot_sha256(&a),
            super::super::snapshot_sha256(&b)
        );
    }

    #[test]
    fn syntax_error_names_file_line_and_commit() {
        let e = build_snapshot(&files(&[("tables.yaml", "- table:\n  - : [\n")])).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("hasura/metadata/tables.yaml:"), "{s}");
        assert!(s.contains("@ abc1234"), "{s}");
        let e = build_snapshot(&files(&[("tables.yaml", "a: 1\n")])).unwrap_err();
        assert!(e.to_string().contains("expected a list"), "{e}");
    }

    #[test]
    fn merge_keys_are_applied() {
        let s = build_snapshot(&files(&[(
            "tables.yaml",
            "- table: &t {schema: public, name: a}\n- table:\n    <<: *t\n    name: b\n",
        )]))
        .unwrap();
        assert_eq!(s["tables"][1]["table"]["schema"], "public");
        assert_eq!(s["tables"][1]["table"]["name"], "b");
    }
}
