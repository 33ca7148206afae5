//! The metadata consistency check against a real catalog: tracked tables, functions,
//! permissions (columns, filter/check expressions, presets), relationships, computed fields,
//! event triggers, configuration, metadata v2 and v3, and inside an open transaction.

use crate::common::pg::TestDb;
use git_migrate_core::metadata::consistency::{check, Inconsistency};
use postgres::Client;
use serde_json::{json, Value};

const SCHEMA: &str = r#"
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text, org_id int);
CREATE TABLE orders (
    id serial PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers (id),
    product_id int,
    total numeric,
    status text,
    owner_id int,
    created_by int
);
CREATE VIEW big_orders AS SELECT id, customer_id, total FROM orders WHERE total > 100;
CREATE MATERIALIZED VIEW order_totals AS
    SELECT customer_id, sum(total) AS total FROM orders GROUP BY customer_id;
CREATE SCHEMA shop;
CREATE TABLE shop.products (id int PRIMARY KEY, title text, price numeric);
CREATE TABLE shop.reviews (id int PRIMARY KEY, product_id int REFERENCES shop.products (id), stars int);
CREATE TABLE events (id bigint, at timestamptz) PARTITION BY RANGE (at);
CREATE FUNCTION search_customers(q text) RETURNS SETOF customers LANGUAGE sql STABLE
    AS $$ SELECT * FROM customers WHERE name ILIKE '%' || q || '%' $$;
CREATE FUNCTION customer_order_count(c customers) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT count(*) FROM orders WHERE customer_id = c.id $$;
CREATE SEQUENCE not_a_table;
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Order's" ("Total Amount" numeric, "it's" text);
"#;

/// A fresh database with the test schema, and a client on it.
fn setup(name: &str) -> (TestDb, Client) {
    let db = TestDb::new(name);
    let mut client = db.client();
    client
        .batch_execute(SCHEMA)
        .expect("create the test schema");
    (db, client)
}

/// A consistent metadata version 2 snapshot that uses every kind of reference.
fn tables() -> Value {
    json!([
        {
            "table": {"schema": "public", "name": "customers"},
            "array_relationships": [
                {"name": "orders", "using": {"foreign_key_constraint_on":
                    {"table": {"schema": "public", "name": "orders"}, "column": "customer_id"}}},
                {"name": "big_orders", "using": {"manual_configuration": {
                    "remote_table": {"schema": "public", "name": "big_orders"},
                    "column_mapping": {"id": "customer_id"}}}}
            ],
            "computed_fields": [{"name": "order_count", "definition": {
                "function": {"schema": "public", "name": "customer_order_count"}}}],
            "select_permissions": [{"role": "user", "permission": {
                "columns": ["id", "name"],
                "computed_fields": ["order_count"],
                "filter": {"_or": [
                    {"id": {"_eq": "X-Hasura-User-Id"}},
                    {"orders": {"owner_id": {"_eq": "X-Hasura-User-Id"}}},
                    {"order_count": {"_gt": 0}}
                ]}
            }}],
            "configuration": {"custom_column_names": {"org_id": "orgId"},
                              "column_config": {"email": {"custom_name": "mail"}}}
        },
        {
            "table": {"schema": "public", "name": "orders"},
            "object_relationships": [
                {"name": "customer", "using": {"foreign_key_constraint_on": "customer_id"}},
                {"name": "product", "using": {"manual_configuration": {
                    "remote_table": {"schema": "shop", "name": "products"},
                    "column_mapping": {"product_id": "id"}}}}
            ],
            "insert_permissions": [{"role": "user", "permission": {
                "columns": ["customer_id", "product_id", "total"],
                "check": {"customer": {"id": {"_eq": "X-Hasura-User-Id"}}},
                "set": {"owner_id": "x-hasura-user-id"}
            }}],
            "select_permissions": [{"role": "user", "permission": {
                "columns": ["id", "customer_id", "total", "status"],
                "filter": {"_and": [
                    {"owner_id": {"_eq": "X-Hasura-User-Id"}},
                    {"_not": {"product": {"price": {"_gt": 0}}}},
                    {"_exists": {"_table": {"schema": "shop", "name": "reviews"},
                                 "_where": {"stars": {"_gt": 3}}}}
                ]}
            }}],
            "update_permissions": [{"role": "user", "permission": {
                "columns": "*",
                "filter": {"owner_id": {"_ceq": ["$", "created_by"]}},
                "check": {},
                "set": {"created_by": "x-hasura-user-id"}
            }}],
            "delete_permissions": [{"role": "user", "permission": {"filter": {}}}],
            "event_triggers": [{"name": "order_changed", "definition": {
                "enable_manual": false,
                "insert": {"columns": "*"},
                "update": {"columns": ["total", "customer_id"]}
            }, "retry_conf": {"num_retries": 0}, "webhook": "http://example.invalid"}]
        },
        {"table": {"schema": "public", "name": "big_orders"}},
        {"table": {"schema": "public", "name": "order_totals"}},
        {"table": {"schema": "public", "name": "events"}},
        {
            "table": {"schema": "shop", "name": "products"},
            "array_relationships": [{"name": "reviews", "using": {"foreign_key_constraint_on":
                {"table": {"schema": "shop", "name": "reviews"}, "columns": ["product_id"]}}}]
        },
        {"table": {"schema": "shop", "name": "reviews"}},
        {
            "table": {"schema": "Odd Schema", "name": "Order's"},
            "select_permissions": [{"role": "user", "permission": {
                "columns": ["Total Amount", "it's"], "filter": {}}}]
        }
    ])
}

fn functions() -> Value {
    json!([{"function": {"schema": "public", "name": "search_customers"}}])
}

fn v2(tables: Value, functions: Value) -> Value {
    json!({"version": 2, "tables": tables, "functions": functions})
}

fn snapshot() -> Value {
    v2(tables(), functions())
}

/// The table entry `schema.name` of a tables list, to edit.
fn table<'a>(tables: &'a mut Value, schema: &str, name: &str) -> &'a mut Value {
    tables
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["table"]["schema"] == schema && t["table"]["name"] == name)
        .unwrap_or_else(|| panic!("no table {schema}.{name}"))
}

fn inc(object: &str, message: &str) -> Inconsistency {
    Inconsistency {
        object: object.to_string(),
        message: message.to_string(),
    }
}

#[track_caller]
fn assert_check(client: &mut Client, snap: &Value, want: &[(&str, &str)]) {
    let got = check(client, snap).expect("the check runs");
    let want: Vec<Inconsistency> = want.iter().map(|(o, m)| inc(o, m)).collect();
    assert_eq!(got, want);
}

#[test]
fn consistent_snapshot_has_no_inconsistencies() {
    let (_db, mut client) = setup("consistency_ok");
    assert_check(&mut client, &snapshot(), &[]);
    // Empty metadata, and no metadata at all, are consistent too.
    assert_check(&mut client, &v2(json!([]), json!([])), &[]);
    assert_check(&mut client, &Value::Null, &[]);
}

#[test]
fn dropped_column_in_select_columns() {
    let (_db, mut client) = setup("consistency_dropped_column");
    client
        .batch_execute("ALTER TABLE orders DROP COLUMN status")
        .unwrap();
    assert_check(
        &mut client,
        &snapshot(),
        &[(
            "table public.orders: select permission for role user",
            "column status does not exist (in columns)",
        )],
    );
}

#[test]
fn columns_in_filter_expressions() {
    let (_db, mut client) = setup("consistency_filter");
    let mut t = tables();
    table(&mut t, "public", "orders")["select_permissions"][0]["permission"]["filter"] = json!({
        "_and": [
            {"_or": [
                {"owner_id": {"_eq": "X-Hasura-User-Id"}},
                {"_not": {"statuz": {"_eq": "open"}}}
            ]},
            // Through a foreign-key relationship (remote table known only from the catalog).
            {"customer": {"_and": [{"nme": {"_eq": "x"}}, {"orders": {"totl": {"_gt": 1}}}]}},
            // Through a manual relationship.
            {"product": {"prize": {"_gt": 0}}},
            // _exists over another table, and a column comparison with the root table.
            {"_exists": {"_table": {"schema": "shop", "name": "reviews"},
                         "_where": {"starz": {"_ceq": ["$", "ownr"]}}}},
            {"_exists": {"_table": {"schema": "shop", "name": "ghosts"}, "_where": {"x": {"_eq": 1}}}}
        ]
    });
    let o = "table public.orders: select permission for role user";
    assert_check(
        &mut client,
        &v2(t, functions()),
        &[
            (o, "column statuz does not exist (in filter)"),
            (
                o,
                "column nme of public.customers does not exist (in filter, through customer)",
            ),
            (
                o,
                "column totl of public.orders does not exist (in filter, through customer.orders)",
            ),
            (
                o,
                "column prize of shop.products does not exist (in filter, through product)",
            ),
            (
                o,
                "column starz of shop.reviews does not exist (in filter, through _exists)",
            ),
            (o, "column ownr does not exist (in filter)"),
            (o, "table shop.ghosts (in _exists of filter) does not exist"),
        ],
    );
}

#[test]
fn check_expression_and_presets() {
    let (_db, mut client) = setup("consistency_presets");
    let mut t = tables();
    let orders = table(&mut t, "public", "orders");
    orders["insert_permissions"][0]["permission"]["set"] = json!({"ownr_id": "x-hasura-user-id"});
    orders["insert_permissions"][0]["permission"]["check"] =
        json!({"customer": {"org": {"_eq": "X-Hasura-Org-Id"}}});
    orders["update_permissions"][0]["permission"]["set"] =
        json!({"updated_by": "x-hasura-user-id"});
    let ins = "table public.orders: insert permission for role user";
    assert_check(
        &mut client,
        &v2(t, functions()),
        &[
            (
                ins,
                "column org of public.customers does not exist (in check, through customer)",
            ),
            (ins, "column ownr_id does not exist (in set)"),
            (
                "table public.orders: update permission for role user",
                "column updated_by does not exist (in set)",
            ),
        ],
    );
}

#[test]
fn missing_table_is_reported_once() {
    let (_db, mut client) = setup("consistency_missing_table");
    client.batch_execute("DROP VIEW big_orders").unwrap();
    let mut t = tables();
    t.as_array_mut().unwrap().push(json!({
        "table": "ghosts",
        "select_permissions": [{"role": "user", "permission": {"columns": ["a", "b"], "filter": {"c": {"_eq": 1}}}}]
    }));
    t.as_array_mut()
        .unwrap()
        .push(json!({"table": {"schema": "public", "name": "not_a_table"}}));
    assert_check(
        &mut client,
        &v2(t, functions()),
        &[
            (
                "table public.customers: array relationship big_orders",
                "remote table public.big_orders does not exist",
            ),
            ("table public.big_orders", "table does not exist"),
            ("table public.ghosts", "table does not exist"),
            (
                "table public.not_a_table",
                "public.not_a_table is a sequence, not a table or view",
            ),
        ],
    );
}

#[test]
fn missing_functions() {
    let (_db, mut client) = setup("consistency_missing_function");
    client
        .batch_execute("DROP FUNCTION customer_order_count(customers)")
        .unwrap();
    let f = json!([
        {"function": {"schema": "public", "name": "search_customers"}},
        {"function": "search_orders"},
        {"function": {"schema": "shop", "name": "search_customers"}}
    ]);
    assert_check(
        &mut client,
        &v2(tables(), f),
        &[
            (
                "table public.customers: computed field order_count",
                "function public.customer_order_count does not exist",
            ),
            ("function public.search_orders", "function does not exist"),
            ("function shop.search_customers", "function does not exist"),
        ],
    );
}

#[test]
fn foreign_key_relationships() {
    let (_db, mut client) = setup("consistency_fk");
    let mut t = tables();
    let orders = table(&mut t, "public", "orders");
    orders["object_relationships"]
        .as_array_mut()
        .unwrap()
        .extend([
            json!({"name": "buyer", "using": {"foreign_key_constraint_on": "buyer_id"}}),
            // The column exists but carries no foreign key.
            json!({"name": "creator", "using": {"foreign_key_constraint_on": "created_by"}}),
        ]);
    let customers = table(&mut t, "public", "customers");
    customers["array_relationships"]
        .as_array_mut()
        .unwrap()
        .push(
            json!({"name": "orders2", "using": {"foreign_key_constraint_on":
            {"table": "orders", "columns": ["customer_ref"]}}}),
        );
    let products = table(&mut t, "shop", "products");
    products["array_relationships"]
        .as_array_mut()
        .unwrap()
        .push(
            json!({"name": "lost", "using": {"foreign_key_constraint_on":
            {"table": {"schema": "shop", "name": "lost"}, "column": "product_id"}}}),
        );
    assert_check(
        &mut client,
        &v2(t, functions()),
        &[
            (
                "table public.customers: array relationship orders2",
                "column customer_ref of public.orders does not exist (in foreign_key_constraint_on)",
            ),
            (
                "table public.orders: object relationship buyer",
                "column buyer_id does not exist (in foreign_key_constraint_on)",
            ),
            (
                "table public.orders: object relationship creator",
                "no foreign key constraint on public.orders (created_by)",
            ),
            (
                "table shop.products: array relationship lost",
                "remote table shop.lost does not exist",
            ),
        ],
    );

    // Dropping the constraint the schema relied on is caught too.
    client
        .batch_execute("ALTER TABLE orders DROP CONSTRAINT orders_customer_id_fkey")
        .unwrap();
    assert_check(
        &mut client,
        &snapshot(),
        &[
            (
                "table public.customers: array relationship orders",
                "no foreign key constraint on public.orders (customer_id) referencing public.customers",
            ),
            (
                "table public.orders: object relationship customer",
                "no foreign key constraint on public.orders (customer_id)",
            ),
        ],
    );
}

#[test]
fn manual_configuration_columns() {
    let (_db, mut client) = setup("consistency_manual");
    client
        .batch_execute("ALTER TABLE shop.products RENAME COLUMN id TO product_id")
        .unwrap();
    let mut t = tables();
    table(&mut t, "public", "customers")["array_relationships"][1]["using"]
        ["manual_configuration"]["column_mapping"] = json!({"ident": "customer_id"});
    assert_check(
        &mut client,
        &v2(t, functions()),
        &[
            (
                "table public.customers: array relationship big_orders",
                "column ident does not exist (in column_mapping)",
            ),
            (
                "table public.orders: object relationship product",
                "column id of shop.products does not exist (in column_mapping)",
            ),
        ],
    );
}

#[test]
fn event_triggers_and_configuration() {
    let (_db, mut client) = setup("consistency_triggers");
    client
        .batch_execute(
            "ALTER TABLE orders DROP COLUMN total CASCADE; ALTER TABLE customers DROP COLUMN email",
        )
        .unwrap();
    let mut t = tables();
    // Keep `total` only in the event trigger (the view and permissions would name it too).
    t.as_array_mut().unwrap().retain(|e| {
        !["big_orders", "order_totals"].contains(&e["table"]["name"].as_str().unwrap())
    });
    table(&mut t, "public", "customers")["array_relationships"]
        .as_array_mut()
        .unwrap()
        .truncate(1);
    let orders = table(&mut t, "public", "orders");
    orders["insert_permissions"][0]["permission"]["columns"] = json!("*");
    orders["select_permissions"][0]["permission"]["columns"] = json!("*");
    assert_check(
        &mut client,
        &v2(t, functions()),
        &[
            (
                "table public.customers: configuration",
                "column email does not exist (in column_config)",
            ),
            (
                "table public.orders: event trigger order_changed",
                "column total does not exist (in update.columns)",
            ),
        ],
    );
}

#[test]
fn metadata_version_3_checks_the_default_postgres_source() {
    let (_db, mut client) = setup("consistency_v3");
    client
        .batch_execute("ALTER TABLE orders DROP COLUMN status")
        .unwrap();
    let snap = json!({"version": 3, "sources": [
        {"name": "analytics", "kind": "postgres", "configuration": {},
         "tables": [{"table": {"schema": "public", "name": "elsewhere"}}]},
        {"name": "default", "kind": "postgres", "configuration": {},
         "tables": tables(), "functions": [{"function": "search_products"}]},
        {"name": "warehouse", "kind": "bigquery", "tables": [{"table": {"dataset": "d", "name": "x"}}]}
    ]});
    assert_check(
        &mut client,
        &snap,
        &[
            (
                "table public.orders: select permission for role user",
                "column status does not exist (in columns)",
            ),
            ("function public.search_products", "function does not exist"),
        ],
    );

    // The only postgres source is checked whatever its name.
    let snap = json!({"version": 3, "sources": [
        {"name": "main", "tables": [{"table": "orders"}, {"table": "missing"}]}
    ]});
    assert_check(
        &mut client,
        &snap,
        &[("table public.missing", "table does not exist")],
    );
}

#[test]
fn check_sees_uncommitted_ddl_inside_the_transaction() {
    let (_db, mut client) = setup("consistency_tx");
    let mut t = tables();
    t.as_array_mut().unwrap().push(json!({
        "table": "coupons",
        "select_permissions": [{"role": "user", "permission": {"columns": ["code"], "filter": {}}}]
    }));
    let snap = v2(t, functions());
    {
        let mut tx = client.transaction().unwrap();
        tx.batch_execute(
            "CREATE TABLE coupons (code text PRIMARY KEY); ALTER TABLE orders DROP COLUMN status",
        )
        .unwrap();
        let got = check(&mut tx, &snap).unwrap();
        assert_eq!(
            got,
            vec![inc(
                "table public.orders: select permission for role user",
                "column status does not exist (in columns)"
            )]
        );
        tx.rollback().unwrap();
    }
    // Rolled back: coupons is gone again and status is back.
    assert_check(
        &mut client,
        &snap,
        &[("table public.coupons", "table does not exist")],
    );
}

#[test]
fn many_tables_in_one_check() {
    let (_db, mut client) = setup("consistency_many");
    client
        .batch_execute(
            "DO $$ BEGIN FOR i IN 1..300 LOOP \
             EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, parent_id int REFERENCES customers (id), v%s text)', i, i); \
             END LOOP; END $$",
        )
        .unwrap();
    let mut t: Vec<Value> = (1..=301)
        .map(|i| {
            json!({"table": format!("t{i}"),
                   "object_relationships": [{"name": "parent", "using": {"foreign_key_constraint_on": "parent_id"}}],
                   "select_permissions": [{"role": "user", "permission": {
                       "columns": ["id", format!("v{i}")],
                       "filter": {"parent": {"name": {"_eq": "X-Hasura-User-Id"}}}}}]})
        })
        .collect();
    t[41]["select_permissions"][0]["permission"]["columns"] = json!(["id", "v41"]);
    let snap = v2(Value::Array(t), json!([]));
    assert_check(
        &mut client,
        &snap,
        &[
            (
                "table public.t42: select permission for role user",
                "column v41 does not exist (in columns)",
            ),
            ("table public.t301", "table does not exist"),
        ],
    );
}
