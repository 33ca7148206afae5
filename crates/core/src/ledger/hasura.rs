//! Hasura's catalog (`hdb_catalog.hdb_metadata` and friends), kept in step with deployments.
//!
//! Hasura server v2 keeps its whole metadata as one JSON document (metadata version 3) in row 1
//! of `hdb_catalog.hdb_metadata`, next to an integer `resource_version` that every write bumps.
//! Running instances poll `hdb_catalog.hdb_schema_notifications` for a `resource_version`
//! greater than the one they loaded, written by an `instance_id` other than their own, and then
//! reload (hasura-cli.md §4; the server's `setMetadataInCatalog` and `notifySchemaCacheSyncTx`).
//!
//! [`write_metadata`] does what the server does when it stores metadata, inside the caller's
//! transaction, so the catalog changes together with the deployment or not at all:
//!
//! 1. `SELECT metadata FROM hdb_catalog.hdb_metadata WHERE id = 1 FOR UPDATE` (the live
//!    document, locked against concurrent writers until the caller's transaction ends);
//! 2. [`to_server_shape`] converts the snapshot using the live document;
//! 3. one statement upserts `hdb_metadata` row 1 (`resource_version + 1`, or the column default
//!    1 for a new row) and, in a data-modifying CTE, row 1 of `hdb_schema_notifications` with the
//!    new `resource_version`, [`INSTANCE_ID`] and `updated_at = now()`.
//!
//! Two round trips, every value a bound parameter.
//!
//! The notification ([`NOTIFICATION`] shape, the server's `CacheInvalidations`) asks instances
//! to do what `reload_metadata` with `reload_sources: true` does: `"metadata": true` and every
//! source of the stored metadata in `"sources"`. A deployment runs DDL straight against
//! Postgres, not through the server's `run_sql`, so instances must re-introspect the databases
//! (new columns, enum table values) and not only re-read the metadata document.

use postgres::types::{FromSql, Type};
use postgres::GenericClient;
use serde_json::{json, Map, Value};

/// The `instance_id` git-migrate writes into `hdb_schema_notifications`: the nil UUID.
///
/// Instances reload on a notification whose `instance_id` differs from their own, and Hasura
/// instance ids are random (version 4) UUIDs, so every instance reloads. A fixed value needs no
/// `gen_random_uuid()` (built in only from PostgreSQL 13) and shows who wrote the row.
pub const INSTANCE_ID: &str = "00000000-0000-0000-0000-000000000000";

/// The shape of the notification written into `hdb_schema_notifications.notification`: the
/// server's `CacheInvalidations` (`ciMetadata`, `ciRemoteSchemas`, `ciSources`,
/// `ciDataConnectors` with the `ci` prefix dropped and snake_case keys). Older servers ignore
/// `data_connectors`; newer ones require it. [`write_metadata`] fills `metadata` with `true` and
/// `sources` with the names of all stored sources.
pub(crate) const NOTIFICATION: &str =
    r#"{"metadata":false,"remote_schemas":[],"sources":[],"data_connectors":[]}"#;

/// The source name a metadata version 2 project's `tables` and `functions` belong to.
pub(crate) const DEFAULT_SOURCE: &str = "default";

/// The environment variable named by the configuration [`to_server_shape`] gives a new
/// `default` source (the one the server itself records when it starts with
/// `HASURA_GRAPHQL_DATABASE_URL` and empty metadata).
pub(crate) const DEFAULT_DATABASE_URL_ENV: &str = "HASURA_GRAPHQL_DATABASE_URL";

/// Our own snapshot key holding `actions.graphql` (SDL text); the server does not store it.
const ACTIONS_GRAPHQL: &str = "actions_graphql";

/// Whether `hdb_catalog.hdb_metadata` exists in this database (read from pg_catalog directly,
/// not via to_regclass, so a stale catalog cache cannot hide it).
///
/// Looks for an ordinary or partitioned table named `hdb_metadata` in schema `hdb_catalog`;
/// sees tables created earlier in the caller's own transaction. One round trip.
pub fn catalog_exists(client: &mut impl GenericClient) -> Result<bool, postgres::Error> {
    let row = client.query_typed_one(
        "SELECT EXISTS (
             SELECT 1
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'hdb_catalog'
                AND c.relname = 'hdb_metadata'
                AND c.relkind IN ('r', 'p'))",
        &[],
    )?;
    row.try_get(0)
}

/// The metadata Hasura's server has (row id 1), with its resource_version; None when the table
/// is empty (or has no row 1).
///
/// The document is returned as stored (normally metadata version 3). A stored document that
/// `serde_json` cannot represent (a number out of `f64` range, a lone UTF-16 surrogate escape)
/// is reported as a `postgres::Error` of the "error deserializing column" kind.
pub fn read_metadata(
    client: &mut impl GenericClient,
) -> Result<Option<(Value, i32)>, postgres::Error> {
    let row = client.query_typed_opt(
        "SELECT metadata, resource_version FROM hdb_catalog.hdb_metadata WHERE id = 1",
        &[],
    )?;
    match row {
        None => Ok(None),
        Some(row) => {
            let JsonText(metadata) = row.try_get(0)?;
            let version: i32 = row.try_get(1)?;
            Ok(Some((metadata, version)))
        }
    }
}

/// Converts a snapshot to what server v2 stores (metadata version 3), given what is stored now
/// (pure; `live` is the document in `hdb_metadata`, if any).
///
/// **Version 3 snapshot** (`"version": 3` or a `sources` key; config v3 projects): returned as
/// is, with `version` set to 3. The snapshot's own source `configuration` and `kind` are kept:
/// they are in git (`databases/databases.yaml`), usually as `from_env` references. Only a
/// source *without* `configuration` (or `kind`) takes it from the live source of the same name;
/// a source without `kind` and no live counterpart gets `"postgres"`. Apart from API-only cron
/// triggers (below), nothing else is taken from `live`: the project describes the whole
/// metadata.
///
/// **Version 1/2 snapshot** (anything else; config v2 projects): the snapshot's `tables` and
/// `functions` (empty lists when missing) replace those of the live source named `default`,
/// which keeps its `kind`, `configuration` and every other key (`customization`, …); connection
/// settings are never overwritten. Other live sources are kept untouched (a version 2 project
/// cannot describe them; the server's `replace_metadata` would drop them). Every other
/// top-level key of the snapshot (`remote_schemas`, `query_collections`, `allowlist`,
/// `actions`, `custom_types`, `cron_triggers`, `network`, …) replaces the live one; live
/// top-level keys the snapshot does not have (`rest_endpoints`, `inherited_roles`,
/// `api_limits`, …, which a version 2 project cannot express) are kept. When `live` has no
/// `default` source, a new one is added first with kind `postgres` and the configuration
/// `{"connection_info":{"database_url":{"from_env":"HASURA_GRAPHQL_DATABASE_URL"},
/// "isolation_level":"read-committed"}}` (modelled on what the server records when it starts
/// with that variable and empty metadata; pool settings are left to the server's defaults),
/// since the server cannot load a Postgres source without a configuration.
///
/// **Both:** our `actions_graphql` key (the SDL text of `actions.graphql`) is dropped, since the
/// server does not store it. Nothing here converts that SDL into the action `arguments` /
/// `output_type` and the custom type `fields` the server expects: actions and custom types are
/// stored exactly as the snapshot has them. As the server's `replace_metadata` does, live cron triggers with
/// `"include_in_metadata": false` (created through the API, never exported) are kept unless the
/// snapshot has a cron trigger of the same name. A snapshot that is not a JSON object counts as
/// an empty version 2 snapshot.
pub fn to_server_shape(snapshot: &Value, live: Option<&Value>) -> Value {
    let empty = Map::new();
    let snap = snapshot.as_object().unwrap_or(&empty);
    let live = live.and_then(Value::as_object);
    let live_sources: &[Value] = live
        .and_then(|l| l.get("sources"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let is_v3 =
        snap.get("version").and_then(Value::as_i64) == Some(3) || snap.contains_key("sources");

    let mut out = if is_v3 {
        v3_shape(snap, live_sources)
    } else {
        v2_shape(snap, live, live_sources)
    };
    out.remove(ACTIONS_GRAPHQL);
    out.insert("version".into(), Value::from(3));
    keep_api_cron_triggers(&mut out, live);
    Value::Object(out)
}

/// A version 3 snapshot: as is, filling only a missing source `configuration` / `kind`.
fn v3_shape(snap: &Map<String, Value>, live_sources: &[Value]) -> Map<String, Value> {
    let mut out = snap.clone();
    if let Some(Value::Array(sources)) = out.get_mut("sources") {
        for source in sources.iter_mut().filter_map(Value::as_object_mut) {
            let live_source = source
                .get("name")
                .and_then(Value::as_str)
                .and_then(|name| find_source(live_sources, name));
            let missing = |s: &Map<String, Value>, key: &str| s.get(key).is_none_or(Value::is_null);
            if missing(source, "configuration") {
                if let Some(c) = live_source.and_then(|l| l.get("configuration")) {
                    source.insert("configuration".into(), c.clone());
                }
            }
            if missing(source, "kind") {
                let kind = live_source
                    .and_then(|l| l.get("kind"))
                    .cloned()
                    .unwrap_or_else(|| Value::from("postgres"));
                source.insert("kind".into(), kind);
            }
        }
    }
    out
}

/// A version 1/2 snapshot: tables and functions into the live `default` source.
fn v2_shape(
    snap: &Map<String, Value>,
    live: Option<&Map<String, Value>>,
    live_sources: &[Value],
) -> Map<String, Value> {
    let mut out: Map<String, Value> = live
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != "sources")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in snap {
        if !matches!(k.as_str(), "version" | "tables" | "functions" | "sources") {
            out.insert(k.clone(), v.clone());
        }
    }
    let mut sources: Vec<Value> = live_sources.to_vec();
    let position = sources
        .iter()
        .position(|s| source_name(s) == Some(DEFAULT_SOURCE));
    let mut default = match position.map(|i| &sources[i]) {
        Some(Value::Object(o)) => o.clone(),
        _ => {
            let mut o = Map::new();
            o.insert("name".into(), Value::from(DEFAULT_SOURCE));
            o.insert("kind".into(), Value::from("postgres"));
            o.insert(
                "configuration".into(),
                json!({"connection_info": {
                    "database_url": {"from_env": DEFAULT_DATABASE_URL_ENV},
                    "isolation_level": "read-committed",
                }}),
            );
            o
        }
    };
    for key in ["tables", "functions"] {
        let value = snap
            .get(key)
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or_else(|| Value::Array(vec![]));
        default.insert(key.into(), value);
    }
    match position {
        Some(i) => sources[i] = Value::Object(default),
        None => sources.insert(0, Value::Object(default)),
    }
    out.insert("sources".into(), Value::Array(sources));
    out
}

/// Appends live cron triggers with `include_in_metadata: false` whose name the result lacks.
fn keep_api_cron_triggers(out: &mut Map<String, Value>, live: Option<&Map<String, Value>>) {
    let Some(live_triggers) = live
        .and_then(|l| l.get("cron_triggers"))
        .and_then(Value::as_array)
    else {
        return;
    };
    let api_only: Vec<&Value> = live_triggers
        .iter()
        .filter(|t| t.get("include_in_metadata") == Some(&Value::Bool(false)))
        .collect();
    if api_only.is_empty() {
        return;
    }
    let entry = out
        .entry("cron_triggers")
        .or_insert_with(|| Value::Array(vec![]));
    if entry.is_null() {
        *entry = Value::Array(vec![]);
    }
    let Some(list) = entry.as_array_mut() else {
        return;
    };
    for t in api_only {
        let name = t.get("name");
        if name.is_none() || !list.iter().any(|x| x.get("name") == name) {
            list.push(t.clone());
        }
    }
}

fn source_name(source: &Value) -> Option<&str> {
    source.get("name").and_then(Value::as_str)
}

fn find_source<'a>(sources: &'a [Value], name: &str) -> Option<&'a Value> {
    sources.iter().find(|s| source_name(s) == Some(name))
}

/// The notification for stored metadata `shaped`: reload everything, re-resolve every source.
fn notification(shaped: &Value) -> Value {
    let sources: Vec<Value> = shaped
        .get("sources")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .filter_map(source_name)
        .map(Value::from)
        .collect();
    let mut n: Value = serde_json::from_str(NOTIFICATION).expect("NOTIFICATION is valid JSON");
    n["metadata"] = Value::Bool(true);
    n["sources"] = Value::Array(sources);
    n
}

/// Writes the snapshot into hdb_catalog.hdb_metadata row 1 (insert if missing) in the caller's
/// transaction, bumping resource_version by one, and upserts row 1 of
/// hdb_catalog.hdb_schema_notifications so running instances reload. Returns the new
/// resource_version.
///
/// The snapshot is converted with [`to_server_shape`] against the live row 1, read with
/// `FOR UPDATE` so no other writer can slip in between the read and the write (a Hasura server
/// writing at the same time waits for the caller's transaction). A new row gets the column
/// default `resource_version` 1, as the server's own upsert does. The notification row gets the
/// new `resource_version`, [`INSTANCE_ID`], `updated_at = now()` and a notification asking for
/// a full reload (see the module documentation). Two round trips; requires both tables (a
/// missing `hdb_schema_notifications` fails the statement, and with it the caller's
/// transaction). Call it inside a transaction: on a bare client each statement commits alone
/// and the row lock is released at once.
pub fn write_metadata(
    client: &mut impl GenericClient,
    snapshot: &Value,
) -> Result<i32, postgres::Error> {
    let live = client.query_typed_opt(
        "SELECT metadata FROM hdb_catalog.hdb_metadata WHERE id = 1 FOR UPDATE",
        &[],
    )?;
    let live = match live {
        Some(row) => Some(row.try_get::<_, JsonText>(0)?.0),
        None => None,
    };
    let shaped = to_server_shape(snapshot, live.as_ref());
    let metadata = shaped.to_string();
    let notification = notification(&shaped).to_string();
    // `n` runs although the outer query does not read it: PostgreSQL always runs a
    // data-modifying CTE to completion.
    let row = client.query_typed_one(
        "WITH m AS (
             INSERT INTO hdb_catalog.hdb_metadata (id, metadata)
             VALUES (1, $1::json)
             ON CONFLICT (id) DO UPDATE
                SET metadata = EXCLUDED.metadata,
                    resource_version = hdb_catalog.hdb_metadata.resource_version + 1
             RETURNING resource_version
         ), n AS (
             INSERT INTO hdb_catalog.hdb_schema_notifications
                    (id, notification, resource_version, instance_id, updated_at)
             SELECT 1, $2::json, m.resource_version, $3::uuid, now() FROM m
             ON CONFLICT (id) DO UPDATE
                SET notification = EXCLUDED.notification,
                    resource_version = EXCLUDED.resource_version,
                    instance_id = EXCLUDED.instance_id,
                    updated_at = EXCLUDED.updated_at
         )
         SELECT resource_version FROM m",
        &[
            (&metadata, Type::TEXT),
            (&notification, Type::TEXT),
            (&INSTANCE_ID, Type::TEXT),
        ],
    )?;
    row.try_get(0)
}

/// A `json`/`jsonb`/`text` column parsed with `serde_json`, so a parse failure surfaces as a
/// `postgres::Error` from `Row::try_get`.
struct JsonText(Value);

impl<'a> FromSql<'a> for JsonText {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        // jsonb's binary format is a version byte (1) followed by the text.
        let raw = if *ty == Type::JSONB {
            match raw.split_first() {
                Some((1, rest)) => rest,
                _ => return Err("unsupported jsonb binary format version".into()),
            }
        } else {
            raw
        };
        Ok(JsonText(serde_json::from_slice(raw)?))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSON | Type::JSONB | Type::TEXT | Type::VARCHAR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live_v3() -> Value {
        json!({
            "version": 3,
            "sources": [
                {
                    "name": "default",
                    "kind": "postgres",
                    "tables": [{"table": {"schema": "public", "name": "old"}}],
                    "functions": [{"function": {"schema": "public", "name": "old_fn"}}],
                    "configuration": {"connection_info": {
                        "database_url": {"from_env": "PG_DATABASE_URL"},
                        "pool_settings": {"max_connections": 50, "idle_timeout": 180, "retries": 1}
                    }},
                    "customization": {"root_fields": {"namespace": "app"}}
                },
                {
                    "name": "analytics",
                    "kind": "citus",
                    "tables": [{"table": {"schema": "public", "name": "events"}}],
                    "configuration": {"connection_info": {"database_url": {"from_env": "ANALYTICS_URL"}}}
                }
            ],
            "remote_schemas": [{"name": "old_remote", "definition": {"url": "http://x"}}],
            "rest_endpoints": [{"name": "e", "url": "e", "methods": ["GET"]}],
            "inherited_roles": [{"role_name": "staff", "role_set": ["a", "b"]}],
            "cron_triggers": [
                {"name": "api_only", "webhook": "http://a", "schedule": "* * * * *", "include_in_metadata": false},
                {"name": "exported", "webhook": "http://b", "schedule": "* * * * *", "include_in_metadata": true}
            ]
        })
    }

    fn snapshot_v2() -> Value {
        json!({
            "version": 2,
            "tables": [{"table": {"schema": "public", "name": "orders"}}],
            "functions": [],
            "remote_schemas": [],
            "query_collections": [],
            "allowlist": [],
            "cron_triggers": [],
            "network": {},
            "actions": [{"name": "checkout", "definition": {"handler": "http://h"}}],
            "custom_types": {},
            "actions_graphql": "type Mutation { checkout: Boolean }"
        })
    }

    #[test]
    fn v2_goes_into_the_live_default_source_keeping_its_configuration() {
        let live = live_v3();
        let out = to_server_shape(&snapshot_v2(), Some(&live));
        assert_eq!(out["version"], 3);
        let default = &out["sources"][0];
        assert_eq!(default["name"], "default");
        assert_eq!(default["kind"], "postgres");
        assert_eq!(
            default["configuration"],
            live["sources"][0]["configuration"]
        );
        assert_eq!(
            default["customization"],
            live["sources"][0]["customization"]
        );
        assert_eq!(
            default["tables"],
            json!([{"table": {"schema": "public", "name": "orders"}}])
        );
        assert_eq!(default["functions"], json!([]));
        // Other sources are untouched, in place.
        assert_eq!(out["sources"][1], live["sources"][1]);
        assert_eq!(out["sources"].as_array().unwrap().len(), 2);
        // Keys the snapshot has replace the live ones; keys it cannot express are kept.
        assert_eq!(out["remote_schemas"], json!([]));
        assert_eq!(out["actions"], snapshot_v2()["actions"]);
        assert_eq!(out["rest_endpoints"], live["rest_endpoints"]);
        assert_eq!(out["inherited_roles"], live["inherited_roles"]);
        assert_eq!(out["network"], json!({}));
        // Not stored by the server, and no flat tables/functions at the top level.
        for key in ["actions_graphql", "tables", "functions"] {
            assert!(out.get(key).is_none(), "{key} present: {out}");
        }
        // The API-only cron trigger survives; the exported one follows the snapshot (gone).
        assert_eq!(
            out["cron_triggers"],
            json!([live["cron_triggers"][0].clone()])
        );
    }

    #[test]
    fn v2_without_live_metadata_gets_a_default_source_from_env() {
        let out = to_server_shape(&snapshot_v2(), None);
        assert_eq!(out["version"], 3);
        let sources = out["sources"].as_array().unwrap();
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0]["name"], "default");
        assert_eq!(sources[0]["kind"], "postgres");
        assert_eq!(
            sources[0]["configuration"]["connection_info"]["database_url"],
            json!({"from_env": "HASURA_GRAPHQL_DATABASE_URL"})
        );
        assert_eq!(sources[0]["tables"][0]["table"]["name"], "orders");
        assert!(out.get("actions_graphql").is_none());
        assert_eq!(out["cron_triggers"], json!([]));
    }

    #[test]
    fn v2_with_live_lacking_a_default_source_adds_one_first() {
        let mut live = live_v3();
        live["sources"].as_array_mut().unwrap().remove(0);
        let out = to_server_shape(&snapshot_v2(), Some(&live));
        let sources = out["sources"].as_array().unwrap();
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0]["name"], "default");
        assert_eq!(sources[1]["name"], "analytics");
    }

    #[test]
    fn v2_missing_keys_mean_empty_source_lists_and_live_top_level_keys() {
        let out = to_server_shape(&json!({"version": 2}), Some(&live_v3()));
        assert_eq!(out["sources"][0]["tables"], json!([]));
        assert_eq!(out["sources"][0]["functions"], json!([]));
        // Nothing in the snapshot: the live top-level keys stay.
        assert_eq!(out["remote_schemas"], live_v3()["remote_schemas"]);
        assert_eq!(out["cron_triggers"], live_v3()["cron_triggers"]);
    }

    #[test]
    fn v3_keeps_its_own_configuration() {
        let snap = json!({
            "version": 3,
            "sources": [{
                "name": "default",
                "kind": "postgres",
                "tables": [{"table": {"schema": "public", "name": "orders"}}],
                "configuration": {"connection_info": {"database_url": {"from_env": "GIT_URL"}}}
            }],
            "actions_graphql": "type Query { x: Int }"
        });
        let out = to_server_shape(&snap, Some(&live_v3()));
        let mut expected = snap.clone();
        expected.as_object_mut().unwrap().remove("actions_graphql");
        // Only the API-only cron trigger is added.
        expected["cron_triggers"] = json!([live_v3()["cron_triggers"][0].clone()]);
        assert_eq!(out, expected);
    }

    #[test]
    fn v3_fills_missing_configuration_and_kind_from_the_live_source() {
        let snap = json!({
            "version": 3,
            "sources": [
                {"name": "analytics", "tables": []},
                {"name": "new_db", "tables": [], "configuration": null}
            ]
        });
        let out = to_server_shape(&snap, Some(&live_v3()));
        assert_eq!(out["sources"][0]["kind"], "citus");
        assert_eq!(
            out["sources"][0]["configuration"],
            live_v3()["sources"][1]["configuration"]
        );
        // No live counterpart: kind defaults, no configuration is invented.
        assert_eq!(out["sources"][1]["kind"], "postgres");
        assert_eq!(out["sources"][1]["configuration"], Value::Null);
        // The live `default` source is not added to a v3 project.
        assert_eq!(out["sources"].as_array().unwrap().len(), 2);
        // Without live metadata nothing is filled but the kind.
        let alone = to_server_shape(&snap, None);
        assert!(alone["sources"][0].get("configuration").is_none());
        assert_eq!(alone["sources"][0]["kind"], "postgres");
    }

    #[test]
    fn sources_key_alone_means_v3_and_non_objects_are_empty_v2() {
        let out = to_server_shape(&json!({"sources": []}), Some(&live_v3()));
        assert_eq!(out["sources"], json!([]));
        assert_eq!(out["version"], 3);
        let out = to_server_shape(&Value::Null, None);
        assert_eq!(out["sources"][0]["tables"], json!([]));
    }

    #[test]
    fn pure_and_idempotent() {
        let live = live_v3();
        let once = to_server_shape(&snapshot_v2(), Some(&live));
        assert_eq!(once, to_server_shape(&snapshot_v2(), Some(&live)));
        assert_eq!(once, to_server_shape(&snapshot_v2(), Some(&once)));
        assert_eq!(to_server_shape(&once, Some(&once)), once);
    }

    #[test]
    fn notification_reloads_everything_and_names_every_source() {
        let n = notification(&to_server_shape(&snapshot_v2(), Some(&live_v3())));
        assert_eq!(
            n,
            json!({"metadata": true, "remote_schemas": [], "sources": ["default", "analytics"], "data_connectors": []})
        );
    }
}
