//! Hasura metadata: building the snapshot from a project's metadata folder, normalising it,
//! hashing it and describing how two snapshots differ.

mod build;
pub mod consistency;
mod diff;
pub mod export;
pub mod git;
mod parsed;
#[cfg(test)]
mod random_folders;
pub mod same_blob;
pub mod sdl;
pub mod v3;

pub use build::{build_snapshot, lfs_pointer_error, MetadataError, MetadataFiles, V2_FILE_NAMES};
pub use diff::{describe_changes, unified, MetadataChange};

use crate::checksum::sha256_hex;
use serde_json::Value;

/// The identity key of an element of an identity-keyed list, if it has one.
fn identity(list_key: &str, item: &Value) -> Option<String> {
    let qualified = |v: &Value| -> Option<String> {
        match v {
            Value::Object(o) => Some(format!(
                "{}.{}",
                o.get("schema").and_then(Value::as_str).unwrap_or("public"),
                o.get("name").and_then(Value::as_str)?
            )),
            Value::String(s) => Some(format!("public.{s}")),
            _ => None,
        }
    };
    match list_key {
        "tables" => qualified(item.get("table")?),
        "functions" => qualified(item.get("function")?),
        "insert_permissions" | "select_permissions" | "update_permissions"
        | "delete_permissions" | "permissions" => item.get("role")?.as_str().map(str::to_string),
        "allowlist" => item.get("collection")?.as_str().map(str::to_string),
        "sources"
        | "object_relationships"
        | "array_relationships"
        | "event_triggers"
        | "computed_fields"
        | "remote_relationships"
        | "actions"
        | "remote_schemas"
        | "cron_triggers"
        | "query_collections"
        | "rest_endpoints"
        | "inherited_roles" => item
            .get("name")
            .or_else(|| item.get("role_name"))?
            .as_str()
            .map(str::to_string),
        _ => None,
    }
}

/// Whether the elements of a list under this key are identified by [`identity`] (such lists are
/// compared as sets).
fn is_identity_list(list_key: &str) -> bool {
    matches!(
        list_key,
        "tables"
            | "functions"
            | "insert_permissions"
            | "select_permissions"
            | "update_permissions"
            | "delete_permissions"
            | "permissions"
            | "allowlist"
            | "sources"
            | "object_relationships"
            | "array_relationships"
            | "event_triggers"
            | "computed_fields"
            | "remote_relationships"
            | "actions"
            | "remote_schemas"
            | "cron_triggers"
            | "query_collections"
            | "rest_endpoints"
            | "inherited_roles"
    )
}

/// Normalises a snapshot for comparison: keys sorted (serde_json's map is ordered) and
/// identity-keyed lists sorted by identity, recursively, so order and YAML formatting never
/// count as a change.
pub(crate) fn normalize(value: &Value) -> Value {
    fn empty(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        }
    }
    fn go(key: &str, v: &Value) -> Value {
        match v {
            // Absent, null, [] and {} say the same thing in Hasura metadata: drop them, so that
            // `functions: []` and no `functions` key hash alike.
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), go(k, v)))
                    .filter(|(_, v)| !empty(v))
                    .collect(),
            ),
            Value::Array(items) => {
                let mut out: Vec<Value> = items.iter().map(|i| go("", i)).collect();
                if !out.is_empty() && out.iter().all(|i| identity(key, i).is_some()) {
                    out.sort_by_key(|i| identity(key, i));
                } else if key == "columns" && out.iter().all(Value::is_string) {
                    // Column lists are sets.
                    out.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                }
                Value::Array(out)
            }
            other => other.clone(),
        }
    }
    go("", value)
}

/// Canonical hash of a snapshot: sha256 of the normalised JSON.
pub(crate) fn snapshot_sha256(value: &Value) -> String {
    let canonical = serde_json::to_vec(&normalize(value)).expect("JSON values always serialise");
    sha256_hex(&canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn order_of_identity_lists_does_not_matter() {
        let a = json!({"version": 2, "tables": [
            {"table": {"schema": "public", "name": "b"}, "select_permissions": [{"role": "x"}, {"role": "a"}]},
            {"table": {"schema": "public", "name": "a"}}
        ]});
        let b = json!({"tables": [
            {"table": {"name": "a", "schema": "public"}},
            {"select_permissions": [{"role": "a"}, {"role": "x"}], "table": {"schema": "public", "name": "b"}}
        ], "version": 2});
        assert_eq!(snapshot_sha256(&a), snapshot_sha256(&b));
        let c = json!({"version": 2, "tables": [{"table": {"schema": "public", "name": "a"}}]});
        assert_ne!(snapshot_sha256(&a), snapshot_sha256(&c));
    }

    #[test]
    fn empty_values_and_column_order_do_not_count() {
        let a = json!({"version": 2, "functions": [], "tables": [{"table": {"schema": "public", "name": "a"},
            "select_permissions": [{"role": "u", "permission": {"columns": ["b", "a"], "filter": {}}}]}]});
        let b = json!({"version": 2, "network": {}, "tables": [{"table": {"schema": "public", "name": "a"},
            "select_permissions": [{"role": "u", "permission": {"columns": ["a", "b"]}}]}]});
        assert_eq!(snapshot_sha256(&a), snapshot_sha256(&b));
    }

    #[test]
    fn identity_lists_are_the_keys_identity_knows() {
        let item = serde_json::json!({"table": "t", "function": "f", "role": "r",
            "collection": "c", "name": "n"});
        for key in [
            "tables",
            "functions",
            "insert_permissions",
            "select_permissions",
            "update_permissions",
            "delete_permissions",
            "permissions",
            "allowlist",
            "sources",
            "object_relationships",
            "array_relationships",
            "event_triggers",
            "computed_fields",
            "remote_relationships",
            "actions",
            "remote_schemas",
            "cron_triggers",
            "query_collections",
            "rest_endpoints",
            "inherited_roles",
        ] {
            assert!(is_identity_list(key), "{key}");
            assert!(identity(key, &item).is_some(), "{key}");
        }
        for key in ["columns", "objects", "queries", "", "fields"] {
            assert!(!is_identity_list(key), "{key}");
            assert!(identity(key, &item).is_none(), "{key}");
        }
    }

    #[test]
    fn sha_format() {
        assert_eq!(
            sha256_hex(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
