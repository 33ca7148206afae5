//! The schema differ against real servers: applying `diff(a, b)` to a database in state `a`
//! yields the catalog fingerprint of `b`.
//!
//! Fingerprints are compared without column positions: a column the differ adds goes last
//! (`ALTER TABLE … ADD COLUMN`), and putting it elsewhere would mean rebuilding the table and
//! its rows, so the model leaves column order out on purpose.

use std::collections::BTreeMap;

use git_migrate_core::schema::diff::Action;
use git_migrate_core::schema::{self, Kind, Model, Statement};
use git_migrate_core::verify::fingerprint::Fingerprint;
use postgres::Client;

use crate::common::pg::TestDb;

/// The schemas `verify` (and so the differ's callers) exclude.
const EXCLUDED: &[&str] = &["git_migrate", "hdb_catalog"];

/// A fingerprint as `(kind, name) → description`, column positions left out.
fn comparable(c: &mut Client) -> BTreeMap<(String, String), String> {
    let fp = Fingerprint::take(c, EXCLUDED).expect("fingerprint");
    fp.iter()
        .map(|(kind, name, description)| {
            let mut d: serde_json::Value =
                serde_json::from_str(description).expect("a description is JSON");
            if kind == "column" {
                if let Some(o) = d.as_object_mut() {
                    o.remove("position");
                }
            }
            ((kind.to_string(), name.to_string()), d.to_string())
        })
        .collect()
}

fn model(c: &mut Client) -> Model {
    schema::read(c, EXCLUDED).expect("read the model")
}

fn script(statements: &[Statement]) -> String {
    statements.iter().map(|s| format!("{};\n", s.sql)).collect()
}

/// Runs `statements` in one transaction, as a deployment would.
fn apply(c: &mut Client, statements: &[Statement], context: &str) {
    let mut tx = c.transaction().expect("begin");
    for s in statements {
        if let Err(e) = tx.batch_execute(&s.sql) {
            panic!(
                "{context}: statement failed: {}\nerror: {e:?}\nwhole script:\n{}",
                s.sql,
                script(statements)
            );
        }
    }
    tx.commit().expect("commit");
}

/// Lines that differ between two comparable fingerprints.
fn differences(
    got: &BTreeMap<(String, String), String>,
    want: &BTreeMap<(String, String), String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in want {
        match got.get(k) {
            None => out.push(format!("missing {} {}: {v}", k.0, k.1)),
            Some(g) if g != v => out.push(format!("{} {}:\n   got  {g}\n   want {v}", k.0, k.1)),
            _ => {}
        }
    }
    for (k, v) in got {
        if !want.contains_key(k) {
            out.push(format!("extra {} {}: {v}", k.0, k.1));
        }
    }
    out
}

/// A table or column dropped (with its rows) must be one `to` does not have: nothing is
/// rebuilt that could have been altered. The one exception is a column whose composite or
/// domain type is itself rebuilt (a new attribute, a new base type); the drop names it.
#[track_caller]
fn assert_no_needless_data_loss(statements: &[Statement], from: &Model, to: &Model, context: &str) {
    let rebuilt_types: Vec<&git_migrate_core::schema::ObjectId> = statements
        .iter()
        .filter(|s| s.action == Action::Drop && s.object.kind == Kind::Type)
        .map(|s| &s.object)
        .collect();
    for s in statements
        .iter()
        .filter(|s| s.destroys.is_some() && s.action == Action::Drop)
    {
        let kept = match s.object.kind {
            Kind::Table | Kind::Column => to.objects.contains_key(&s.object),
            _ => false,
        };
        let type_rebuilt = from
            .objects
            .get(&s.object)
            .is_some_and(|o| rebuilt_types.iter().any(|t| o.depends_on.contains(*t)));
        assert!(
            !kept || type_rebuilt,
            "{context}: {} destroys data though the target keeps {}:\n{}",
            s.sql,
            s.object,
            script(statements)
        );
    }
}

/// Two databases reused across cases: each case resets them with `reset`.
struct Pair {
    a: Client,
    b: Client,
    dbs: (TestDb, TestDb),
}

impl Pair {
    fn new(test: &str) -> Pair {
        let (da, db) = (
            TestDb::new(&format!("{test}_a")),
            TestDb::new(&format!("{test}_b")),
        );
        Pair {
            a: da.client(),
            b: db.client(),
            dbs: (da, db),
        }
    }

    /// The server's `server_version_num`.
    fn server_version_num(&self) -> u32 {
        self.dbs.0.server_version_num()
    }

    /// Puts `a_sql` in the first database and `b_sql` in the second (after `reset` in both),
    /// then checks both directions: `diff(a, b)` applied to the first yields `b`'s fingerprint,
    /// `diff(b, a)` applied to the second yields `a`'s, and a second diff is empty.
    fn check(&mut self, label: &str, reset: &str, a_sql: &str, b_sql: &str) -> usize {
        for (c, sql) in [(&mut self.a, a_sql), (&mut self.b, b_sql)] {
            c.batch_execute(reset).expect("reset");
            if let Err(e) = c.batch_execute(sql) {
                panic!("{label}: setup failed: {e:?}\n{sql}");
            }
        }
        let (ma, mb) = (model(&mut self.a), model(&mut self.b));
        let (fa, fb) = (comparable(&mut self.a), comparable(&mut self.b));
        let mut count = 0;
        for (direction, client, from, to, want, from_sql, to_sql) in [
            ("a→b", &mut self.a, &ma, &mb, &fb, a_sql, b_sql),
            ("b→a", &mut self.b, &mb, &ma, &fa, b_sql, a_sql),
        ] {
            let statements = schema::diff(from, to)
                .unwrap_or_else(|e| panic!("{label} {direction}: diff refused: {e}"));
            count += statements.len();
            assert_no_needless_data_loss(&statements, from, to, &format!("{label} {direction}"));
            let context =
                format!("{label} {direction}\n--- from:\n{from_sql}\n--- to:\n{to_sql}\n");
            apply(client, &statements, &context);
            let got = comparable(client);
            let d = differences(&got, want);
            assert!(
                d.is_empty(),
                "{context}--- script:\n{}--- differences:\n{}",
                script(&statements),
                d.join("\n")
            );
            let again = schema::diff(&model(client), to).expect("second diff");
            assert!(
                again.is_empty(),
                "{context}--- script:\n{}--- a second diff is not empty:\n{}",
                script(&statements),
                script(&again)
            );
        }
        count
    }
}

const RESET_PUBLIC: &str = "DROP SCHEMA IF EXISTS public, app CASCADE; CREATE SCHEMA public;";

/// A hand-written pair, both directions.
fn fixture(name: &str, a: &str, b: &str) {
    let mut pair = Pair::new(name);
    pair.check(name, RESET_PUBLIC, a, b);
}

#[test]
fn schema_diff_drops_a_column_a_view_uses() {
    fixture(
        "sd_view_column",
        "CREATE TABLE t (id int PRIMARY KEY, a text, b int);
         CREATE VIEW v AS SELECT id, a, b FROM t;
         CREATE VIEW w AS SELECT id, b FROM v;",
        "CREATE TABLE t (id int PRIMARY KEY, a text);
         CREATE VIEW v AS SELECT id, a FROM t;
         CREATE VIEW w AS SELECT id FROM v;",
    );
}

#[test]
fn schema_diff_recreates_varchar_in_lists_as_the_server_printed_them() {
    // `IN (…)` on a varchar column deparses to text that, run again, deparses differently
    // unless the differ keeps the array coercion where it was.
    fixture(
        "sd_varchar_in",
        "CREATE TABLE t (id int PRIMARY KEY, s varchar(10));",
        "CREATE TABLE t (id int PRIMARY KEY, s varchar(10) CONSTRAINT t_s CHECK (s IN ('a', 'b')));
         CREATE INDEX t_s_idx ON t (id) WHERE s IN ('a', 'b');
         CREATE VIEW v AS SELECT id FROM t WHERE s IN ('a', 'b');
         CREATE DOMAIN d AS varchar(10) CHECK (VALUE IN ('x', 'y'));",
    );
}

#[test]
fn schema_diff_changes_enum_values() {
    fixture(
        "sd_enum",
        "CREATE TYPE mood AS ENUM ('sad', 'ok');
         CREATE TABLE person (id int PRIMARY KEY, m mood NOT NULL DEFAULT 'ok', ms mood[],
           CONSTRAINT not_sad CHECK (m <> 'sad'), UNIQUE (id, m));
         CREATE INDEX person_ok ON person (id) WHERE m = 'ok';
         CREATE VIEW happy AS SELECT id FROM person WHERE m = 'ok';
         CREATE FUNCTION best() RETURNS mood LANGUAGE sql AS $$ SELECT 'ok'::mood $$;
         CREATE TYPE unused AS ENUM ('x', 'y', 'z');",
        "CREATE TYPE mood AS ENUM ('awful', 'sad', 'meh', 'ok', 'happy');
         CREATE TABLE person (id int PRIMARY KEY, m mood NOT NULL DEFAULT 'ok', ms mood[],
           CONSTRAINT not_sad CHECK (m <> 'sad'), UNIQUE (id, m));
         CREATE INDEX person_ok ON person (id) WHERE m = 'ok';
         CREATE VIEW happy AS SELECT id FROM person WHERE m = 'ok';
         CREATE FUNCTION best() RETURNS mood LANGUAGE sql AS $$ SELECT 'ok'::mood $$;
         CREATE TYPE unused AS ENUM ('z', 'x');",
    );
}

#[test]
fn schema_diff_function_a_trigger_uses() {
    fixture(
        "sd_trigger_fn",
        "CREATE TABLE t (id int PRIMARY KEY, touched timestamptz);
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN NEW.touched := now(); RETURN NEW; END $$;
         CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();
         CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
         CREATE TRIGGER t_audit AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION audit();",
        "CREATE TABLE t (id int PRIMARY KEY, touched timestamptz);
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN NEW.touched := clock_timestamp(); RETURN NEW; END $$;
         CREATE TRIGGER t_touch BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();",
    );
}

#[test]
fn schema_diff_foreign_key_between_two_new_tables() {
    fixture(
        "sd_fk",
        "CREATE TABLE other (id int);",
        "CREATE TABLE other (id int);
         CREATE TABLE a (id int PRIMARY KEY, b_id int);
         CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a (id) DEFERRABLE INITIALLY DEFERRED);
         ALTER TABLE a ADD CONSTRAINT a_b FOREIGN KEY (b_id) REFERENCES b (id) NOT VALID;",
    );
}

#[test]
fn schema_diff_column_type_change_with_dependent_view() {
    fixture(
        "sd_retype",
        "CREATE TABLE t (id int PRIMARY KEY, qty int DEFAULT 1 CHECK (qty > 0), note varchar(20));
         CREATE INDEX t_qty ON t (qty);
         CREATE VIEW v AS SELECT id, qty * 2 AS dbl, note FROM t;
         CREATE VIEW w AS SELECT dbl FROM v;
         COMMENT ON VIEW w IS 'doubles';",
        "CREATE TABLE t (id int PRIMARY KEY, qty numeric(10,2) DEFAULT 1 CHECK (qty > 0), note text);
         CREATE INDEX t_qty ON t (qty);
         CREATE VIEW v AS SELECT id, qty * 2 AS dbl, note FROM t;
         CREATE VIEW w AS SELECT dbl FROM v;
         COMMENT ON VIEW w IS 'doubles';",
    );
}

#[test]
fn schema_diff_not_null_added_and_removed() {
    fixture(
        "sd_not_null",
        "CREATE TABLE t (a int NOT NULL, b text, c date NOT NULL DEFAULT current_date);",
        "CREATE TABLE t (a int, b text NOT NULL, c date NOT NULL);",
    );
}

#[test]
fn schema_diff_partitioned_table_with_partitions() {
    fixture(
        "sd_partitions",
        "CREATE TABLE m (id bigint, at date NOT NULL, v text) PARTITION BY RANGE (at);
         CREATE TABLE m_2024 PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE TABLE m_old PARTITION OF m FOR VALUES FROM ('2000-01-01') TO ('2024-01-01');
         CREATE INDEX m_at ON m (at);
         ALTER TABLE m ADD PRIMARY KEY (id, at);",
        "CREATE TABLE m (id bigint, at date NOT NULL, v text, w int) PARTITION BY RANGE (at);
         CREATE TABLE m_2024 PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE TABLE m_2025 PARTITION OF m FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
         CREATE TABLE m_old PARTITION OF m FOR VALUES FROM ('1990-01-01') TO ('2024-01-01');
         CREATE INDEX m_at ON m (at, id);
         CREATE TABLE l (k text, n int) PARTITION BY LIST (k);
         CREATE TABLE l_a PARTITION OF l FOR VALUES IN ('a');
         CREATE TABLE l_rest PARTITION OF l DEFAULT;",
    );
}

#[test]
fn schema_diff_sequences_identity_and_serial() {
    fixture(
        "sd_sequences",
        "CREATE TABLE t (id serial PRIMARY KEY, n int);
         CREATE SEQUENCE shared START 100;
         CREATE TABLE u (id int DEFAULT nextval('shared'), x int GENERATED ALWAYS AS IDENTITY);",
        "CREATE TABLE t (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n int);
         CREATE SEQUENCE shared START 100 INCREMENT 5 CACHE 10;
         CREATE SEQUENCE counter AS int;
         CREATE TABLE u (id int DEFAULT nextval('counter'), x int);
         ALTER SEQUENCE counter OWNED BY u.id;",
    );
}

#[test]
fn schema_diff_policies_rls_and_comments() {
    fixture(
        "sd_policies",
        "CREATE TABLE doc (id int PRIMARY KEY, owner text, body text);
         ALTER TABLE doc ENABLE ROW LEVEL SECURITY;
         CREATE POLICY mine ON doc USING (owner = current_user);
         COMMENT ON TABLE doc IS 'documents';
         COMMENT ON COLUMN doc.body IS 'the text';
         COMMENT ON SCHEMA public IS 'standard public schema';",
        "CREATE TABLE doc (id int PRIMARY KEY, owner text, body text);
         ALTER TABLE doc ENABLE ROW LEVEL SECURITY;
         ALTER TABLE doc FORCE ROW LEVEL SECURITY;
         CREATE POLICY mine ON doc FOR SELECT USING (owner = current_user OR owner IS NULL);
         CREATE POLICY ins ON doc AS RESTRICTIVE FOR INSERT TO PUBLIC WITH CHECK (body <> '');
         COMMENT ON TABLE doc IS 'documents, it''s said';
         COMMENT ON CONSTRAINT doc_pkey ON doc IS 'key';
         COMMENT ON POLICY ins ON doc IS 'no empty body';",
    );
}

#[test]
fn schema_diff_types_views_functions_and_schemas() {
    let mut pair = Pair::new("sd_types");
    // `add` gets a SQL-standard body (`BEGIN ATOMIC`, PostgreSQL 14 and later) where the server
    // has them; on 13 (bench/pg-matrix.sh) a quoted body changes instead, and the rest is alike.
    let atomic = pair.server_version_num() >= 140_000;
    let add_body = if atomic {
        "BEGIN ATOMIC SELECT x + y + 0; END"
    } else {
        "AS 'SELECT x + y + 0'"
    };
    pair.check(
        "sd_types",
        RESET_PUBLIC,
        "CREATE DOMAIN pos AS int CHECK (VALUE > 0);
         CREATE TYPE pair AS (a int, b text);
         CREATE TABLE t (id pos, p pair);
         CREATE FUNCTION add(x int, y int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x + y';
         CREATE MATERIALIZED VIEW mv AS SELECT id, add(id::int, 1) AS next FROM t WITH NO DATA;",
        &format!(
            "CREATE SCHEMA app;
         CREATE DOMAIN pos AS bigint DEFAULT 1 NOT NULL CHECK (VALUE > 0);
         CREATE TYPE pair AS (a int, b text, c date);
         CREATE TYPE span AS RANGE (subtype = int4);
         CREATE TABLE t (id pos, p pair, s span);
         CREATE FUNCTION add(x int, y int) RETURNS int LANGUAGE sql IMMUTABLE
           {add_body};
         CREATE PROCEDURE app.noop() LANGUAGE sql AS 'SELECT 1';
         CREATE TABLE app.g (a int, b int GENERATED ALWAYS AS (a * 2) STORED);
         CREATE MATERIALIZED VIEW mv AS SELECT id, add(id::int, 1) AS next FROM t;
         CREATE UNIQUE INDEX mv_id ON mv (id);
         CREATE VIEW app.v WITH (security_barrier) AS SELECT * FROM app.g WHERE a > 0;"
        ),
    );
    if atomic {
        // The first database went from `a` to `b`: the differ's script gave `add` its
        // SQL-standard body, not a quoted one.
        let sql_body = pair
            .a
            .query_one(
                "SELECT prosqlbody IS NOT NULL FROM pg_proc WHERE oid = 'public.add(int, int)'::regprocedure",
                &[],
            )
            .expect("add's body")
            .get::<_, bool>(0);
        assert!(sql_body, "add lost its BEGIN ATOMIC body");
    }
}

#[test]
fn schema_diff_refuses_objects_outside_the_model() {
    let db = TestDb::new("sd_refuse");
    let mut c = db.client();
    c.batch_execute("CREATE TABLE t (id int); CREATE TABLE log (id int);")
        .unwrap();
    let a = model(&mut c);
    c.batch_execute(
        "CREATE RULE t_log AS ON INSERT TO t DO ALSO INSERT INTO log VALUES (NEW.id);
         CREATE AGGREGATE mysum(int) (sfunc = int4pl, stype = int);",
    )
    .unwrap();
    let b = model(&mut c);
    let e = schema::diff(&a, &b).expect_err("refused").to_string();
    assert!(e.contains("rule t_log on public.t"), "{e}");
    assert!(e.contains("aggregate public.mysum(integer)"), "{e}");
    let e = schema::diff(&b, &a).expect_err("refused").to_string();
    assert!(e.contains("rule t_log on public.t"), "{e}");

    // More kinds outside the model: an event trigger, a publication, an operator.
    let before = model(&mut c);
    c.batch_execute(
        "CREATE FUNCTION on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
         CREATE EVENT TRIGGER sd_on_ddl ON ddl_command_end EXECUTE FUNCTION on_ddl();
         CREATE PUBLICATION sd_pub FOR TABLE t;
         CREATE OPERATOR === (leftarg = int, rightarg = int, function = int4eq);",
    )
    .unwrap();
    let after = model(&mut c);
    let e = schema::diff(&before, &after)
        .expect_err("refused")
        .to_string();
    for name in [
        "event trigger sd_on_ddl",
        "publication sd_pub",
        "operator public.===(integer,integer)",
    ] {
        assert!(e.contains(name), "{name} not in {e}");
    }
    c.batch_execute(
        "DROP EVENT TRIGGER sd_on_ddl; DROP PUBLICATION sd_pub; DROP OPERATOR === (int, int);",
    )
    .unwrap();

    // A disabled trigger (its state is not modelled) that the diff would recreate: refused.
    c.batch_execute(
        "CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
         CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION noop();
         ALTER TABLE t DISABLE TRIGGER tr;",
    )
    .unwrap();
    let a = model(&mut c);
    c.batch_execute(
        "DROP TRIGGER tr ON t;
         CREATE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION noop();
         ALTER TABLE t DISABLE TRIGGER tr;",
    )
    .unwrap();
    let b = model(&mut c);
    let e = schema::diff(&a, &b).expect_err("refused").to_string();
    assert!(e.contains("trigger tr on public.t"), "{e}");
    c.batch_execute("DROP TRIGGER tr ON t;").unwrap();

    // A statistics object (not modelled) on a table the diff recreates would be lost: refused.
    c.batch_execute(
        "DROP RULE t_log ON t; DROP AGGREGATE mysum(int);
         CREATE TABLE g (id int, v int) PARTITION BY LIST (id);
         CREATE STATISTICS g_stats ON id, v FROM g;",
    )
    .unwrap();
    let a = model(&mut c);
    c.batch_execute(
        "DROP TABLE g; CREATE TABLE g (id int, v int) PARTITION BY HASH (id);
         CREATE STATISTICS g_stats ON id, v FROM g;",
    )
    .unwrap();
    let b = model(&mut c);
    let e = schema::diff(&a, &b).expect_err("refused").to_string();
    assert!(
        e.contains("g_stats") && e.contains("public.g is dropped"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Generated pairs: a small deterministic generator builds a random schema from a vocabulary,
// mutates it, and both directions are checked on a pair of databases reused across cases.
// ---------------------------------------------------------------------------------------------

/// A 64-bit linear congruential generator (Knuth's MMIX constants): deterministic per seed,
/// no crate needed.
struct Lcg(u64);

impl Lcg {
    fn new(seed: u64) -> Lcg {
        let mut l = Lcg(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03);
        l.next();
        l
    }
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Column types, in groups whose members convert into each other with `USING col::new`.
const TYPE_GROUPS: &[&[&str]] = &[
    &["integer", "bigint", "numeric(10,2)", "text"],
    &["text", "character varying(20)"],
    &["date", "timestamp with time zone", "text"],
    &["boolean", "text"],
    &["jsonb", "text"],
    &["integer[]", "text[]"],
];

#[derive(Clone, Debug)]
struct GCol {
    name: String,
    ty: String,
    not_null: bool,
    default: Option<String>,
    comment: Option<String>,
    /// `BY DEFAULT` or `ALWAYS`.
    identity: Option<&'static str>,
    /// `GENERATED ALWAYS AS (id * 2) STORED` (type bigint).
    generated: bool,
}

impl GCol {
    fn plain(&self) -> bool {
        self.identity.is_none() && !self.generated
    }
}

#[derive(Clone, Debug)]
struct GFk {
    name: String,
    col: String,
    to: String,
}

#[derive(Clone, Debug)]
struct GTable {
    name: String,
    id_type: &'static str,
    cols: Vec<GCol>,
    fks: Vec<GFk>,
    /// (name, column) `CHECK (column >= 0)` on numeric columns.
    checks: Vec<(String, String)>,
    uniques: Vec<(String, String)>,
    /// (name, columns, partial with an expression).
    indexes: Vec<(String, Vec<String>, bool)>,
    triggers: Vec<(String, String, bool)>,
    policies: Vec<(String, String, i64)>,
    rls: bool,
    force_rls: bool,
    comment: Option<String>,
    /// `GRANT privilege [(column)] ON table TO PUBLIC`.
    grants: Vec<(&'static str, Option<String>)>,
}

#[derive(Clone, Debug)]
struct GView {
    name: String,
    table: String,
    /// A view over this earlier view instead of the table (selecting `id`).
    base: Option<String>,
    materialized: bool,
    cols: Vec<String>,
    min_id: i64,
    comment: Option<String>,
}

/// A sequence: name, increment, owned by (table, column).
type GSeq = (String, i64, Option<(String, String)>);

#[derive(Clone, Debug, Default)]
struct GSchema {
    next: usize,
    enums: Vec<(String, Vec<String>)>,
    /// (name, increment, owned by (table, column)).
    seqs: Vec<GSeq>,
    /// (name, body variant) trigger functions.
    funcs: Vec<(String, u8)>,
    /// (name, minimum) `CREATE DOMAIN name AS integer CHECK (VALUE >= minimum)`.
    domains: Vec<(String, i64)>,
    tables: Vec<GTable>,
    views: Vec<GView>,
}

const LABELS: &[&str] = &["a", "b", "c", "d", "e", "f"];

impl GSchema {
    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    fn generate(r: &mut Lcg) -> GSchema {
        let mut s = GSchema::default();
        for _ in 0..r.below(3) {
            s.add_enum(r);
        }
        for _ in 0..r.below(3) {
            s.add_seq(r);
        }
        for _ in 0..r.below(3) {
            s.add_func(r);
        }
        for _ in 0..r.below(2) {
            let name = s.fresh("d");
            s.domains.push((name, r.below(3) as i64));
        }
        for _ in 0..1 + r.below(4) {
            s.add_table(r);
        }
        for _ in 0..r.below(4) {
            s.mutate_one(r, 100);
        }
        s.repair();
        s
    }

    fn add_enum(&mut self, r: &mut Lcg) {
        let name = self.fresh("e");
        let mut labels: Vec<String> = LABELS.iter().map(|l| l.to_string()).collect();
        labels.truncate(2 + r.below(4));
        self.enums.push((name, labels));
    }

    fn add_seq(&mut self, r: &mut Lcg) {
        let name = self.fresh("s");
        self.seqs.push((name, 1 + r.below(3) as i64, None));
    }

    fn add_func(&mut self, r: &mut Lcg) {
        let name = self.fresh("f");
        self.funcs.push((name, r.below(3) as u8));
    }

    fn random_type(&self, r: &mut Lcg) -> String {
        if !self.domains.is_empty() && r.chance(10) {
            let (d, _) = &self.domains[r.below(self.domains.len())];
            return format!("app.{d}");
        }
        if !self.enums.is_empty() && r.chance(20) {
            let (e, _) = &self.enums[r.below(self.enums.len())];
            return format!("app.{e}");
        }
        let group = TYPE_GROUPS[r.below(TYPE_GROUPS.len())];
        group[r.below(group.len())].to_string()
    }

    fn random_default(&self, r: &mut Lcg, ty: &str) -> Option<String> {
        if !r.chance(40) {
            return None;
        }
        Some(match ty {
            "integer" | "bigint" if !self.seqs.is_empty() && r.chance(50) => {
                let (s, _, _) = &self.seqs[r.below(self.seqs.len())];
                format!("nextval('app.{s}')")
            }
            "integer" | "bigint" | "numeric(10,2)" => format!("{}", r.below(100)),
            "text" | "character varying(20)" => format!("'v{}'", r.below(10)),
            "date" => "CURRENT_DATE".into(),
            "timestamp with time zone" => "now()".into(),
            "boolean" => "false".into(),
            "jsonb" => "'{}'::jsonb".into(),
            "integer[]" => "'{1,2}'".into(),
            "text[]" => "'{}'".into(),
            d if d.starts_with("app.d") => format!("{}", 5 + r.below(5)),
            e if e.starts_with("app.") => {
                let labels = &self.enums.iter().find(|(n, _)| format!("app.{n}") == e)?.1;
                format!("'{}'", labels.first()?)
            }
            _ => return None,
        })
    }

    fn new_col(&mut self, r: &mut Lcg) -> GCol {
        let name = self.fresh("c");
        let (ty, identity, generated) = match r.below(10) {
            0 => ("bigint".to_string(), None, true),
            1 => (
                ["integer", "bigint"][r.below(2)].to_string(),
                Some(["BY DEFAULT", "ALWAYS"][r.below(2)]),
                false,
            ),
            _ => (self.random_type(r), None, false),
        };
        let default = if identity.is_none() && !generated {
            self.random_default(r, &ty)
        } else {
            None
        };
        GCol {
            name,
            not_null: r.chance(30),
            default,
            comment: r.chance(15).then(|| format!("column note {}", r.below(5))),
            ty,
            identity,
            generated,
        }
    }

    fn add_table(&mut self, r: &mut Lcg) {
        let name = self.fresh("t");
        let mut cols = Vec::new();
        for _ in 0..r.below(5) {
            cols.push(self.new_col(r));
        }
        self.tables.push(GTable {
            name,
            id_type: if r.chance(50) { "integer" } else { "bigint" },
            cols,
            fks: Vec::new(),
            checks: Vec::new(),
            uniques: Vec::new(),
            indexes: Vec::new(),
            triggers: Vec::new(),
            policies: Vec::new(),
            rls: false,
            force_rls: false,
            comment: r.chance(20).then(|| "a table".to_string()),
            grants: Vec::new(),
        });
    }

    /// One random change; `weight_new` biases towards adding things (for generation).
    fn mutate_one(&mut self, r: &mut Lcg, weight_new: u64) {
        let nt = self.tables.len();
        let ti = r.below(nt.max(1));
        match r.below(26) {
            0 => self.add_table(r),
            1 if nt > 1 && !r.chance(weight_new) => {
                self.tables.remove(ti);
            }
            2 if nt > 0 => {
                let c = self.new_col(r);
                self.tables[ti].cols.push(c);
            }
            3 if nt > 0 && !self.tables[ti].cols.is_empty() && !r.chance(weight_new) => {
                let ci = r.below(self.tables[ti].cols.len());
                self.tables[ti].cols.remove(ci);
            }
            4 if nt > 0 && !self.tables[ti].cols.is_empty() => {
                let ci = r.below(self.tables[ti].cols.len());
                if !self.tables[ti].cols[ci].plain() {
                    return;
                }
                let old = self.tables[ti].cols[ci].ty.clone();
                let new = match TYPE_GROUPS.iter().find(|g| g.contains(&old.as_str())) {
                    Some(g) => g[r.below(g.len())].to_string(),
                    None => "text".to_string(),
                };
                let default = self.random_default(r, &new);
                let t = &mut self.tables[ti];
                let col = t.cols[ci].name.clone();
                t.checks.retain(|(_, c)| *c != col);
                t.cols[ci].ty = new;
                t.cols[ci].default = default;
            }
            5 if nt > 0 && !self.tables[ti].cols.is_empty() => {
                let ci = r.below(self.tables[ti].cols.len());
                let c = &mut self.tables[ti].cols[ci];
                c.not_null = !c.not_null;
            }
            6 if nt > 0 && !self.tables[ti].cols.is_empty() => {
                let ci = r.below(self.tables[ti].cols.len());
                if !self.tables[ti].cols[ci].plain() {
                    return;
                }
                let ty = self.tables[ti].cols[ci].ty.clone();
                self.tables[ti].cols[ci].default = self.random_default(r, &ty);
            }
            7 if nt > 0 => {
                let t = &self.tables[ti];
                if !t.indexes.is_empty() && r.chance(40) {
                    let i = r.below(t.indexes.len());
                    self.tables[ti].indexes.remove(i);
                } else if !t.cols.is_empty() {
                    let mut cols = vec![t.cols[r.below(t.cols.len())].name.clone()];
                    if r.chance(30) {
                        cols.insert(0, "id".into());
                    }
                    let name = self.fresh("i");
                    let partial = r.chance(30);
                    self.tables[ti].indexes.push((name, cols, partial));
                }
            }
            8 if nt > 0 => {
                let t = &self.tables[ti];
                let numeric: Vec<String> = t
                    .cols
                    .iter()
                    .filter(|c| matches!(c.ty.as_str(), "integer" | "bigint" | "numeric(10,2)"))
                    .map(|c| c.name.clone())
                    .collect();
                if !t.checks.is_empty() && r.chance(40) {
                    let i = r.below(t.checks.len());
                    self.tables[ti].checks.remove(i);
                } else if !numeric.is_empty() {
                    let col = numeric[r.below(numeric.len())].clone();
                    let name = self.fresh("ck");
                    self.tables[ti].checks.push((name, col));
                }
            }
            9 if nt > 0 => {
                if !self.tables[ti].fks.is_empty() && r.chance(40) {
                    let i = r.below(self.tables[ti].fks.len());
                    self.tables[ti].fks.remove(i);
                } else {
                    let to = self.tables[r.below(nt)].name.clone();
                    let name = self.fresh("fk");
                    let col = self.fresh("ref");
                    let id_type = self.tables.iter().find(|t| t.name == to).map(|t| t.id_type);
                    let t = &mut self.tables[ti];
                    t.cols.push(GCol {
                        name: col.clone(),
                        ty: id_type.unwrap_or("integer").to_string(),
                        not_null: false,
                        default: None,
                        comment: None,
                        identity: None,
                        generated: false,
                    });
                    t.fks.push(GFk { name, col, to });
                }
            }
            10 if nt > 0 => {
                if !self.views.is_empty() && r.chance(40) {
                    let i = r.below(self.views.len());
                    self.views.remove(i);
                } else {
                    let t = &self.tables[ti];
                    let mut cols = vec!["id".to_string()];
                    for c in &t.cols {
                        if r.chance(50) {
                            cols.push(c.name.clone());
                        }
                    }
                    let table = t.name.clone();
                    let name = self.fresh("v");
                    let plain: Vec<String> = self
                        .views
                        .iter()
                        .filter(|v| !v.materialized)
                        .map(|v| v.name.clone())
                        .collect();
                    let base = (!plain.is_empty() && r.chance(25))
                        .then(|| plain[r.below(plain.len())].clone());
                    if base.is_some() {
                        cols = vec!["id".to_string()];
                    }
                    self.views.push(GView {
                        name,
                        table,
                        base,
                        materialized: r.chance(20),
                        cols,
                        min_id: r.below(3) as i64,
                        comment: r.chance(20).then(|| "a view".to_string()),
                    });
                }
            }
            11 if !self.views.is_empty() => {
                let i = r.below(self.views.len());
                self.views[i].min_id += 1;
            }
            12 if !self.enums.is_empty() => {
                let i = r.below(self.enums.len());
                let labels = &mut self.enums[i].1;
                match r.below(3) {
                    0 if labels.len() < LABELS.len() => {
                        let missing: Vec<&&str> = LABELS
                            .iter()
                            .filter(|l| !labels.iter().any(|x| x == **l))
                            .collect();
                        let new = missing[r.below(missing.len())].to_string();
                        let at = r.below(labels.len() + 1);
                        labels.insert(at, new);
                    }
                    1 if labels.len() > 1 => {
                        let at = r.below(labels.len());
                        labels.remove(at);
                    }
                    _ => labels.reverse(),
                }
            }
            13 if !self.funcs.is_empty() => {
                let i = r.below(self.funcs.len());
                self.funcs[i].1 = (self.funcs[i].1 + 1) % 3;
            }
            14 => self.add_func(r),
            15 if nt > 0 && !self.funcs.is_empty() => {
                if !self.tables[ti].triggers.is_empty() && r.chance(40) {
                    let i = r.below(self.tables[ti].triggers.len());
                    self.tables[ti].triggers.remove(i);
                } else {
                    let f = self.funcs[r.below(self.funcs.len())].0.clone();
                    let name = self.fresh("tg");
                    let before = r.chance(50);
                    self.tables[ti].triggers.push((name, f, before));
                }
            }
            16 if nt > 0 => {
                if !self.tables[ti].policies.is_empty() && r.chance(40) {
                    let i = r.below(self.tables[ti].policies.len());
                    self.tables[ti].policies.remove(i);
                } else {
                    let cmd = ["ALL", "SELECT", "UPDATE", "DELETE"][r.below(4)].to_string();
                    let name = self.fresh("p");
                    let k = r.below(10) as i64;
                    self.tables[ti].policies.push((name, cmd, k));
                }
            }
            17 if nt > 0 => {
                let t = &mut self.tables[ti];
                match r.below(2) {
                    0 => t.rls = !t.rls,
                    _ => t.force_rls = !t.force_rls,
                }
            }
            18 if nt > 0 => {
                let t = &mut self.tables[ti];
                if !t.cols.is_empty() && r.chance(50) {
                    let ci = r.below(t.cols.len());
                    t.cols[ci].comment = match t.cols[ci].comment {
                        Some(_) if r.chance(50) => None,
                        _ => Some(format!("it's column {}", r.below(9))),
                    };
                } else {
                    t.comment = match t.comment {
                        Some(_) if r.chance(50) => None,
                        _ => Some(format!("table {}", r.below(9))),
                    };
                }
            }
            19 => {
                if !self.seqs.is_empty() && r.chance(50) {
                    let i = r.below(self.seqs.len());
                    if r.chance(50) {
                        self.seqs[i].1 += 1;
                    } else {
                        self.seqs.remove(i);
                    }
                } else {
                    self.add_seq(r);
                }
            }
            20 if !self.seqs.is_empty() && nt > 0 => {
                let i = r.below(self.seqs.len());
                let t = &self.tables[ti];
                self.seqs[i].2 = match (&self.seqs[i].2, t.cols.is_empty()) {
                    (None, false) => {
                        Some((t.name.clone(), t.cols[r.below(t.cols.len())].name.clone()))
                    }
                    _ => None,
                };
            }
            21 if nt > 0 && !self.tables[ti].cols.is_empty() => {
                let t = &self.tables[ti];
                if !t.uniques.is_empty() && r.chance(40) {
                    let i = r.below(t.uniques.len());
                    self.tables[ti].uniques.remove(i);
                } else {
                    let col = t.cols[r.below(t.cols.len())].name.clone();
                    let name = self.fresh("u");
                    self.tables[ti].uniques.push((name, col));
                }
            }
            22 if nt > 0 => {
                let t = &mut self.tables[ti];
                let candidates: Vec<usize> = (0..t.cols.len())
                    .filter(|i| {
                        let c = &t.cols[*i];
                        !c.generated
                            && c.default.is_none()
                            && matches!(c.ty.as_str(), "integer" | "bigint")
                            && !t.fks.iter().any(|f| f.col == c.name)
                    })
                    .collect();
                if !candidates.is_empty() {
                    let c = &mut t.cols[candidates[r.below(candidates.len())]];
                    c.identity = match c.identity {
                        None => Some("BY DEFAULT"),
                        Some("BY DEFAULT") => Some("ALWAYS"),
                        Some(_) => None,
                    };
                }
            }
            23 if !self.domains.is_empty() => {
                let i = r.below(self.domains.len());
                self.domains[i].1 = (self.domains[i].1 + 1) % 3;
            }
            25 if nt > 0 => {
                let t = &mut self.tables[ti];
                if !t.grants.is_empty() && r.chance(40) {
                    let i = r.below(t.grants.len());
                    t.grants.remove(i);
                } else {
                    let privilege = ["SELECT", "INSERT", "UPDATE", "DELETE"][r.below(4)];
                    let column = (!t.cols.is_empty() && privilege != "DELETE" && r.chance(40))
                        .then(|| t.cols[r.below(t.cols.len())].name.clone());
                    if !t.grants.contains(&(privilege, column.clone())) {
                        t.grants.push((privilege, column));
                    }
                }
            }
            24 => {
                let name = self.fresh("d");
                self.domains.push((name, 0));
            }
            _ => {}
        }
    }

    /// Removes whatever refers to something that is gone, so the script runs.
    fn repair(&mut self) {
        let enums = self.enums.clone();
        let seqs: Vec<String> = self.seqs.iter().map(|s| s.0.clone()).collect();
        let funcs: Vec<String> = self.funcs.iter().map(|f| f.0.clone()).collect();
        let domains: Vec<String> = self.domains.iter().map(|d| d.0.clone()).collect();
        let tables: Vec<(String, Vec<String>)> = self
            .tables
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    t.cols.iter().map(|c| c.name.clone()).collect(),
                )
            })
            .collect();
        let has_col = |t: &str, c: &str| {
            c == "id"
                || tables
                    .iter()
                    .any(|(n, cs)| n == t && cs.iter().any(|x| x == c))
        };
        let id_types: Vec<(String, &'static str)> = self
            .tables
            .iter()
            .map(|t| (t.name.clone(), t.id_type))
            .collect();
        for t in &mut self.tables {
            let tn = t.name.clone();
            for c in &mut t.cols {
                if let Some(d) = &c.default {
                    if let Some(s) = d.strip_prefix("nextval('app.") {
                        if !seqs.iter().any(|x| s.starts_with(&format!("{x}'"))) {
                            c.default = None;
                        }
                    }
                }
                if let Some(d) = c.ty.strip_prefix("app.d") {
                    if !domains.iter().any(|x| x.strip_prefix('d') == Some(d)) {
                        c.ty = "integer".into();
                    }
                } else if let Some(e) = c.ty.strip_prefix("app.") {
                    match enums.iter().find(|(n, _)| n == e) {
                        Some((_, labels)) => {
                            if c.default.is_some() {
                                c.default = labels.first().map(|l| format!("'{l}'"));
                            }
                        }
                        None => c.ty = "text".into(),
                    }
                }
            }
            t.fks.retain(|fk| {
                has_col(&tn, &fk.col)
                    && id_types.iter().any(|(n, ty)| {
                        *n == fk.to && t.cols.iter().any(|c| c.name == fk.col && c.ty == *ty)
                    })
            });
            t.checks.retain(|(_, c)| {
                t.cols.iter().any(|x| {
                    x.name == *c && matches!(x.ty.as_str(), "integer" | "bigint" | "numeric(10,2)")
                })
            });
            t.uniques.retain(|(_, c)| has_col(&tn, c));
            t.indexes
                .retain(|(_, cs, _)| cs.iter().all(|c| has_col(&tn, c)));
            t.triggers.retain(|(_, f, _)| funcs.contains(f));
            t.grants
                .retain(|(_, c)| c.as_ref().is_none_or(|c| has_col(&tn, c)));
        }
        let mut kept: Vec<GView> = Vec::new();
        for v in std::mem::take(&mut self.views) {
            let ok = match &v.base {
                Some(b) => kept.iter().any(|k| k.name == *b),
                None => {
                    tables.iter().any(|(n, _)| *n == v.table)
                        && v.cols.iter().all(|c| has_col(&v.table, c))
                }
            };
            if ok {
                kept.push(v);
            }
        }
        self.views = kept;
        for s in &mut self.seqs {
            if let Some((t, c)) = &s.2 {
                if !has_col(t, c) {
                    s.2 = None;
                }
            }
        }
    }

    fn sql(&self) -> String {
        let mut out = String::from("CREATE SCHEMA app;\n");
        for (name, labels) in &self.enums {
            let labels: Vec<String> = labels.iter().map(|l| format!("'{l}'")).collect();
            out += &format!("CREATE TYPE app.{name} AS ENUM ({});\n", labels.join(", "));
        }
        for (name, min) in &self.domains {
            out += &format!("CREATE DOMAIN app.{name} AS integer CHECK (VALUE >= {min});\n");
        }
        for (name, inc, _) in &self.seqs {
            out += &format!("CREATE SEQUENCE app.{name} INCREMENT {inc};\n");
        }
        for (name, variant) in &self.funcs {
            let body = match variant {
                0 => "BEGIN RETURN NEW; END",
                1 => "BEGIN NEW.id := NEW.id; RETURN NEW; END",
                _ => "BEGIN RAISE NOTICE 'row'; RETURN NEW; END",
            };
            out += &format!(
                "CREATE FUNCTION app.{name}() RETURNS trigger LANGUAGE plpgsql AS $$ {body} $$;\n"
            );
        }
        for t in &self.tables {
            let mut cols = vec![format!("id {} PRIMARY KEY", t.id_type)];
            for c in &t.cols {
                let mut d = format!("{} {}", c.name, c.ty);
                if c.generated {
                    d += " GENERATED ALWAYS AS (id * 2) STORED";
                }
                if let Some(i) = c.identity {
                    d += &format!(" GENERATED {i} AS IDENTITY");
                }
                if let Some(x) = &c.default {
                    d += &format!(" DEFAULT {x}");
                }
                if c.not_null {
                    d += " NOT NULL";
                }
                cols.push(d);
            }
            out += &format!("CREATE TABLE app.{} ({});\n", t.name, cols.join(", "));
        }
        for t in &self.tables {
            let n = &t.name;
            for (name, col) in &t.checks {
                out += &format!("ALTER TABLE app.{n} ADD CONSTRAINT {name} CHECK ({col} >= 0);\n");
            }
            for (name, col) in &t.uniques {
                out += &format!("ALTER TABLE app.{n} ADD CONSTRAINT {name} UNIQUE ({col});\n");
            }
            for fk in &t.fks {
                out += &format!(
                    "ALTER TABLE app.{n} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES app.{} (id);\n",
                    fk.name, fk.col, fk.to
                );
            }
            for (name, cols, partial) in &t.indexes {
                if *partial {
                    out += &format!(
                        "CREATE INDEX {name} ON app.{n} ((id + 1), {}) WHERE id > 0;\n",
                        cols.join(", ")
                    );
                } else {
                    out += &format!("CREATE INDEX {name} ON app.{n} ({});\n", cols.join(", "));
                }
            }
            for (name, f, before) in &t.triggers {
                out += &format!(
                    "CREATE TRIGGER {name} {} INSERT OR UPDATE ON app.{n} FOR EACH ROW EXECUTE FUNCTION app.{f}();\n",
                    if *before { "BEFORE" } else { "AFTER" }
                );
            }
            for (name, cmd, k) in &t.policies {
                out += &format!("CREATE POLICY {name} ON app.{n} FOR {cmd} USING (id > {k});\n");
            }
            if t.rls {
                out += &format!("ALTER TABLE app.{n} ENABLE ROW LEVEL SECURITY;\n");
            }
            for (privilege, column) in &t.grants {
                let column = column
                    .as_ref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default();
                out += &format!("GRANT {privilege}{column} ON app.{n} TO PUBLIC;\n");
            }
            if t.force_rls {
                out += &format!("ALTER TABLE app.{n} FORCE ROW LEVEL SECURITY;\n");
            }
            if let Some(c) = &t.comment {
                out += &format!("COMMENT ON TABLE app.{n} IS '{}';\n", c.replace('\'', "''"));
            }
            for c in &t.cols {
                if let Some(text) = &c.comment {
                    out += &format!(
                        "COMMENT ON COLUMN app.{n}.{} IS '{}';\n",
                        c.name,
                        text.replace('\'', "''")
                    );
                }
            }
        }
        for (name, _, owner) in &self.seqs {
            if let Some((t, c)) = owner {
                out += &format!("ALTER SEQUENCE app.{name} OWNED BY app.{t}.{c};\n");
            }
        }
        for v in &self.views {
            let kind = if v.materialized {
                "MATERIALIZED VIEW"
            } else {
                "VIEW"
            };
            out += &format!(
                "CREATE {kind} app.{} AS SELECT {} FROM app.{} WHERE id > {};\n",
                v.name,
                v.cols.join(", "),
                v.base.as_ref().unwrap_or(&v.table),
                v.min_id
            );
            if let Some(c) = &v.comment {
                out += &format!("COMMENT ON {kind} app.{} IS '{c}';\n", v.name);
            }
        }
        out
    }
}

/// A generated pair for `seed`: a schema and a mutation of it.
fn generated_pair(seed: u64) -> (String, String) {
    let mut r = Lcg::new(seed);
    let a = GSchema::generate(&mut r);
    let mut b = a.clone();
    for _ in 0..1 + r.below(4) {
        b.mutate_one(&mut r, 30);
    }
    b.repair();
    (a.sql(), b.sql())
}

const RESET_APP: &str = "DROP SCHEMA IF EXISTS app CASCADE;";

/// Checks generated pairs `seeds` on one pair of databases.
fn generated(test: &str, seeds: std::ops::Range<u64>) {
    let mut pair = Pair::new(test);
    let mut statements = 0;
    for seed in seeds {
        let (a, b) = generated_pair(seed);
        statements += pair.check(&format!("seed {seed}"), RESET_APP, &a, &b);
    }
    assert!(statements > 0, "the generated pairs differ");
}

#[test]
fn schema_diff_generated_pairs_0() {
    generated("sd_gen0", 0..10);
}

#[test]
fn schema_diff_generated_pairs_1() {
    generated("sd_gen1", 10..20);
}

#[test]
fn schema_diff_generated_pairs_2() {
    generated("sd_gen2", 20..30);
}

#[test]
fn schema_diff_generated_pairs_3() {
    generated("sd_gen3", 30..40);
}

#[test]
fn schema_diff_extensions_and_quoted_names() {
    fixture(
        "sd_quoted",
        r#"CREATE EXTENSION citext;
           CREATE SCHEMA "My Schema";
           CREATE TYPE "My Schema"."Odd.Enum" AS ENUM ('x', 'it''s');
           CREATE TABLE "My Schema"."Weird.Table" ("Col A" citext, "e" "My Schema"."Odd.Enum");
           CREATE INDEX "Idx One" ON "My Schema"."Weird.Table" (lower("Col A"));"#,
        r#"CREATE EXTENSION citext;
           CREATE EXTENSION pg_trgm;
           CREATE SCHEMA "My Schema";
           CREATE TYPE "My Schema"."Odd.Enum" AS ENUM ('it''s', 'y');
           CREATE TABLE "My Schema"."Weird.Table" ("Col A" citext NOT NULL, "e" "My Schema"."Odd.Enum",
             "Col B" text DEFAULT 'a\b');
           CREATE INDEX "Idx One" ON "My Schema"."Weird.Table" USING gin ("Col B" gin_trgm_ops);
           COMMENT ON COLUMN "My Schema"."Weird.Table"."Col A" IS 'back\slash';"#,
    );
}

#[test]
fn schema_diff_grants() {
    let db = TestDb::new("sd_grants_roles");
    db.rows(
        "DO $$ BEGIN
           CREATE ROLE sd_reader; CREATE ROLE sd_writer;
         EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    );
    fixture(
        "sd_grants",
        "CREATE TABLE t (id int, a text, b text);
         CREATE SEQUENCE s;
         CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';
         GRANT SELECT ON t TO sd_reader;
         GRANT SELECT (a), UPDATE (a) ON t TO sd_writer;
         GRANT USAGE ON SEQUENCE s TO sd_writer;",
        "CREATE TABLE t (id int, a text, b text);
         CREATE SEQUENCE s;
         CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';
         CREATE VIEW v AS SELECT id FROM t;
         GRANT SELECT, INSERT ON t TO sd_reader WITH GRANT OPTION;
         GRANT SELECT (a, b) ON t TO sd_writer;
         GRANT SELECT ON t TO sd_writer;
         GRANT SELECT ON v TO PUBLIC;
         REVOKE EXECUTE ON FUNCTION f() FROM PUBLIC;
         GRANT EXECUTE ON FUNCTION f() TO sd_reader;
         GRANT USAGE ON SCHEMA public TO sd_reader;
         REVOKE ALL ON SEQUENCE s FROM sd_writer;",
    );
}

#[test]
fn schema_diff_tables_altered_in_place() {
    fixture(
        "sd_table_alter",
        "CREATE TABLE m (k int, v text) PARTITION BY LIST (k);
         CREATE TABLE m1 PARTITION OF m FOR VALUES IN (1, 2);
         CREATE TABLE logs (id int) WITH (fillfactor = 70, autovacuum_enabled = false);
         CREATE UNLOGGED TABLE scratch (id int);
         CREATE TABLE t (id int GENERATED ALWAYS AS IDENTITY, g int GENERATED ALWAYS AS (id + 1) STORED);",
        "CREATE TABLE m (k int, v text) PARTITION BY LIST (k);
         CREATE TABLE m1 PARTITION OF m FOR VALUES IN (1, 2, 3);
         CREATE TABLE logs (id int) WITH (fillfactor = 80);
         CREATE TABLE scratch (id int);
         CREATE TABLE t (id int GENERATED BY DEFAULT AS IDENTITY, g int GENERATED ALWAYS AS (id + 2) STORED);",
    );
}
