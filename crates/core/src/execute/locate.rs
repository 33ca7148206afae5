//! Where a migration's SQL failed: the error of a failed statement, with its line and column
//! when the server gave a position ([`migration_error`]), and for a runtime error it gave none
//! for, the failing-statement locator ([`failing_statement`]) that deployments and seeds share.

use super::types::{ExecError, MigrationFailure};
use crate::project::Version;

/// Where a runtime error happened inside a SQL file.
pub struct Located {
    /// The failing statement's number in the file, from 1.
    pub statement: usize,
    /// Its line, from 1.
    pub line: usize,
    /// Its column, from 1.
    pub column: usize,
    /// The text of that line.
    pub line_text: String,
}

/// Runs `sql`'s statements in `tx` (which holds whatever ran before them) to find the one that
/// fails with SQLSTATE `code`: for a runtime error the server gives no position for. Batches of
/// statements under a savepoint, so a file of a million inserts costs a few hundred round trips;
/// only the batch that fails is replayed one by one. The caller rolls `tx` back. The one
/// failing-statement locator: deployments and seeds both use it.
pub fn failing_statement(
    tx: &mut impl postgres::GenericClient,
    sql: &str,
    code: &str,
) -> Option<Located> {
    let statements = crate::project::sql::split_statements(sql);
    let mut first = 0;
    while first < statements.len() {
        let last = locate_batch_end(&statements, first);
        let batch = statements[first].start..statements[last - 1].end;
        if last - first > 1 {
            tx.batch_execute("SAVEPOINT git_migrate_locate").ok()?;
            match tx.batch_execute(&sql[batch]) {
                Ok(()) => {
                    tx.batch_execute("RELEASE SAVEPOINT git_migrate_locate")
                        .ok()?;
                    first = last;
                    continue;
                }
                Err(e) if e.code().map(|c| c.code()) != Some(code) => return None,
                Err(_) => {
                    tx.batch_execute("ROLLBACK TO SAVEPOINT git_migrate_locate")
                        .ok()?;
                }
            }
        }
        for (n, range) in statements.iter().enumerate().take(last).skip(first) {
            if let Err(e) = tx.batch_execute(&sql[range.clone()]) {
                if e.code().map(|c| c.code()) != Some(code) {
                    return None;
                }
                let (line, column) = crate::project::sql::line_col_of_byte(sql, range.start);
                return Some(Located {
                    statement: n + 1,
                    line,
                    column,
                    line_text: sql.lines().nth(line - 1).unwrap_or_default().to_string(),
                });
            }
        }
        // The batch failed but no statement of it did alone: give up on a position.
        return None;
    }
    None
}

/// Where the batch of statements that starts at `first` ends (exclusive) when
/// [`StepRunner::locate`](super::run::StepRunner::locate) replays a file: at most 1,000 statements or about 1 MiB of SQL, and
/// always at least one statement.
fn locate_batch_end(statements: &[std::ops::Range<usize>], first: usize) -> usize {
    const STATEMENTS: usize = 1_000;
    const BYTES: usize = 1 << 20;
    let start = statements[first].start;
    let mut end = first + 1;
    while end < statements.len() && end - first < STATEMENTS && statements[end].end - start <= BYTES
    {
        end += 1;
    }
    end
}

/// The error of a migration's SQL. `offset` is the number of characters of `sql` before the
/// text that was sent (a statement of a no-transaction migration), for the error position.
pub(super) fn migration_error(
    e: postgres::Error,
    direction: &'static str,
    version: Version,
    name: &str,
    file: &str,
    sql: &str,
    offset: usize,
) -> ExecError {
    let label = format!("{version}_{name}");
    let Some(dbe) = e.as_db_error() else {
        return ExecError::Migration(Box::new(MigrationFailure {
            direction,
            label,
            version,
            file: file.to_string(),
            message: crate::db::describe_pg_error(&e),
            code: String::new(),
            position: None,
            line_text: None,
            extra: vec![],
            blockers: vec![],
            lock_retries: 0,
        }));
    };
    let position = match dbe.position() {
        Some(postgres::error::ErrorPosition::Original(p)) => {
            Some(crate::project::sql::line_col(sql, *p as usize + offset))
        }
        _ => None,
    };
    let line_text = position.and_then(|(l, _)| sql.lines().nth(l - 1).map(str::to_string));
    let mut extra = Vec::new();
    if let Some(d) = dbe.detail() {
        extra.push(format!("detail: {d}"));
    }
    if let Some(h) = dbe.hint() {
        extra.push(format!("server hint: {h}"));
    }
    if let Some(w) = dbe.where_() {
        extra.push(format!("context: {w}"));
    }
    ExecError::Migration(Box::new(MigrationFailure {
        direction,
        label,
        version,
        file: file.to_string(),
        message: dbe.message().to_string(),
        code: dbe.code().code().to_string(),
        position,
        line_text,
        extra,
        blockers: vec![],
        lock_retries: 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::locate_batch_end;

    #[test]
    fn locate_batches_cover_every_statement_once() {
        // 2,500 short statements: batches of 1,000.
        let short: Vec<_> = (0..2_500).map(|i| i * 10..i * 10 + 9).collect();
        let mut ends = Vec::new();
        let mut first = 0;
        while first < short.len() {
            first = locate_batch_end(&short, first);
            ends.push(first);
        }
        assert_eq!(ends, vec![1_000, 2_000, 2_500]);
        // Statements of 600 KiB: one per batch, never none.
        let big: Vec<_> = (0..3).map(|i| i * 600_000..(i + 1) * 600_000).collect();
        assert_eq!(locate_batch_end(&big, 0), 1);
        assert_eq!(locate_batch_end(&big, 2), 3);
        // 1 MiB is the limit of a batch's text.
        let half: Vec<_> = (0..4).map(|i| i * 400_000..(i + 1) * 400_000).collect();
        assert_eq!(locate_batch_end(&half, 0), 2);
    }
}
