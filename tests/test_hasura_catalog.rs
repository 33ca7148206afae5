//! Hasura's metadata catalog (`hdb_catalog.hdb_metadata`, `hdb_schema_notifications`,
//! `hdb_version`), created here from the server's documented DDL: writing a snapshot keeps the
//! live source configuration, bumps `resource_version` by exactly one, upserts the
//! notification row running instances poll, and changes nothing when the transaction rolls
//! back.

use crate::common::pg::TestDb;
use git_migrate_core::ledger::hasura::{
    catalog_exists, read_metadata, to_server_shape, write_metadata, INSTANCE_ID,
};
use postgres::Client;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The catalog tables as Hasura server v2 creates them (hasura-cli.md §4.1).
pub(crate) const CATALOG_DDL: &str = "
CREATE SCHEMA hdb_catalog;
CREATE TABLE hdb_catalog.hdb_version (
    hasura_uuid uuid PRIMARY KEY,
    version text NOT NULL,
    upgraded_on timestamptz NOT NULL,
    cli_state jsonb NOT NULL DEFAULT '{}'::jsonb,
    console_state jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE UNIQUE INDEX hdb_version_one_row ON hdb_catalog.hdb_version ((version IS NOT NULL));
CREATE TABLE hdb_catalog.hdb_metadata (
    id integer PRIMARY KEY,
    metadata json NOT NULL,
    resource_version integer NOT NULL DEFAULT 1 UNIQUE
);
CREATE TABLE hdb_catalog.hdb_schema_notifications (
    id integer PRIMARY KEY CHECK (id = 1),
    notification json NOT NULL,
    resource_version integer NOT NULL DEFAULT 1,
    instance_id uuid NOT NULL,
    updated_at timestamptz DEFAULT now()
);
INSERT INTO hdb_catalog.hdb_version (hasura_uuid, version, upgraded_on)
VALUES ('5b3a1a8e-6a43-4b4e-9a53-0c1d8c6b7e21', '47', now());
";

/// The instance id of the (imaginary) Hasura server that wrote the catalog before us.
const SERVER_INSTANCE: &str = "8d1c2f0e-3b7a-4c55-a1e2-96f4d2b0c7aa";

/// Metadata as a v2.x server stores it after `hasura metadata apply` of a config v2 project
/// with `HASURA_GRAPHQL_DATABASE_URL` set.
pub(crate) fn live_metadata() -> Value {
    json!({
        "version": 3,
        "sources": [{
            "name": "default",
            "kind": "postgres",
            "tables": [
                {"table": {"schema": "public", "name": "users"},
                 "select_permissions": [{"role": "user", "permission": {"columns": ["id"], "filter": {}}}]},
                {"table": {"schema": "public", "name": "legacy"}}
            ],
            "configuration": {
                "connection_info": {
                    "use_prepared_statements": true,
                    "database_url": {"from_env": "HASURA_GRAPHQL_DATABASE_URL"},
                    "isolation_level": "read-committed",
                    "pool_settings": {
                        "connection_lifetime": 600,
                        "retries": 1,
                        "idle_timeout": 180,
                        "max_connections": 50
                    }
                }
            }
        }],
        "remote_schemas": [{"name": "payments", "definition": {"url": "http://payments/graphql", "timeout_seconds": 60}}],
        "rest_endpoints": [{"name": "user", "url": "user/:id", "methods": ["GET"],
                            "definition": {"query": {"query_name": "user", "collection_name": "allowed-queries"}}}]
    })
}

/// A config v2 project's snapshot, as `metadata::build_snapshot` produces it.
fn snapshot_v2(tables: &[&str]) -> Value {
    json!({
        "version": 2,
        "tables": tables.iter().map(|t| json!({"table": {"schema": "public", "name": t}})).collect::<Vec<_>>(),
        "functions": [{"function": {"schema": "public", "name": "search_orders"}}],
        "remote_schemas": [],
        "query_collections": [],
        "allowlist": [],
        "cron_triggers": [],
        "network": {},
        "actions": [],
        "custom_types": {},
        "actions_graphql": "type Query { ping: Boolean }\n"
    })
}

/// A database with the catalog, holding `live_metadata()` at resource_version 7 and the
/// server's notification row for it.
fn hasura_db(test: &str) -> (TestDb, Client) {
    let db = TestDb::new(test);
    let mut c = db.client();
    c.batch_execute(CATALOG_DDL).unwrap();
    let live = live_metadata().to_string();
    c.execute(
        "INSERT INTO hdb_catalog.hdb_metadata (id, metadata, resource_version) VALUES (1, $1::text::json, 7)",
        &[&live],
    )
    .unwrap();
    c.execute(
        "INSERT INTO hdb_catalog.hdb_schema_notifications (id, notification, resource_version, instance_id, updated_at)
         VALUES (1, '{\"metadata\":false,\"remote_schemas\":[],\"sources\":[],\"data_connectors\":[]}', 7, $1::text::uuid, now() - interval '1 day')",
        &[&SERVER_INSTANCE],
    )
    .unwrap();
    (db, c)
}

/// Row 1 of hdb_metadata: (metadata, resource_version).
fn stored(db: &TestDb) -> (Value, i32) {
    let r = db.rows("SELECT metadata::text, resource_version FROM hdb_catalog.hdb_metadata");
    assert_eq!(r.len(), 1, "exactly one metadata row: {r:?}");
    (
        serde_json::from_str(r[0][0].as_deref().unwrap()).unwrap(),
        r[0][1].as_deref().unwrap().parse().unwrap(),
    )
}

/// Row 1 of hdb_schema_notifications: (notification, resource_version, instance_id, age in s).
fn notified(db: &TestDb) -> (Value, i32, String, f64) {
    let r = db.rows(
        "SELECT notification::text, resource_version, instance_id,
                extract(epoch FROM now() - updated_at)
           FROM hdb_catalog.hdb_schema_notifications",
    );
    assert_eq!(r.len(), 1, "exactly one notification row: {r:?}");
    let s = |i: usize| r[0][i].clone().unwrap();
    (
        serde_json::from_str(&s(0)).unwrap(),
        s(1).parse().unwrap(),
        s(2),
        s(3).parse().unwrap(),
    )
}

fn table_names(metadata: &Value) -> Vec<String> {
    metadata["sources"][0]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["table"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn v2_snapshot_keeps_source_configuration_and_bumps_resource_version() {
    let (db, mut c) = hasura_db("hasura_write_v2");
    let mut tx = c.transaction().unwrap();
    let v = write_metadata(&mut tx, &snapshot_v2(&["orders", "users"])).unwrap();
    tx.commit().unwrap();
    assert_eq!(v, 8);

    let (m, rv) = stored(&db);
    assert_eq!(rv, 8);
    assert_eq!(m["version"], 3);
    let live = live_metadata();
    let source = &m["sources"][0];
    assert_eq!(source["name"], "default");
    assert_eq!(source["kind"], "postgres");
    assert_eq!(
        source["configuration"], live["sources"][0]["configuration"],
        "the live connection settings are kept"
    );
    // Tables replaced wholesale (the old `users` permissions and `legacy` are gone).
    assert_eq!(table_names(&m), vec!["orders", "users"]);
    assert!(source["tables"][1].get("select_permissions").is_none());
    assert_eq!(source["functions"][0]["function"]["name"], "search_orders");
    // The server does not store our SDL key; flat v2 keys are not left at the top level.
    for key in ["actions_graphql", "tables", "functions"] {
        assert!(m.get(key).is_none(), "{key} stored: {m}");
    }
    // Keys in the snapshot replace the live ones; keys a v2 project cannot express stay.
    assert_eq!(m["remote_schemas"], json!([]));
    assert_eq!(m["rest_endpoints"], live["rest_endpoints"]);
    // Exactly what to_server_shape computes from the live document.
    assert_eq!(
        m,
        to_server_shape(&snapshot_v2(&["orders", "users"]), Some(&live))
    );

    let (n, nrv, instance, age) = notified(&db);
    assert_eq!(nrv, 8, "notification carries the new resource_version");
    assert_eq!(instance, INSTANCE_ID);
    assert_ne!(instance, SERVER_INSTANCE);
    assert!(age < 60.0, "updated_at was refreshed ({age}s old)");
    assert_eq!(
        n,
        json!({"metadata": true, "remote_schemas": [], "sources": ["default"], "data_connectors": []})
    );
    // hdb_version is not touched.
    assert_eq!(
        db.scalar("SELECT version || ' ' || cli_state::text FROM hdb_catalog.hdb_version")
            .as_deref(),
        Some("47 {}")
    );
    // A running instance's poll (instance at version 7) sees the change.
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM hdb_catalog.hdb_schema_notifications
              WHERE resource_version > 7 AND instance_id != '{SERVER_INSTANCE}'::uuid"
        ))
        .as_deref(),
        Some("1")
    );
}

#[test]
fn writing_twice_bumps_twice() {
    let (db, mut c) = hasura_db("hasura_write_twice");
    let mut tx = c.transaction().unwrap();
    assert_eq!(write_metadata(&mut tx, &snapshot_v2(&["a"])).unwrap(), 8);
    assert_eq!(write_metadata(&mut tx, &snapshot_v2(&["b"])).unwrap(), 9);
    tx.commit().unwrap();
    let mut tx = c.transaction().unwrap();
    assert_eq!(write_metadata(&mut tx, &snapshot_v2(&["c"])).unwrap(), 10);
    tx.commit().unwrap();
    let (m, rv) = stored(&db);
    assert_eq!(rv, 10);
    assert_eq!(table_names(&m), vec!["c"]);
    assert_eq!(
        m["sources"][0]["configuration"],
        live_metadata()["sources"][0]["configuration"]
    );
    assert_eq!(notified(&db).1, 10);
}

#[test]
fn rolled_back_write_leaves_everything_unchanged() {
    let (db, mut c) = hasura_db("hasura_write_rollback");
    let before_metadata =
        db.rows("SELECT metadata::text, resource_version FROM hdb_catalog.hdb_metadata");
    let before_notification = db.rows(
        "SELECT notification::text, resource_version, instance_id, updated_at FROM hdb_catalog.hdb_schema_notifications",
    );
    let mut tx = c.transaction().unwrap();
    assert_eq!(
        write_metadata(&mut tx, &snapshot_v2(&["orders"])).unwrap(),
        8
    );
    // Visible inside the transaction…
    assert_eq!(read_metadata(&mut tx).unwrap().unwrap().1, 8);
    tx.rollback().unwrap();
    // …and gone after the rollback, byte for byte.
    assert_eq!(
        db.rows("SELECT metadata::text, resource_version FROM hdb_catalog.hdb_metadata"),
        before_metadata
    );
    assert_eq!(
        db.rows("SELECT notification::text, resource_version, instance_id, updated_at FROM hdb_catalog.hdb_schema_notifications"),
        before_notification
    );
    assert_eq!(read_metadata(&mut c).unwrap(), Some((live_metadata(), 7)));
}

#[test]
fn read_metadata_round_trips() {
    let (_db, mut c) = hasura_db("hasura_read_round_trip");
    assert_eq!(read_metadata(&mut c).unwrap(), Some((live_metadata(), 7)));
    let mut tx = c.transaction().unwrap();
    let v = write_metadata(&mut tx, &snapshot_v2(&["orders"])).unwrap();
    tx.commit().unwrap();
    let (m, rv) = read_metadata(&mut c).unwrap().unwrap();
    assert_eq!(rv, v);
    assert_eq!(
        m,
        to_server_shape(&snapshot_v2(&["orders"]), Some(&live_metadata()))
    );
    // Writing what was read back changes nothing but the version.
    let mut tx = c.transaction().unwrap();
    assert_eq!(write_metadata(&mut tx, &m).unwrap(), v + 1);
    tx.commit().unwrap();
    assert_eq!(read_metadata(&mut c).unwrap(), Some((m, v + 1)));
}

#[test]
fn empty_catalog_gets_row_one_and_a_notification() {
    let db = TestDb::new("hasura_empty_catalog");
    let mut c = db.client();
    c.batch_execute(CATALOG_DDL).unwrap();
    assert!(catalog_exists(&mut c).unwrap());
    assert_eq!(read_metadata(&mut c).unwrap(), None);
    let mut tx = c.transaction().unwrap();
    // Row 1 is new: resource_version takes the column default, as the server's upsert does.
    assert_eq!(
        write_metadata(&mut tx, &snapshot_v2(&["orders"])).unwrap(),
        1
    );
    tx.commit().unwrap();
    let (m, rv) = stored(&db);
    assert_eq!(rv, 1);
    assert_eq!(
        db.scalar("SELECT id FROM hdb_catalog.hdb_metadata")
            .as_deref(),
        Some("1")
    );
    assert_eq!(m["sources"][0]["kind"], "postgres");
    assert_eq!(
        m["sources"][0]["configuration"]["connection_info"]["database_url"],
        json!({"from_env": "HASURA_GRAPHQL_DATABASE_URL"})
    );
    assert_eq!(table_names(&m), vec!["orders"]);
    let (_, nrv, instance, _) = notified(&db);
    assert_eq!((nrv, instance.as_str()), (1, INSTANCE_ID));
    let mut tx = c.transaction().unwrap();
    assert_eq!(
        write_metadata(&mut tx, &snapshot_v2(&["orders"])).unwrap(),
        2
    );
    tx.commit().unwrap();
    assert_eq!(notified(&db).1, 2);
}

#[test]
fn v3_snapshot_keeps_its_own_configuration() {
    let (db, mut c) = hasura_db("hasura_write_v3");
    let snap = json!({
        "version": 3,
        "sources": [{
            "name": "default",
            "kind": "postgres",
            "tables": [{"table": {"schema": "public", "name": "orders"}}],
            "configuration": {"connection_info": {"database_url": {"from_env": "PG_DATABASE_URL"}}}
        }]
    });
    let mut tx = c.transaction().unwrap();
    assert_eq!(write_metadata(&mut tx, &snap).unwrap(), 8);
    tx.commit().unwrap();
    let (m, _) = stored(&db);
    assert_eq!(m, snap, "a v3 project's snapshot is stored as is");
}

#[test]
fn catalog_exists_only_with_hdb_metadata() {
    let db = TestDb::new("hasura_catalog_exists");
    let mut c = db.client();
    assert!(!catalog_exists(&mut c).unwrap());
    // A schema of that name, or a view called hdb_metadata elsewhere, is not the catalog.
    c.batch_execute(
        "CREATE SCHEMA hdb_catalog;
         CREATE TABLE hdb_catalog.schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL);
         CREATE VIEW public.hdb_metadata AS SELECT 1 AS id;",
    )
    .unwrap();
    assert!(!catalog_exists(&mut c).unwrap());
    // Created in the caller's own transaction: seen there, gone after a rollback.
    let mut tx = c.transaction().unwrap();
    tx.batch_execute(
        "CREATE TABLE hdb_catalog.hdb_metadata (id integer PRIMARY KEY, metadata json NOT NULL,
                                                 resource_version integer NOT NULL DEFAULT 1 UNIQUE)",
    )
    .unwrap();
    assert!(catalog_exists(&mut tx).unwrap());
    tx.rollback().unwrap();
    assert!(!catalog_exists(&mut c).unwrap());
    // And on a database with the full catalog.
    let (_db, mut c) = hasura_db("hasura_catalog_exists_full");
    assert!(catalog_exists(&mut c).unwrap());
}

#[test]
fn concurrent_writers_serialise_on_row_one() {
    let (db, mut c) = hasura_db("hasura_concurrent");
    let mut tx = c.transaction().unwrap();
    assert_eq!(
        write_metadata(&mut tx, &snapshot_v2(&["first"])).unwrap(),
        8
    );
    // A second writer blocks on the row lock until the first commits…
    let mut other = db.client();
    let second = std::thread::spawn(move || {
        let mut tx = other.transaction().unwrap();
        let v = write_metadata(&mut tx, &snapshot_v2(&["second"])).unwrap();
        tx.commit().unwrap();
        v
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while db
        .scalar(&format!(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = '{}' AND wait_event_type = 'Lock'",
            db.name
        ))
        .as_deref()
        != Some("1")
    {
        assert!(Instant::now() < deadline, "the second writer never waited");
        std::thread::sleep(Duration::from_millis(10));
    }
    tx.commit().unwrap();
    // …then reads the committed version and bumps it again.
    assert_eq!(second.join().unwrap(), 9);
    let (m, rv) = stored(&db);
    assert_eq!(rv, 9);
    assert_eq!(table_names(&m), vec!["second"]);
    assert_eq!(notified(&db).1, 9);
}
