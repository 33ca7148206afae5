//! Legacy YAML migrations (`up.yaml` / `down.yaml`): the format the Hasura CLI wrote before
//! `up.sql`, a list of metadata API calls. Only `run_sql` carries schema changes (its SQL is in
//! `args.sql`); every other call (`track_table`, `create_object_relationship`,
//! `add_existing_table_or_view`, …) is metadata, which git-migrate takes from `metadata/` as a
//! whole, so those calls are skipped and named. `bulk` calls are read through.
//!
//! `args.cascade` on `run_sql` told Hasura to drop the *metadata* that depended on what the SQL
//! dropped (relationships, permissions); it never changed the SQL. Metadata comes from
//! `metadata/` here, so honouring it needs nothing: the snapshot deployed with the commit is
//! already the one without those objects.

use yaml_serde::Value;

/// What a YAML migration runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct YamlMigration {
    /// The SQL of its `run_sql` calls, in order, each ended by `;` on a line of its own.
    pub sql: String,
    /// How many `run_sql` calls it has.
    pub run_sql: usize,
    /// The other calls, by type (`track_table`), in order: skipped.
    pub skipped: Vec<String>,
}

/// Whether a migration file is a legacy YAML one (by its path).
pub(crate) fn is_yaml(path: &str) -> bool {
    path.ends_with(".yaml") || path.ends_with(".yml")
}

/// Reads a YAML migration. `Err` says why it cannot be read (with a line when the YAML parser
/// gives one).
pub fn read(text: &str) -> Result<YamlMigration, String> {
    let value: Value = if text.trim().is_empty() {
        Value::Null
    } else {
        yaml_serde::from_str(text).map_err(|e| match e.location() {
            Some(l) => format!("line {}: {e}", l.line()),
            None => e.to_string(),
        })?
    };
    let mut out = YamlMigration::default();
    match value {
        Value::Null => {}
        Value::Sequence(calls) => {
            for (i, call) in calls.iter().enumerate() {
                walk(call, &format!("call {}", i + 1), &mut out)?;
            }
        }
        other @ Value::Mapping(_) => walk(&other, "the call", &mut out)?,
        _ => return Err("expected a list of API calls (`- type: run_sql`)".into()),
    }
    Ok(out)
}

fn walk(call: &Value, at: &str, out: &mut YamlMigration) -> Result<(), String> {
    let Some(kind) = call.get("type").and_then(Value::as_str) else {
        return Err(format!("{at} has no `type`"));
    };
    let args = call.get("args");
    match kind {
        "run_sql" => {
            let sql = args
                .and_then(|a| a.get("sql"))
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{at} (run_sql) has no `args.sql` text"))?;
            out.run_sql += 1;
            out.sql.push_str(sql.trim_end());
            out.sql.push_str("\n;\n");
        }
        "bulk" => {
            if let Some(Value::Sequence(calls)) = args {
                for (i, c) in calls.iter().enumerate() {
                    walk(c, &format!("{at}, bulk call {}", i + 1), out)?;
                }
            }
        }
        other => out.skipped.push(other.to_string()),
    }
    Ok(())
}

/// `2 API call(s) skipped (track_table, create_object_relationship)`-style summary of skipped
/// calls, with repeats counted.
pub fn describe_skipped(skipped: &[String]) -> String {
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for s in skipped {
        match kinds.iter_mut().find(|(k, _)| k == s) {
            Some((_, n)) => *n += 1,
            None => kinds.push((s.clone(), 1)),
        }
    }
    kinds
        .into_iter()
        .map(|(k, n)| if n == 1 { k } else { format!("{k} ×{n}") })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_sql_calls_become_sql_and_the_rest_is_skipped() {
        let text = "- args:\n    cascade: false\n    sql: CREATE TABLE a (id serial primary key)\n  type: run_sql\n- args:\n    name: a\n    schema: public\n  type: add_existing_table_or_view\n- type: run_sql\n  args:\n    sql: |\n      create table b (x int);\n      insert into b values (1);\n- type: track_table\n  args: {name: b}\n- type: track_table\n  args: {name: c}\n";
        let m = read(text).unwrap();
        assert_eq!(m.run_sql, 2);
        assert_eq!(
            m.sql,
            "CREATE TABLE a (id serial primary key)\n;\ncreate table b (x int);\ninsert into b values (1);\n;\n"
        );
        assert_eq!(
            m.skipped,
            vec!["add_existing_table_or_view", "track_table", "track_table"]
        );
        assert_eq!(
            describe_skipped(&m.skipped),
            "add_existing_table_or_view, track_table ×2"
        );
    }

    #[test]
    fn empty_and_metadata_only_downs_have_no_sql() {
        for text in [
            "[]",
            "",
            "\n",
            "- type: untrack_table\n  args: {table: a}\n",
        ] {
            let m = read(text).unwrap();
            assert!(
                crate::project::sql::is_effectively_empty(&m.sql),
                "{text:?}"
            );
        }
    }

    #[test]
    fn bulk_is_read_through_and_bad_input_says_where() {
        let m = read("- type: bulk\n  args:\n  - type: run_sql\n    args: {sql: select 1}\n  - type: track_table\n    args: {name: t}\n").unwrap();
        assert_eq!((m.run_sql, m.skipped.len()), (1, 1));
        assert!(read("- type: run_sql\n  args: {}\n")
            .unwrap_err()
            .contains("call 1 (run_sql) has no `args.sql`"));
        assert!(read("- args: {sql: x}\n")
            .unwrap_err()
            .contains("no `type`"));
        assert!(read("a: [").unwrap_err().starts_with("line "));
        assert!(read("42").is_err());
        assert!(is_yaml("m/1_x/up.yaml") && !is_yaml("m/1_x/up.sql"));
    }
}
