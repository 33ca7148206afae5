//! `seed apply` / `seed create`: Hasura's seeds (hasura-cli.md §5.7), read from git.
//!
//! Seeds live in the project's seeds folder: `seeds_directory` (default `seeds`) for config v2,
//! `seeds/<database>/` for config v3. `seed apply` reads them from a revision (default `HEAD`;
//! `--worktree`/`--staged` on request), in file name order, and runs them all in one
//! transaction: every seed applies or none does. Like Hasura, nothing is recorded: seeds run
//! again every time. `seed create` writes `<ms>_<name>.sql` into the working tree, optionally
//! filled with the rows of tables as `INSERT` statements built in SQL (no `pg_dump` needed).

use super::authoring::{database_folder, join, now_ms, validate_name, work_project};
use super::error::{CommandError, Kind};
use super::{Ctx, SourceArgs};
use clap::{Args, Subcommand};
use git_migrate_core::ledger::{quote_ident, quote_literal};
use git_migrate_core::project::sql::{line_col, line_col_of_byte, split_statements};
use git_migrate_core::project::MigrationEntryKind;
use git_migrate_core::source::{describe_tree, ProjectLocation, TreeRef};
use postgres::types::Type;
use postgres::SimpleQueryMessage;
use std::path::PathBuf;

/// `seed` subcommands.
#[derive(Subcommand, Debug)]
pub enum SeedCommand {
    /// Run seed files from the revision in one transaction
    Apply(SeedApplyArgs),
    /// Write a new seed file
    Create(SeedCreateArgs),
}

/// Arguments of `seed apply`.
#[derive(Args, Debug)]
pub struct SeedApplyArgs {
    /// Revision to read the seed files from (default HEAD).
    pub rev: Option<String>,
    /// A seed file to run, relative to the seeds folder (repeatable; default: every .sql file,
    /// in name order).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<String>,
    /// List the files that would run and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Arguments of `seed create`.
#[derive(Args, Debug)]
pub struct SeedCreateArgs {
    /// Seed name (the file is <ms>_<name>.sql).
    pub name: String,
    /// Fill the file with the rows of this table (schema.table or table; names are taken
    /// literally, as Hasura quotes them), as INSERT statements (repeatable).
    #[arg(long = "from-table", value_name = "TABLE")]
    pub from_tables: Vec<String>,
    /// The file's SQL.
    #[arg(long, value_name = "SQL", conflicts_with_all = ["from_tables", "sql_from_file"], allow_hyphen_values = true)]
    pub sql: Option<String>,
    /// Copy the file's SQL from this file.
    #[arg(long, value_name = "FILE", conflicts_with = "from_tables")]
    pub sql_from_file: Option<PathBuf>,
}

/// `git migrate seed …`.
pub(crate) fn cmd_seed(ctx: &Ctx, cmd: &SeedCommand) -> Result<(), CommandError> {
    match cmd {
        SeedCommand::Apply(a) => cmd_seed_apply(ctx, a),
        SeedCommand::Create(a) => cmd_seed_create(ctx, a),
    }
}

/// The seeds folder of a project: `seeds/` (config v2) or `seeds/<database>/` (config v3).
fn seeds_dir(location: &ProjectLocation, database: Option<&str>) -> Result<String, CommandError> {
    Ok(database_folder(
        location,
        &location.config.seeds_directory,
        database,
    ))
}

fn is_sql(name: &str) -> bool {
    name.len() > 4 && name[name.len() - 4..].eq_ignore_ascii_case(".sql")
}

/// One seed file to run.
struct SeedFile {
    /// Path in the repository.
    path: String,
    /// Its SQL.
    sql: String,
}

/// Every `.sql` file under `dir`, recursively, in name order (Hasura walks the folder the same
/// way): `(path, blob id)`.
fn walk(
    ctx: &Ctx,
    tree: &TreeRef,
    dir: &str,
    out: &mut Vec<(String, Option<String>)>,
) -> Result<bool, CommandError> {
    let Some(mut entries) = ctx.repo.list(tree, dir)? else {
        return Ok(false);
    };
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    for e in entries {
        let path = join(dir, &e.name);
        match e.kind {
            MigrationEntryKind::Dir => {
                walk(ctx, tree, &path, out)?;
            }
            MigrationEntryKind::File if is_sql(&e.name) => out.push((path, e.id)),
            _ => {}
        }
    }
    Ok(true)
}

/// The SQL of a seed file to run inside git-migrate's one transaction, with the whole-file
/// transaction wrapper it had (blanked out, see [`git_migrate_core::project::txcontrol`]), or the first
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
    let (text, wrapper) = match git_migrate_core::project::txcontrol::runnable(sql) {
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

/// `git migrate seed apply`.
fn cmd_seed_apply(ctx: &Ctx, args: &SeedApplyArgs) -> Result<(), CommandError> {
    let source = args.source.source(args.rev.as_deref())?;
    let tree = ctx.repo.tree(&source)?;
    let at = describe_tree(&tree);
    let location = ctx
        .repo
        .locate_project(&tree, ctx.project_dir().as_deref())?;
    let dir = seeds_dir(&location, ctx.database_name.as_deref())?;
    let mut listed = Vec::new();
    let exists = walk(ctx, &tree, &dir, &mut listed)?;
    let mut chosen: Vec<(String, Option<String>)> = Vec::new();
    if args.files.is_empty() {
        chosen = listed.clone();
    } else {
        for f in &args.files {
            let f = f.trim_start_matches("./");
            if !is_sql(f) {
                return Err(CommandError::new(
                    Kind::Usage,
                    format!("--file {f}: seed files must end in .sql"),
                ));
            }
            // Relative to the seeds folder (Hasura); also accepted relative to the project
            // folder and to the repository root (`seeds/default/x.sql`).
            let candidates = [join(&dir, f), join(&location.dir, f), f.to_string()];
            let found = candidates.iter().find_map(|c| {
                listed.iter().find(|(p, _)| p == c).cloned().or_else(|| {
                    ctx.repo
                        .read_optional(&tree, c)
                        .ok()
                        .flatten()
                        .map(|_| (c.clone(), None))
                })
            });
            match found {
                Some(x) => chosen.push(x),
                None => {
                    let names: Vec<String> = listed
                        .iter()
                        .take(10)
                        .map(|(p, _)| p.strip_prefix(&format!("{dir}/")).unwrap_or(p).to_string())
                        .collect();
                    let mut e = CommandError::new(
                        Kind::Usage,
                        format!("--file {f}: there is no such seed file in {dir}/ at {at}"),
                    );
                    e = if names.is_empty() {
                        e.hint(format!("{dir}/ holds no .sql files at {at}"))
                    } else {
                        e.hint(format!("seed files there: {}", names.join(", ")))
                    };
                    if matches!(source, git_migrate_core::source::Source::Rev(_)) {
                        e = e.hint(
                            "seeds are read from HEAD; pass --worktree for files not committed yet",
                        );
                    }
                    return Err(e);
                }
            }
        }
    }
    if chosen.is_empty() {
        let mut e = CommandError::new(
            Kind::Usage,
            format!(
                "no seed files (*.sql) in {dir}/ at {at}{}",
                if exists {
                    ""
                } else {
                    " (the folder does not exist)"
                }
            ),
        );
        if matches!(source, git_migrate_core::source::Source::Rev(_)) {
            e = e.hint("seeds are read from HEAD; pass --worktree for files not committed yet");
        }
        return Err(e.hint("create one with `git migrate seed create <name>`"));
    }
    let mut files = Vec::with_capacity(chosen.len());
    for (path, blob) in chosen {
        let bytes = ctx.repo.read(&tree, &path, blob.as_deref())?;
        let sql = String::from_utf8(bytes).map_err(|e| {
            CommandError::new(Kind::Usage, format!("{path} @ {at} is not valid UTF-8"))
                .cause(e.to_string())
                .hint("SQL files must be UTF-8")
        })?;
        let sql = match seed_sql(&sql) {
            Ok((text, wrapper)) => {
                if let Some(w) = wrapper {
                    ctx.ui.info(&format!(
                        "note: {path}: transaction wrapper ignored ({w}): the seeds run in one transaction"
                    ));
                }
                text
            }
            Err((byte, line)) => {
                let (l, c) = line_col_of_byte(&sql, byte);
                return Err(CommandError::new(
                    Kind::Usage,
                    format!("{path}:{l}:{c} @ {at}: seeds cannot hold this statement; nothing was run"),
                )
                .cause(format!("  | {line}"))
                .hint("git-migrate runs all seeds in one transaction: remove the BEGIN/COMMIT/ROLLBACK (a single BEGIN … COMMIT around the whole file is accepted)")
                .hint("write rows as INSERT statements instead of COPY … FROM stdin (`git migrate seed create --from-table` does)"));
            }
        };
        files.push(SeedFile { path, sql });
    }
    let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    if args.dry_run {
        if ctx.json {
            let v = serde_json::json!({"source": at, "files": names, "dry_run": true});
            ctx.ui
                .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
        } else {
            ctx.ui.out(&format!(
                "Would run {} seed file(s) from {at} in one transaction:",
                files.len()
            ));
            for n in &names {
                ctx.ui.out(&format!("  {n}"));
            }
            ctx.ui.info("dry run: nothing was changed");
        }
        return Ok(());
    }

    let (target, mut client) = ctx.connect()?;
    let started = std::time::Instant::now();
    let failure = {
        let mut tx = client
            .transaction()
            .map_err(|e| db_error("starting the transaction", e))?;
        let mut failure = None;
        for (i, f) in files.iter().enumerate() {
            if ctx.ui.verbose > 0 && !ctx.json {
                ctx.ui.info(&format!("running {}", f.path));
            }
            if let Err(e) = tx.batch_execute(&f.sql) {
                failure = Some((i, e));
                break;
            }
        }
        match failure {
            None => {
                tx.commit().map_err(|e| {
                    if git_migrate_core::execute::commit_refused(&e) {
                        db_error("committing", e)
                    } else {
                        CommandError::new(
                            Kind::Failure,
                            format!(
                                "{}; the seed files may or may not have been committed",
                                git_migrate_core::execute::ExecError::CommitUncertain(e)
                            ),
                        )
                        .hint("look at the seeded tables before running the seeds again")
                    }
                })?;
                None
            }
            // Dropping the transaction rolls it back.
            Some(f) => Some(f),
        }
    };
    if let Some((index, e)) = failure {
        return Err(seed_error(&mut client, &files, index, &e, &at));
    }
    let secs = started.elapsed().as_secs_f64();
    if ctx.json {
        let v = serde_json::json!({
            "source": at,
            "commit": tree.commit().map(|c| c.to_string()),
            "files": names,
            "database": target.redacted(),
            "seconds": secs,
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        ctx.ui.out(&format!(
            "Applied {} seed file(s) from {at} in one transaction in {secs:.2}s:",
            files.len()
        ));
        for n in &names {
            ctx.ui.out(&format!("  {n}"));
        }
    }
    Ok(())
}

fn db_error(what: &str, e: postgres::Error) -> CommandError {
    CommandError::new(
        Kind::Failure,
        format!(
            "{what}: {}; nothing was changed",
            git_migrate_core::db::describe_pg_error(&e)
        ),
    )
}

/// The error for a seed file that failed (the transaction is already rolled back): file, line
/// and column from the server's position, or, for a runtime error without one, from replaying
/// the files in a transaction that is rolled back too.
fn seed_error(
    client: &mut postgres::Client,
    files: &[SeedFile],
    index: usize,
    e: &postgres::Error,
    at: &str,
) -> CommandError {
    let f = &files[index];
    let mut ce = CommandError::new(
        Kind::Failure,
        format!(
            "seed file {} failed; the transaction was rolled back and no seed was applied",
            f.path
        ),
    );
    let Some(dbe) = e.as_db_error() else {
        return ce.cause(git_migrate_core::db::describe_pg_error(e));
    };
    let mut position = match dbe.position() {
        Some(postgres::error::ErrorPosition::Original(p)) => Some(line_col(&f.sql, *p as usize)),
        _ => None,
    };
    let mut statement = None;
    if position.is_none() {
        if let Some((n, l, c)) = locate(client, files, index, dbe.code().code()) {
            position = Some((l, c));
            statement = Some(n);
        }
    }
    let loc = match position {
        Some((l, c)) => format!("{}:{l}:{c}", f.path),
        None => f.path.clone(),
    };
    ce = ce.cause(format!(
        "{loc} @ {at}: {} (SQLSTATE {})",
        dbe.message(),
        dbe.code().code()
    ));
    if let Some((l, c)) = position {
        if let Some(line) = f.sql.lines().nth(l - 1) {
            ce = ce
                .cause(format!("  | {line}"))
                .cause(format!("  | {}^", " ".repeat(c.saturating_sub(1))));
        }
    }
    if let Some(n) = statement {
        ce = ce.cause(format!("failing statement: #{n} of the file"));
    }
    if let Some(d) = dbe.detail() {
        ce = ce.cause(format!("detail: {d}"));
    }
    if let Some(h) = dbe.hint() {
        ce = ce.cause(format!("server hint: {h}"));
    }
    if let Some(w) = dbe.where_() {
        ce = ce.cause(format!("context: {w}"));
    }
    ce.hint("fix the seed file (and commit it), then run `git migrate seed apply` again")
}

/// Replays `files[..index]`, then looks for the failing statement of the file
/// ([`git_migrate_core::execute::failing_statement`]), in a transaction that is always rolled back; returns
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
    git_migrate_core::execute::failing_statement(&mut tx, sql, code)
        .map(|l| (l.statement, l.line, l.column))
}

/// `git migrate seed create`.
fn cmd_seed_create(ctx: &Ctx, args: &SeedCreateArgs) -> Result<(), CommandError> {
    validate_name("seed name", &args.name)?;
    let wp = work_project(ctx)?;
    let dir = seeds_dir(&wp.location, ctx.database_name.as_deref())?;
    let mut tables = Vec::new();
    let content = if !args.from_tables.is_empty() {
        let (_, mut client) = ctx.connect()?;
        let (sql, t) = dump_tables(&mut client, &args.from_tables)?;
        tables = t;
        sql
    } else if let Some(s) = &args.sql {
        s.clone()
    } else if let Some(f) = &args.sql_from_file {
        let bytes = std::fs::read(f).map_err(|e| {
            CommandError::new(
                Kind::Usage,
                format!("cannot read --sql-from-file {}", f.display()),
            )
            .cause(e.to_string())
        })?;
        String::from_utf8(bytes).map_err(|e| {
            CommandError::new(Kind::Usage, "the seed SQL is not valid UTF-8").cause(e.to_string())
        })?
    } else {
        format!(
            "-- Seed data: write INSERT statements here.\n-- `git migrate seed apply` runs every file in {dir}/ in one transaction.\n"
        )
    };
    let mut version = now_ms();
    let path = loop {
        let p = join(&dir, &format!("{version}_{}.sql", args.name));
        if !wp.root.join(&p).exists() {
            break p;
        }
        version += 1;
    };
    let abs = wp.root.join(&path);
    if let Some(parent) = abs.parent() {
        std::fs::create_dir_all(parent).map_err(|e| {
            CommandError::new(Kind::Failure, format!("cannot create {dir}/")).cause(e.to_string())
        })?;
    }
    std::fs::write(&abs, content.as_bytes()).map_err(|e| {
        CommandError::new(Kind::Failure, format!("cannot write {path}")).cause(e.to_string())
    })?;
    if ctx.json {
        let v = serde_json::json!({
            "path": path,
            "version": version,
            "name": args.name,
            "tables": tables.iter().map(|(t, n)| serde_json::json!({"table": t, "rows": n})).collect::<Vec<_>>(),
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        ctx.ui.out(&format!("Created {path}"));
        for (t, n) in &tables {
            ctx.ui.out(&format!("  {t}: {n} row(s)"));
        }
        if args.from_tables.is_empty() && args.sql.is_none() && args.sql_from_file.is_none() {
            ctx.ui
                .info("the file holds only comments: write its INSERT statements, then commit it");
        }
    }
    Ok(())
}

/// Rows of tables as INSERT statements (pg_dump --data-only --column-inserts, in SQL): values
/// quoted by the server with `quote_nullable`, generated columns left out, `OVERRIDING SYSTEM
/// VALUE` for identity columns, rows in primary key order, and the owned sequences set to
/// their current values. Read in one repeatable-read snapshot.
fn dump_tables(
    client: &mut postgres::Client,
    tables: &[String],
) -> Result<(String, Vec<(String, usize)>), CommandError> {
    let fail = |what: &str| {
        let what = what.to_string();
        move |e: postgres::Error| db_error(&what, e)
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
            _ => {
                return Err(CommandError::new(
                    Kind::Usage,
                    format!("--from-table {t:?}: expected table or schema.table"),
                ))
            }
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
            return Err(CommandError::new(
                Kind::Usage,
                format!("--from-table {t}: no such table ({ident})"),
            )
            .hint("write schema.table; names are case-sensitive, as in Hasura"));
        };
        let (schema, name, kind): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        if kind != "r" && kind != "p" {
            return Err(CommandError::new(
                Kind::Usage,
                format!("--from-table {t}: {schema}.{name} is not a table"),
            ));
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
