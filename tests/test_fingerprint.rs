//! The schema fingerprint behind `check --verify`: what a down that does not undo its up leaves
//! behind is reported once, by name; what an up-down cycle legitimately changes (OIDs,
//! sequence values) is not.

use git_migrate_core::verify::fingerprint::{diff, Change, Fingerprint};
use postgres::Client;
use std::collections::BTreeSet;

use crate::common::pg::TestDb;

/// The schemas `verify` excludes.
const EXCLUDED: &[&str] = &["git_migrate", "hdb_catalog"];

fn take(c: &mut Client) -> Fingerprint {
    Fingerprint::take(c, EXCLUDED).expect("fingerprint")
}

/// The differences, one line each, after running `setup`, fingerprinting, then running
/// `leftover` (what a faulty down leaves behind).
fn differences(test: &str, setup: &str, leftover: &str) -> Vec<String> {
    let db = TestDb::new(test);
    let mut c = db.client();
    c.batch_execute(setup).expect("setup");
    let before = take(&mut c);
    c.batch_execute(leftover).expect("leftover");
    let after = take(&mut c);
    diff(&before, &after)
        .iter()
        .map(|d| d.to_string())
        .collect()
}

/// Asserts exactly one difference, containing every one of `needles`.
#[track_caller]
fn assert_one(differences: &[String], needles: &[&str]) {
    assert_eq!(
        differences.len(),
        1,
        "expected exactly one difference, got {differences:#?}"
    );
    for needle in needles {
        assert!(
            differences[0].contains(needle),
            "{:?} does not contain {needle:?}",
            differences[0]
        );
    }
}

#[track_caller]
fn assert_none(differences: &[String]) {
    assert!(
        differences.is_empty(),
        "expected no difference: {differences:#?}"
    );
}

const ORDERS: &str = "CREATE TABLE public.orders (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    status text,
    note text,
    qty int CHECK (qty > 0)
)";

#[test]
fn empty_database_with_excluded_schemas_is_stable() {
    let db = TestDb::new("fp_empty");
    let mut c = db.client();
    c.batch_execute(
        "CREATE SCHEMA git_migrate; CREATE TABLE git_migrate.migrations (version bigint PRIMARY KEY);
         CREATE SCHEMA hdb_catalog; CREATE TABLE hdb_catalog.hdb_metadata (id int PRIMARY KEY);",
    )
    .unwrap();
    let first = take(&mut c);
    assert!(!first.is_empty(), "the public schema is an object");
    assert!(first.get("schema", "public").is_some());
    assert!(first
        .iter()
        .all(|(_, name, _)| !name.contains("git_migrate") && !name.contains("hdb_catalog")));
    let second = take(&mut c);
    assert_eq!(diff(&first, &second), vec![]);
    assert_eq!(first, second);

    // A table created then dropped leaves nothing (its row type, array type and sequence go
    // with it).
    c.batch_execute(&format!("{ORDERS}; DROP TABLE public.orders;"))
        .unwrap();
    let third = take(&mut c);
    assert_eq!(diff(&first, &third), vec![]);
}

#[test]
fn sequence_left_behind() {
    let d = differences(
        "fp_sequence",
        "",
        "CREATE SEQUENCE public.ticket_seq START 100",
    );
    assert_one(&d, &["sequence public.ticket_seq", "exists after down"]);
}

#[test]
fn index_left_behind() {
    let d = differences(
        "fp_index",
        ORDERS,
        "CREATE INDEX orders_email_idx ON public.orders (lower(email))",
    );
    assert_one(&d, &["index public.orders_email_idx exists after down"]);
}

#[test]
fn enum_left_behind() {
    let d = differences(
        "fp_enum",
        "",
        "CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy')",
    );
    assert_one(&d, &["type public.mood exists after down"]);
}

#[test]
fn enum_value_left_behind() {
    let d = differences(
        "fp_enum_value",
        "CREATE TYPE public.mood AS ENUM ('sad', 'ok')",
        "ALTER TYPE public.mood ADD VALUE 'happy'",
    );
    assert_one(
        &d,
        &["type public.mood: labels changed: 'sad', 'ok' → 'sad', 'ok', 'happy'"],
    );
}

#[test]
fn column_default_left_behind() {
    let d = differences(
        "fp_default",
        ORDERS,
        "ALTER TABLE public.orders ALTER COLUMN status SET DEFAULT 'new'",
    );
    assert_one(
        &d,
        &["column public.orders.status: default changed: (none) → 'new'::text"],
    );
    // And the other way round: a down that drops a default the schema had.
    let d = differences(
        "fp_default_dropped",
        &format!("{ORDERS}; ALTER TABLE public.orders ALTER COLUMN status SET DEFAULT 'new'"),
        "ALTER TABLE public.orders ALTER COLUMN status DROP DEFAULT",
    );
    assert_one(
        &d,
        &["column public.orders.status: default changed: 'new'::text → (none)"],
    );
}

#[test]
fn not_null_left_behind() {
    let d = differences(
        "fp_not_null",
        ORDERS,
        "ALTER TABLE public.orders ALTER COLUMN note SET NOT NULL",
    );
    assert_one(
        &d,
        &["column public.orders.note: not null changed: false → true"],
    );
}

#[test]
fn changed_view_definition() {
    let d = differences(
        "fp_view",
        &format!("{ORDERS}; CREATE VIEW public.open_orders AS SELECT id, status FROM public.orders WHERE status = 'open'"),
        "CREATE OR REPLACE VIEW public.open_orders AS SELECT id, status FROM public.orders WHERE status = 'pending'",
    );
    assert_one(
        &d,
        &[
            "view public.open_orders: definition changed",
            "'open'::text",
            "'pending'::text",
        ],
    );
}

#[test]
fn function_left_behind() {
    let d = differences(
        "fp_function",
        "",
        "CREATE FUNCTION public.add_one(i integer) RETURNS integer LANGUAGE sql AS 'SELECT i + 1'",
    );
    assert_one(&d, &["function public.add_one(integer) exists after down"]);
}

#[test]
fn function_body_changed() {
    let f = |n: u32| {
        format!(
            "CREATE OR REPLACE FUNCTION public.answer() RETURNS integer LANGUAGE plpgsql AS $$
             BEGIN
               RETURN {n};
             END $$"
        )
    };
    let d = differences("fp_function_body", &f(41), &f(42));
    assert_one(
        &d,
        &["function public.answer(): definition changed at line 6: RETURN 41; → RETURN 42;"],
    );
}

#[test]
fn trigger_left_behind() {
    let d = differences(
        "fp_trigger",
        &format!(
            "{ORDERS};
             CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
        ),
        "CREATE TRIGGER orders_touch BEFORE UPDATE ON public.orders FOR EACH ROW EXECUTE FUNCTION public.touch()",
    );
    assert_one(
        &d,
        &["trigger orders_touch on public.orders exists after down"],
    );
}

#[test]
fn policy_left_behind() {
    let d = differences(
        "fp_policy",
        &format!("{ORDERS}; ALTER TABLE public.orders ENABLE ROW LEVEL SECURITY"),
        "CREATE POLICY only_open ON public.orders FOR SELECT USING (status = 'open')",
    );
    assert_one(&d, &["policy only_open on public.orders exists after down"]);
}

#[test]
fn row_level_security_left_enabled() {
    let d = differences(
        "fp_rls",
        ORDERS,
        "ALTER TABLE public.orders ENABLE ROW LEVEL SECURITY",
    );
    assert_one(
        &d,
        &["table public.orders: row level security changed: disabled → enabled"],
    );
}

#[test]
fn grant_left_behind() {
    let db = TestDb::new("fp_grant");
    // Roles belong to the whole (shared) cluster: one per test database.
    let role = format!("r_{}", db.name);
    let mut c = db.client();
    c.batch_execute(&format!("{ORDERS}; CREATE ROLE {role}"))
        .unwrap();
    let before = take(&mut c);
    c.batch_execute(&format!("GRANT SELECT, INSERT ON public.orders TO {role}"))
        .unwrap();
    let after = take(&mut c);
    let d: Vec<String> = diff(&before, &after)
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_one(
        &d,
        &[&format!(
            "grant on table public.orders to {role} exists after down"
        )],
    );
    // A revoke from PUBLIC (the default grant of EXECUTE on functions) left behind.
    c.batch_execute("CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        .unwrap();
    let before = take(&mut c);
    c.batch_execute("REVOKE EXECUTE ON FUNCTION public.f() FROM PUBLIC")
        .unwrap();
    let after = take(&mut c);
    let d: Vec<String> = diff(&before, &after)
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_one(
        &d,
        &["grant on function public.f() to PUBLIC exists after down (none, the default revoked)"],
    );
    match &diff(&before, &after)[0].change {
        Change::Extra { after } => {
            assert_eq!(after, r#"{"privileges":"none, the default revoked"}"#)
        }
        other => panic!("unexpected {other:?}"),
    }
    c.batch_execute(&format!(
        "REVOKE ALL ON public.orders FROM {role}; DROP ROLE {role}"
    ))
    .unwrap();
}

#[test]
fn extension_left_behind() {
    let db = TestDb::new("fp_extension");
    let mut c = db.client();
    let available: Vec<String> = c
        .query(
            "SELECT name FROM pg_available_extensions WHERE name IN ('pgcrypto', 'citext') ORDER BY name",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let Some(ext) = available.first() else {
        eprintln!("note: neither pgcrypto nor citext is available on the server; skipping");
        return;
    };
    let before = take(&mut c);
    c.batch_execute(&format!("CREATE EXTENSION {ext}")).unwrap();
    let after = take(&mut c);
    let d: Vec<String> = diff(&before, &after)
        .iter()
        .map(|d| d.to_string())
        .collect();
    // Its functions, types and operators are part of the extension, not listed one by one.
    assert_one(&d, &[&format!("extension {ext} exists after down")]);
}

#[test]
fn table_left_behind_is_one_difference() {
    let d = differences(
        "fp_table",
        "",
        &format!("{ORDERS}; CREATE INDEX ON public.orders (status); COMMENT ON COLUMN public.orders.note IS 'n'"),
    );
    assert_one(&d, &["table public.orders exists after down"]);
    let d = differences("fp_table_dropped", ORDERS, "DROP TABLE public.orders");
    assert_one(&d, &["table public.orders is missing after down"]);
}

#[test]
fn schema_left_behind_is_one_difference() {
    let d = differences(
        "fp_schema",
        "",
        "CREATE SCHEMA app; CREATE TABLE app.t (id serial PRIMARY KEY); CREATE TYPE app.e AS ENUM ('a')",
    );
    assert_one(&d, &["schema app exists after down"]);
}

#[test]
fn recreated_objects_fingerprint_the_same() {
    let schema = format!(
        "{ORDERS};
         CREATE TYPE public.mood AS ENUM ('sad', 'happy');
         CREATE TABLE public.items (
             id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             order_id bigint NOT NULL REFERENCES public.orders (id) ON DELETE CASCADE,
             mood public.mood DEFAULT 'happy',
             price numeric(10, 2) NOT NULL DEFAULT 0,
             total numeric GENERATED ALWAYS AS (price * 2) STORED
         );
         CREATE INDEX items_order_idx ON public.items (order_id) WHERE price > 0;
         CREATE VIEW public.item_totals AS SELECT order_id, sum(total) FROM public.items GROUP BY 1;
         CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
         CREATE TRIGGER items_touch BEFORE UPDATE ON public.items FOR EACH ROW EXECUTE FUNCTION public.touch();
         ALTER TABLE public.items ENABLE ROW LEVEL SECURITY;
         CREATE POLICY cheap ON public.items USING (price < 10);
         COMMENT ON TABLE public.items IS 'line items';"
    );
    let drop = "DROP VIEW public.item_totals; DROP TABLE public.items; DROP TABLE public.orders;
                DROP FUNCTION public.touch(); DROP TYPE public.mood;";
    let db = TestDb::new("fp_recreate");
    let mut c = db.client();
    c.batch_execute(&schema).unwrap();
    let before = take(&mut c);
    // Down then up again: every object gets a new OID.
    c.batch_execute(drop).unwrap();
    c.batch_execute(&schema).unwrap();
    let after = take(&mut c);
    assert_eq!(diff(&before, &after), vec![]);
    assert!(before.len() > 20, "{before:#?}");
}

#[test]
fn every_kind_of_object_recreated_fingerprints_the_same() {
    let db = TestDb::new("fp_recreate_all");
    let role = format!("r_{}", db.name);
    let schema = format!(
        "CREATE SCHEMA app;
         CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
         CREATE DOMAIN app.posint AS integer NOT NULL DEFAULT 1 CHECK (VALUE > 0);
         CREATE TYPE app.pair AS (a integer, b text COLLATE \"C\");
         CREATE TYPE app.floatrange AS RANGE (subtype = float8, subtype_diff = float8mi);
         CREATE SEQUENCE app.ticket_seq INCREMENT 5 CACHE 10;
         CREATE TABLE app.orders (
             id bigserial PRIMARY KEY,
             email text UNIQUE,
             status text NOT NULL DEFAULT 'new',
             qty app.posint,
             mood app.mood,
             doubled integer GENERATED ALWAYS AS (qty * 2) STORED,
             ident integer GENERATED BY DEFAULT AS IDENTITY (START 7),
             note text COLLATE \"C\",
             CONSTRAINT qty_small CHECK (qty < 1000) NOT VALID
         );
         CREATE INDEX orders_lower_email_idx ON app.orders (lower(email)) WHERE status <> 'x';
         ALTER TABLE app.orders ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
         CREATE POLICY p_new ON app.orders FOR SELECT TO PUBLIC USING (status = 'new');
         CREATE FUNCTION app.f(a integer, b text DEFAULT 'x') RETURNS integer LANGUAGE sql AS $$ SELECT a $$;
         CREATE PROCEDURE app.p() LANGUAGE plpgsql AS $$ BEGIN NULL; END $$;
         CREATE FUNCTION app.trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
         CREATE TRIGGER t1 BEFORE INSERT ON app.orders FOR EACH ROW EXECUTE FUNCTION app.trg();
         ALTER TABLE app.orders DISABLE TRIGGER t1;
         CREATE VIEW app.v AS SELECT id, status FROM app.orders WHERE qty > 1;
         CREATE MATERIALIZED VIEW app.mv AS SELECT count(*) AS n FROM app.orders;
         CREATE INDEX ON app.mv (n);
         CREATE RULE r1 AS ON INSERT TO app.v DO INSTEAD NOTHING;
         CREATE AGGREGATE app.mysum(integer) (sfunc = int4pl, stype = integer, initcond = '0');
         CREATE TABLE app.parted (id integer, k date) PARTITION BY RANGE (k);
         CREATE TABLE app.parted_2024 PARTITION OF app.parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE INDEX ON app.parted (k);
         CREATE UNLOGGED TABLE app.u (x integer) WITH (fillfactor = 70);
         CREATE TABLE app.child (extra text) INHERITS (app.u);
         CREATE STATISTICS app.st1 ON qty, status FROM app.orders;
         CREATE OPERATOR app.=== (LEFTARG = integer, RIGHTARG = integer, FUNCTION = int4eq);
         CREATE CAST (app.pair AS text) WITH INOUT;
         GRANT USAGE ON SCHEMA app TO {role};
         GRANT SELECT, INSERT ON app.orders TO {role};
         GRANT UPDATE (status) ON app.orders TO {role};
         REVOKE EXECUTE ON FUNCTION app.f(integer, text) FROM PUBLIC;
         ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO {role};
         COMMENT ON TABLE app.orders IS 'orders';
         COMMENT ON COLUMN app.orders.status IS 'the status';
         COMMENT ON FUNCTION app.f(integer, text) IS 'f';"
    );
    let drop = format!(
        "DROP CAST (app.pair AS text); ALTER DEFAULT PRIVILEGES IN SCHEMA app REVOKE ALL ON TABLES FROM {role};
         DROP SCHEMA app CASCADE;"
    );
    let mut c = db.client();
    c.batch_execute(&format!("CREATE ROLE {role}")).unwrap();
    c.batch_execute(&schema).unwrap();
    let before = take(&mut c);
    c.batch_execute(&drop).unwrap();
    let between = take(&mut c);
    assert_eq!(
        diff(&before, &between)
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>(),
        vec![
            "cast (app.pair AS pg_catalog.text) is missing after down",
            "schema app is missing after down",
        ]
    );
    c.batch_execute(&schema).unwrap();
    let after = take(&mut c);
    assert_eq!(diff(&before, &after), vec![]);
    let kinds: BTreeSet<&str> = before.iter().map(|(kind, _, _)| kind).collect();
    for kind in [
        "aggregate",
        "cast",
        "column",
        "comment",
        "constraint",
        "default privileges",
        "function",
        "grant",
        "index",
        "materialized view",
        "operator",
        "policy",
        "procedure",
        "rule",
        "schema",
        "sequence",
        "statistics object",
        "table",
        "trigger",
        "type",
        "view",
    ] {
        assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
    }
    c.batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .unwrap();
}

#[test]
fn sequence_values_do_not_count() {
    let d = differences(
        "fp_sequence_values",
        &format!("{ORDERS}; CREATE SEQUENCE public.ticket_seq"),
        "INSERT INTO public.orders (email) SELECT 'a' || g FROM generate_series(1, 10) g;
         DELETE FROM public.orders;
         SELECT nextval('public.ticket_seq'), nextval('public.ticket_seq');
         ANALYZE public.orders;",
    );
    assert_none(&d);
}

#[test]
fn excluded_schemas_and_temporary_objects_are_ignored() {
    let d = differences(
        "fp_excluded",
        "CREATE SCHEMA git_migrate; CREATE SCHEMA hdb_catalog;",
        "CREATE TABLE git_migrate.migrations (version bigint PRIMARY KEY, up text);
         CREATE INDEX ON git_migrate.migrations (up);
         CREATE FUNCTION hdb_catalog.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
         CREATE TYPE hdb_catalog.e AS ENUM ('a');
         CREATE SEQUENCE hdb_catalog.s;
         CREATE TEMPORARY TABLE scratch (id int);",
    );
    assert_none(&d);
}

#[test]
fn session_settings_neither_matter_nor_change() {
    let db = TestDb::new("fp_settings");
    let mut c = db.client();
    c.batch_execute(&format!(
        "CREATE SCHEMA app; {ORDERS};
         CREATE TABLE app.t (
             o bigint DEFAULT nextval('public.orders_id_seq'),
             at timestamptz DEFAULT '2024-05-01 12:00:00+00',
             d date DEFAULT '2024-05-01',
             f float8 DEFAULT 0.1
         );"
    ))
    .unwrap();
    let before = take(&mut c);
    let settings = "SET search_path = app, public; SET TimeZone = 'America/New_York';
                    SET DateStyle = 'SQL, DMY'; SET extra_float_digits = 0; SET jit = on;
                    SET quote_all_identifiers = on;";
    c.batch_execute(settings).unwrap();
    let show = |c: &mut Client| -> Vec<String> {
        [
            "search_path",
            "TimeZone",
            "DateStyle",
            "extra_float_digits",
            "jit",
            "quote_all_identifiers",
        ]
        .iter()
        .map(|s| c.query_one(&format!("SHOW {s}"), &[]).unwrap().get(0))
        .collect()
    };
    let session = show(&mut c);
    let mut tx = c.transaction().unwrap();
    let after = Fingerprint::take(&mut tx, EXCLUDED).unwrap();
    tx.commit().unwrap();
    assert_eq!(diff(&before, &after), vec![]);
    assert_eq!(show(&mut c), session);
    assert_eq!(session[0], "app, public");
}
