//! The schema differ against real servers: applying `diff(a, b)` to a database in state `a`
//! yields the catalog fingerprint of `b`.
//!
//! Fingerprints are compared without column positions: a column the differ adds goes last
//! (`ALTER TABLE … ADD COLUMN`), and putting it elsewhere would mean rebuilding the table and
//! its rows, so the model leaves column order out on purpose.

use std::collections::BTreeMap;

use git_migrate::schema::{self, Model, Statement};
use git_migrate::verify::fingerprint::Fingerprint;
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

/// Two databases reused across cases: each case resets them with `reset`.
struct Pair {
    a: Client,
    b: Client,
    _dbs: (TestDb, TestDb),
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
            _dbs: (da, db),
        }
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
fn schema_diff_changes_enum_values() {
    fixture(
        "sd_enum",
        "CREATE TYPE mood AS ENUM ('sad', 'ok');
         CREATE TABLE person (id int PRIMARY KEY, m mood NOT NULL DEFAULT 'ok', ms mood[]);
         CREATE VIEW happy AS SELECT id FROM person WHERE m = 'ok';
         CREATE FUNCTION best() RETURNS mood LANGUAGE sql AS $$ SELECT 'ok'::mood $$;
         CREATE TYPE unused AS ENUM ('x', 'y', 'z');",
        "CREATE TYPE mood AS ENUM ('awful', 'sad', 'meh', 'ok', 'happy');
         CREATE TABLE person (id int PRIMARY KEY, m mood NOT NULL DEFAULT 'ok', ms mood[]);
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
    fixture(
        "sd_types",
        "CREATE DOMAIN pos AS int CHECK (VALUE > 0);
         CREATE TYPE pair AS (a int, b text);
         CREATE TABLE t (id pos, p pair);
         CREATE FUNCTION add(x int, y int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x + y';
         CREATE MATERIALIZED VIEW mv AS SELECT id, add(id::int, 1) AS next FROM t WITH NO DATA;",
        "CREATE SCHEMA app;
         CREATE DOMAIN pos AS bigint DEFAULT 1 NOT NULL CHECK (VALUE > 0);
         CREATE TYPE pair AS (a int, b text, c date);
         CREATE TYPE span AS RANGE (subtype = int4);
         CREATE TABLE t (id pos, p pair, s span);
         CREATE FUNCTION add(x int, y int) RETURNS int LANGUAGE sql IMMUTABLE
           BEGIN ATOMIC SELECT x + y + 0; END;
         CREATE PROCEDURE app.noop() LANGUAGE sql AS 'SELECT 1';
         CREATE TABLE app.g (a int, b int GENERATED ALWAYS AS (a * 2) STORED);
         CREATE MATERIALIZED VIEW mv AS SELECT id, add(id::int, 1) AS next FROM t;
         CREATE UNIQUE INDEX mv_id ON mv (id);
         CREATE VIEW app.v WITH (security_barrier) AS SELECT * FROM app.g WHERE a > 0;",
    );
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

    // A grant (not modelled) on a table the diff recreates would be lost: refused.
    c.batch_execute(
        "DROP RULE t_log ON t; DROP AGGREGATE mysum(int);
         CREATE TABLE g (id int) PARTITION BY LIST (id); GRANT SELECT ON g TO PUBLIC;",
    )
    .unwrap();
    let a = model(&mut c);
    c.batch_execute(
        "DROP TABLE g; CREATE TABLE g (id int) PARTITION BY HASH (id); GRANT SELECT ON g TO PUBLIC;",
    )
    .unwrap();
    let b = model(&mut c);
    let e = schema::diff(&a, &b).expect_err("refused").to_string();
    assert!(e.contains("public.g") && e.contains("grant"), "{e}");
}
