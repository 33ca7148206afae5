//! `seed apply` / `seed create`: Hasura's seeds (hasura-cli.md §5.7), read from git.
//!
//! Seeds live in the project's seeds folder: `seeds_directory` (default `seeds`) for config v2,
//! `seeds/<database>/` for config v3. `seed apply` reads them from a revision (default `HEAD`;
//! `--worktree`/`--staged` on request), in file name order, and runs them all in one
//! transaction: every seed applies or none does. Like Hasura, nothing is recorded: seeds run
//! again every time. `seed create` writes `<ms>_<name>.sql` into the working tree, optionally
//! filled with the rows of tables as `INSERT` statements built in SQL (no `pg_dump` needed).
//!
//! As in [`crate::authoring`], the files to run or write are planned first ([`plan_seed_apply`],
//! [`plan_seed_create`]), so a refused command changes nothing. Nothing here prints or reads the
//! environment: the caller connects to the database and renders the plans and errors.

use crate::authoring::{database_folder, now_ms};
use crate::ledger::{quote_ident, quote_literal};
use crate::project::join_path as join;
use crate::project::sql::{line_col, line_col_of_byte, split_statements};
use crate::project::MigrationEntryKind;
use crate::source::{describe_tree, ProjectLocation, Repo, Source, SourceError, TreeRef};
use postgres::types::Type;
use postgres::SimpleQueryMessage;
use std::path::Path;

/// Errors of `seed apply` and `seed create`. Each carries what its message, causes and hints
/// need; the message is the `Display`.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// A `--file` that is not a `.sql` file.
    #[error("--file {file}: seed files must end in .sql")]
    NotSql {
        /// The file as given.
        file: String,
    },
    /// A `--file` that is not there.
    #[error("--file {file}: there is no such seed file in {dir}/ at {at}")]
    NoSuchFile {
        /// The file as given.
        file: String,
        /// The seeds folder.
        dir: String,
        /// The revision read.
        at: String,
        /// Up to 10 seed files of the folder, relative to it.
        names: Vec<String>,
        /// Whether the seeds were read from a revision (not the working tree or index).
        from_rev: bool,
    },
    /// No seed file to run.
    #[error("no seed files (*.sql) in {dir}/ at {at}{}", if *.exists { "" } else { " (the folder does not exist)" })]
    NoFiles {
        /// The seeds folder.
        dir: String,
        /// The revision read.
        at: String,
        /// Whether the folder exists.
        exists: bool,
        /// Whether the seeds were read from a revision.
        from_rev: bool,
    },
    /// A seed file that is not UTF-8.
    #[error("{path} @ {at} is not valid UTF-8")]
    NotUtf8 {
        /// The file.
        path: String,
        /// The revision read.
        at: String,
        /// The cause.
        #[source]
        source: std::string::FromUtf8Error,
    },
    /// A statement seeds cannot hold (transaction control, `COPY … FROM stdin`).
    #[error("{path}:{line}:{column} @ {at}: seeds cannot hold this statement; nothing was run")]
    Forbidden {
        /// The file.
        path: String,
        /// Where the statement starts.
        line: usize,
        /// Where the statement starts.
        column: usize,
        /// The revision read.
        at: String,
        /// The statement's first line.
        text: String,
    },
    /// A database operation failed before anything was changed.
    #[error("{what}: {}; nothing was changed", crate::db::describe_pg_error(.source))]
    Db {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: postgres::Error,
    },
    /// The commit of the seeds may or may not have happened.
    #[error("{0}; the seed files may or may not have been committed")]
    CommitUncertain(#[source] crate::execute::ExecError),
    /// A seed file failed; the transaction was rolled back.
    #[error("seed file {} failed; the transaction was rolled back and no seed was applied", .0.path)]
    Failed(Box<SeedFailure>),
    /// A `--from-table` that is neither `table` nor `schema.table`.
    #[error("--from-table {table:?}: expected table or schema.table")]
    BadTableName {
        /// The name as given.
        table: String,
    },
    /// A `--from-table` that names no table.
    #[error("--from-table {table}: no such table ({ident})")]
    NoSuchTable {
        /// The name as given.
        table: String,
        /// The name, quoted.
        ident: String,
    },
    /// A `--from-table` that names something else than a table.
    #[error("--from-table {table}: {name} is not a table")]
    NotATable {
        /// The name as given.
        table: String,
        /// What it names.
        name: String,
    },
    /// Writing the seed file failed.
    #[error("{what}")]
    Io {
        /// What failed.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Reading git or the working tree.
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// Where and how a seed file failed.
#[derive(Debug)]
pub struct SeedFailure {
    /// The file.
    pub path: String,
    /// The revision read.
    pub at: String,
    /// The server's error, or, for another failure, its description.
    pub error: Result<ServerError, String>,
}

/// A server's error in a seed file.
#[derive(Debug)]
pub struct ServerError {
    /// Line and column, from the server's position or by replaying the files.
    pub position: Option<(usize, usize)>,
    /// The text of that line.
    pub line_text: Option<String>,
    /// The failing statement's number in the file, when found by replaying.
    pub statement: Option<usize>,
    /// The message.
    pub message: String,
    /// The SQLSTATE.
    pub code: String,
    /// `DETAIL`.
    pub detail: Option<String>,
    /// `HINT`.
    pub hint: Option<String>,
    /// `CONTEXT`.
    pub context: Option<String>,
}

fn is_sql(name: &str) -> bool {
    name.len() > 4 && name[name.len() - 4..].eq_ignore_ascii_case(".sql")
}

/// The seeds folder of a project: `seeds/` (config v2) or `seeds/<database>/` (config v3).
pub fn seeds_dir(location: &ProjectLocation, database: Option<&str>) -> String {
    database_folder(location, &location.config.seeds_directory, database)
}

/// One seed file to run.
pub struct SeedFile {
    /// Path in the repository.
    pub path: String,
    /// Its SQL.
    sql: String,
}

/// `seed apply`, planned: the files, read and checked.
pub struct SeedPlan {
    /// The revision read, for messages.
    pub at: String,
    /// The commit read, if any.
    pub commit: Option<String>,
    /// The files, in the order they run.
    pub files: Vec<SeedFile>,
    /// What the caller should show (transaction wrappers ignored).
    pub notes: Vec<String>,
}

/// Every `.sql` file under `dir`, recursively, in name order (Hasura walks the folder the same
/// way): `(path, blob id)`.
fn walk(
    repo: &Repo,
    tree: &TreeRef,
    dir: &str,
    out: &mut Vec<(String, Option<String>)>,
) -> Result<bool, SourceError> {
    let Some(mut entries) = repo.list(tree, dir)? else {
        return Ok(false);
    };
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    for e in entries {
        let path = join(dir, &e.name);
        match e.kind {
            MigrationEntryKind::Dir => {
                walk(repo, tree, &path, out)?;
            }
            MigrationEntryKind::File if is_sql(&e.name) => out.push((path, e.id)),
            _ => {}
        }
    }
    Ok(true)
}

/// The seed files to run: every one of `dir`, or those named (relative to the seeds folder,
/// the project folder or the repository root).
fn choose(
    repo: &Repo,
    tree: &TreeRef,
    location: &ProjectLocation,
    dir: &str,
    names: &[String],
    from_rev: bool,
) -> Result<Vec<(String, Option<String>)>, SeedError> {
    let at = describe_tree(tree);
    let mut listed = Vec::new();
    let exists = walk(repo, tree, dir, &mut listed)?;
    let mut chosen: Vec<(String, Option<String>)> = Vec::new();
    if names.is_empty() {
        chosen = listed.clone();
    } else {
        for f in names {
            let f = f.trim_start_matches("./");
            if !is_sql(f) {
                return Err(SeedError::NotSql {
                    file: f.to_string(),
                });
            }
            // Relative to the seeds folder (Hasura); also accepted relative to the project
            // folder and to the repository root (`seeds/default/x.sql`).
            let candidates = [join(dir, f), join(&location.dir, f), f.to_string()];
            let found = candidates.iter().find_map(|c| {
                listed.iter().find(|(p, _)| p == c).cloned().or_else(|| {
                    repo.read_optional(tree, c)
                        .ok()
                        .flatten()
                        .map(|_| (c.clone(), None))
                })
            });
            match found {
                Some(x) => chosen.push(x),
                None => {
                    return Err(SeedError::NoSuchFile {
                        file: f.to_string(),
                        dir: dir.to_string(),
                        at,
                        names: listed
                            .iter()
                            .take(10)
                            .map(|(p, _)| {
                                p.strip_prefix(&format!("{dir}/")).unwrap_or(p).to_string()
                            })
                            .collect(),
                        from_rev,
                    })
                }
            }
        }
    }
    if chosen.is_empty() {
        return Err(SeedError::NoFiles {
            dir: dir.to_string(),
            at,
            exists,
            from_rev,
        });
    }
    Ok(chosen)
}

/// Plans `seed apply` from `tree` (read from `source`): chooses the files (`names`, or every one
/// of the seeds folder `dir`), reads them and refuses statements seeds cannot hold.
pub fn plan_seed_apply(
    repo: &Repo,
    source: &Source,
    tree: &TreeRef,
    location: &ProjectLocation,
    dir: &str,
    names: &[String],
) -> Result<SeedPlan, SeedError> {
    let at = describe_tree(tree);
    let from_rev = matches!(source, Source::Rev(_));
    let chosen = choose(repo, tree, location, dir, names, from_rev)?;
    let mut files = Vec::with_capacity(chosen.len());
    let mut notes = Vec::new();
    for (path, blob) in chosen {
        let bytes = repo.read(tree, &path, blob.as_deref())?;
        let sql = String::from_utf8(bytes).map_err(|source| SeedError::NotUtf8 {
            path: path.clone(),
            at: at.clone(),
            source,
        })?;
        let sql = match seed_sql(&sql) {
            Ok((text, wrapper)) => {
                if let Some(w) = wrapper {
                    notes.push(format!(
                        "note: {path}: transaction wrapper ignored ({w}): the seeds run in one transaction"
                    ));
                }
                text
            }
            Err((byte, text)) => {
                let (line, column) = line_col_of_byte(&sql, byte);
                return Err(SeedError::Forbidden {
                    path,
                    line,
                    column,
                    at,
                    text,
                });
            }
        };
        files.push(SeedFile { path, sql });
    }
    Ok(SeedPlan {
        commit: tree.commit().map(|c| c.to_string()),
        at,
        files,
        notes,
    })
}

/// Runs the planned seed files in one transaction; `on_file` is told of each before it runs.
pub fn apply_seeds(
    plan: &SeedPlan,
    client: &mut postgres::Client,
    on_file: &mut dyn FnMut(&str),
) -> Result<(), SeedError> {
    let failure = {
        let mut tx = client.transaction().map_err(|source| SeedError::Db {
            what: "starting the transaction".into(),
            source,
        })?;
        let mut failure = None;
        for (i, f) in plan.files.iter().enumerate() {
            on_file(&f.path);
            if let Err(e) = tx.batch_execute(&f.sql) {
                failure = Some((i, e));
                break;
            }
        }
        match failure {
            None => {
                tx.commit().map_err(|e| {
                    if crate::execute::commit_refused(&e) {
                        SeedError::Db {
                            what: "committing".into(),
                            source: e,
                        }
                    } else {
                        SeedError::CommitUncertain(crate::execute::ExecError::CommitUncertain(e))
                    }
                })?;
                None
            }
            // Dropping the transaction rolls it back.
            Some(f) => Some(f),
        }
    };
    if let Some((index, e)) = failure {
        return Err(seed_error(client, plan, index, &e));
    }
    Ok(())
}

/// The error for a seed file that failed (the transaction is already rolled back): file, line
/// and column from the server's position, or, for a runtime error without one, from replaying
/// the files in a transaction that is rolled back too.
fn seed_error(
    client: &mut postgres::Client,
    plan: &SeedPlan,
    index: usize,
    e: &postgres::Error,
) -> SeedError {
    let f = &plan.files[index];
    let failure = |error| {
        SeedError::Failed(Box::new(SeedFailure {
            path: f.path.clone(),
            at: plan.at.clone(),
            error,
        }))
    };
    let Some(dbe) = e.as_db_error() else {
        return failure(Err(crate::db::describe_pg_error(e)));
    };
    let mut position = match dbe.position() {
        Some(postgres::error::ErrorPosition::Original(p)) => Some(line_col(&f.sql, *p as usize)),
        _ => None,
    };
    let mut statement = None;
    if position.is_none() {
        if let Some((n, l, c)) = locate(client, &plan.files, index, dbe.code().code()) {
            position = Some((l, c));
            statement = Some(n);
        }
    }
    failure(Ok(ServerError {
        line_text: position.and_then(|(l, _)| f.sql.lines().nth(l - 1).map(str::to_string)),
        position,
        statement,
        message: dbe.message().to_string(),
        code: dbe.code().code().to_string(),
        detail: dbe.detail().map(str::to_string),
        hint: dbe.hint().map(str::to_string),
        context: dbe.where_().map(str::to_string),
    }))
}

/// Replays `files[..index]`, then looks for the failing statement of the file
/// ([`crate::execute::failing_statement`]), in a transaction that is always rolled back; returns
/// its number, line and column when it fails with the same SQLSTATE.
fn locate(
    client: &mut postgres::Client,
    files: &[SeedFile],
    index: usize,
    code: &str,
) -> Option<(usize, usize, usize)> {
    let sql = &files[index].sql;
    let statements = split_statements(sql);
    if statements.len() < 2 {
        return None;
    }
    let mut tx = client.transaction().ok()?;
    for f in &files[..index] {
        tx.batch_execute(&f.sql).ok()?;
    }
    crate::execute::failing_statement(&mut tx, sql, code).map(|l| (l.statement, l.line, l.column))
}

/// The SQL of a seed file to run inside git-migrate's one transaction, with the whole-file
/// transaction wrapper it had (blanked out, see [`crate::project::txcontrol`]), or the first
/// statement it must not hold (byte offset, first line): transaction control anywhere else
/// would end the transaction, and `COPY … FROM stdin` needs data the simple protocol cannot
/// send.
fn seed_sql(sql: &str) -> Result<(String, Option<String>), (usize, String)> {
    let first_line = |r: std::ops::Range<usize>| {
        let line = sql[r.clone()]
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        (r.start, line)
    };
    let (text, wrapper) = match crate::project::txcontrol::runnable(sql) {
        Ok((text, wrapper)) => (text.into_owned(), wrapper.map(|w| w.describe())),
        Err(found) => return Err(first_line(found[0].span.clone())),
    };
    for r in split_statements(&text) {
        let lower = text[r.clone()].to_ascii_lowercase();
        let mut words = lower.split_whitespace();
        if words.next() == Some("copy")
            && (lower.contains("from stdin") || lower.contains("from\nstdin"))
        {
            return Err(first_line(r));
        }
    }
    Ok((text, wrapper))
}

/// `seed create`, planned: the file to write.
pub struct SeedCreatePlan {
    /// Its path (repository-relative).
    pub path: String,
    /// Its version.
    pub version: i64,
    /// The seeds folder.
    pub dir: String,
    content: String,
}

/// The content of a new seed file given no SQL: comments saying what to write.
pub fn seed_template(dir: &str) -> String {
    format!(
        "-- Seed data: write INSERT statements here.\n-- `git migrate seed apply` runs every file in {dir}/ in one transaction.\n"
    )
}

/// Plans `seed create NAME` in the seeds folder `dir` of the working tree at `root`: the first
/// free `<ms>_<name>.sql`.
pub fn plan_seed_create(root: &Path, dir: &str, name: &str, content: String) -> SeedCreatePlan {
    let mut version = now_ms();
    let path = loop {
        let p = join(dir, &format!("{version}_{name}.sql"));
        if !root.join(&p).exists() {
            break p;
        }
        version += 1;
    };
    SeedCreatePlan {
        path,
        version,
        dir: dir.to_string(),
        content,
    }
}

/// Writes the planned seed file under `root`.
pub fn apply_seed_create(plan: &SeedCreatePlan, root: &Path) -> Result<(), SeedError> {
    let abs = root.join(&plan.path);
    if let Some(parent) = abs.parent() {
        std::fs::create_dir_all(parent).map_err(|source| SeedError::Io {
            what: format!("cannot create {}/", plan.dir),
            source,
        })?;
    }
    std::fs::write(&abs, plan.content.as_bytes()).map_err(|source| SeedError::Io {
        what: format!("cannot write {}", plan.path),
        source,
    })
}

/// Rows of tables as INSERT statements (pg_dump --data-only --column-inserts, in SQL): values
/// quoted by the server with `quote_nullable`, generated columns left out, `OVERRIDING SYSTEM
/// VALUE` for identity columns, rows in primary key order, and the owned sequences set to
/// their current values. Read in one repeatable-read snapshot.
pub fn dump_tables(
    client: &mut postgres::Client,
    tables: &[String],
) -> Result<(String, Vec<(String, usize)>), SeedError> {
    let fail = |what: &str| {
        let what = what.to_string();
        move |source: postgres::Error| SeedError::Db { what, source }
    };
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(fail("starting a read-only transaction"))?;
    let version: i32 = tx
        .query_typed_one("SELECT current_setting('server_version_num')::int", &[])
        .map_err(fail("reading the server version"))?
        .get(0);
    let generated = if version >= 120000 {
        "a.attgenerated::text"
    } else {
        "''"
    };
    let mut out = String::new();
    let mut counts = Vec::new();
    for t in tables {
        // Like Hasura: `schema.table` or `table`, each part quoted as given.
        let parts: Vec<&str> = t.split('.').collect();
        let ident = match parts.as_slice() {
            [table] if !table.is_empty() => quote_ident(table),
            [schema, table] if !schema.is_empty() && !table.is_empty() => {
                format!("{}.{}", quote_ident(schema), quote_ident(table))
            }
            _ => return Err(SeedError::BadTableName { table: t.clone() }),
        };
        let row = tx
            .query_typed_opt(
                "SELECT n.nspname::text, c.relname::text, c.relkind::text
                   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.oid = to_regclass($1)",
                &[(&ident, Type::TEXT)],
            )
            .map_err(fail("looking up the table"))?;
        let Some(row) = row else {
            return Err(SeedError::NoSuchTable {
                table: t.clone(),
                ident,
            });
        };
        let (schema, name, kind): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        if kind != "r" && kind != "p" {
            return Err(SeedError::NotATable {
                table: t.clone(),
                name: format!("{schema}.{name}"),
            });
        }
        let qualified = format!("{}.{}", quote_ident(&schema), quote_ident(&name));
        let columns = tx
            .query_typed(
                &format!(
                    "SELECT a.attname::text, a.attidentity::text, {generated}
                       FROM pg_catalog.pg_attribute a
                      WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
                      ORDER BY a.attnum"
                ),
                &[(&qualified, Type::TEXT)],
            )
            .map_err(fail("reading the table's columns"))?;
        let mut cols = Vec::new();
        let mut identity_always = false;
        for c in &columns {
            let (col, identity, gen): (String, String, String) = (c.get(0), c.get(1), c.get(2));
            if !gen.is_empty() {
                continue;
            }
            identity_always |= identity == "a";
            cols.push(col);
        }
        let pk: Vec<String> = tx
            .query_typed(
                "SELECT a.attname::text
                   FROM pg_catalog.pg_index i
                   CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                  WHERE i.indrelid = $1::text::regclass AND i.indisprimary
                  ORDER BY k.ord",
                &[(&qualified, Type::TEXT)],
            )
            .map_err(fail("reading the primary key"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let values = if cols.is_empty() {
            "''".to_string()
        } else {
            format!(
                "concat_ws(', ', {})",
                cols.iter()
                    .map(|c| format!("quote_nullable(t.{})", quote_ident(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let order = if pk.is_empty() {
            String::new()
        } else {
            format!(
                " ORDER BY {}",
                pk.iter()
                    .map(|c| format!("t.{}", quote_ident(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let only = if kind == "r" { "ONLY " } else { "" };
        let msgs = tx
            .simple_query(&format!(
                "SELECT {values} FROM {only}{qualified} AS t{order}"
            ))
            .map_err(fail("reading the rows"))?;
        let head = if cols.is_empty() {
            format!("INSERT INTO {qualified} DEFAULT VALUES;")
        } else {
            format!(
                "INSERT INTO {qualified} ({}){} VALUES",
                cols.iter()
                    .map(|c| quote_ident(c))
                    .collect::<Vec<_>>()
                    .join(", "),
                if identity_always {
                    " OVERRIDING SYSTEM VALUE"
                } else {
                    ""
                }
            )
        };
        let mut lines = Vec::new();
        for m in &msgs {
            if let SimpleQueryMessage::Row(r) = m {
                if cols.is_empty() {
                    lines.push(head.clone());
                } else {
                    lines.push(format!("{head} ({});", r.get(0).unwrap_or_default()));
                }
            }
        }
        // Sequences the table owns (serial and identity columns), set to where they are now.
        let seqs = tx
            .query_typed(
                "SELECT s FROM (
                   SELECT pg_catalog.pg_get_serial_sequence($1, a.attname) AS s, a.attnum
                     FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped) x
                  WHERE s IS NOT NULL ORDER BY attnum",
                &[(&qualified, Type::TEXT)],
            )
            .map_err(fail("reading the table's sequences"))?;
        let mut setvals = Vec::new();
        for s in &seqs {
            let seq: String = s.get(0);
            let r = tx
                .query_typed_one(&format!("SELECT last_value, is_called FROM {seq}"), &[])
                .map_err(fail("reading a sequence"))?;
            let (last, called): (i64, bool) = (r.get(0), r.get(1));
            setvals.push(format!(
                "SELECT pg_catalog.setval({}, {last}, {called});",
                quote_literal(&seq)
            ));
        }
        out.push_str(&format!("-- {schema}.{name}: {} row(s)\n", lines.len()));
        for l in &lines {
            out.push_str(l);
            out.push('\n');
        }
        for s in &setvals {
            out.push_str(s);
            out.push('\n');
        }
        out.push('\n');
        counts.push((format!("{schema}.{name}"), lines.len()));
    }
    tx.rollback()
        .map_err(fail("ending the read-only transaction"))?;
    Ok((out, counts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::sql::line_col_of_byte;

    #[test]
    fn forbidden_statements() {
        let bad = |sql: &str| seed_sql(sql).err();
        assert!(bad("insert into t values (1);").is_none());
        assert!(bad("do $$ begin perform 1; end $$;").is_none());
        let sql = "insert into t values (1);\nBEGIN;\ninsert into t values (2);\nCOMMIT;\n";
        let (byte, line) = bad(sql).unwrap();
        assert_eq!(line_col_of_byte(sql, byte), (2, 1));
        assert_eq!(line, "BEGIN");
        assert!(bad("select 1; start transaction;").is_some());
        // The parser, not a word list: these were missed or misread by the old splitter.
        assert!(bad("insert into t values (1); prepare transaction 'x';").is_some());
        assert!(bad("create function g() returns int language sql begin atomic select 1; end;\ninsert into t values (1);").is_none());
        assert!(bad("COPY t (a) FROM stdin;\n1\n\\.\n").is_some());
        assert!(bad("copy t from '/tmp/x';").is_none());
        // A whole-file wrapper is accepted, and blanked out.
        let (text, wrapper) = seed_sql("BEGIN;\ninsert into t values (1);\nCOMMIT;\n").unwrap();
        assert_eq!(wrapper.as_deref(), Some("BEGIN … COMMIT"));
        assert!(!text.contains("BEGIN") && text.contains("insert into t values (1);"));
        assert!(is_sql("a.SQL") && is_sql("1_x.sql") && !is_sql(".sql") && !is_sql("x.txt"));
    }
}
