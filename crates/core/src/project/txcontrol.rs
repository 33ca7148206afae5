//! Finding transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`, `END`, …) in migration SQL, which
//! would silently break the one deployment transaction: a `COMMIT` half-way through an up.sql
//! commits everything before it (earlier migrations, their ledger rows) while the rest of the
//! deployment may still fail and roll back.
//!
//! Flagged, at the top level of a file: `BEGIN`, `START TRANSACTION`, `COMMIT`, `END`,
//! `ROLLBACK` (with or without `AND CHAIN`), `ABORT`, `PREPARE TRANSACTION`, `COMMIT PREPARED` and
//! `ROLLBACK PREPARED`: every statement that starts or ends a transaction. Not flagged:
//! `SAVEPOINT`, `RELEASE` and `ROLLBACK TO SAVEPOINT` (harmless inside the deployment
//! transaction), anything inside a string, a dollar-quoted body, a comment, a `DO` block or a
//! SQL-standard `BEGIN ATOMIC … END` function body, and `CALL` (what a procedure does cannot be
//! judged from the text).
//!
//! ## Why pg_query
//!
//! The statements are found by [`pg_query`], which is libpg_query: the PostgreSQL server's own
//! parser compiled into the binary. Dollar quotes with tags, nested `/* */` comments, `E''`
//! escapes, `U&''` strings, `DO` blocks and `BEGIN ATOMIC … END` bodies are therefore right by
//! construction, where a hand-written splitter or regular expressions get some of them wrong
//! (the crate's own [`super::sql::split_statements`] does not know `BEGIN ATOMIC`, and a regex
//! flags `COMMIT` inside `$$ … $$`). The cost is at build time only: its build runs bindgen, so
//! `libclang-dev` must be installed (`.ci/run` installs it), and a cold build takes about three
//! minutes longer (the C parser is compiled once).
//!
//! ## When the parser refuses the file
//!
//! PostgreSQL's simple-query protocol (which runs migrations) parses the whole string before it
//! runs any statement, so a file with a syntax error fails before executing anything, and there
//! is nothing to flag. But pg_query 18's grammar is newer than the server's may be (e.g. 15), so a
//! file the server accepts can fail here (and, rarely, the other way round). Then the file is
//! read with pg_query's scanner instead (the server's lexer: quotes and comments still exact), and
//! the transaction keywords are flagged only where a statement starts: at the start of the file
//! or after a top-level `;` (one not inside a `BEGIN ATOMIC … END` body). A token scanner closes
//! such a body at the first `END` outside a `CASE`, so a column alias named `end` (`select x
//! end;`, legal since PostgreSQL 14) makes it flag the `END;` that really closes the body: the
//! fallback may over-report, never miss a statement the parser finds (the fuzz target checks
//! that direction, on every file both can read). When even the scanner
//! fails (an unterminated quote or comment), the server's lexer fails on the whole string too,
//! nothing can run, and nothing is reported.
//!
//! A NUL byte cannot be handed to the C parser; it is read as a space (PostgreSQL refuses
//! query strings containing one anyway).

/// First line that marks a migration to run outside the deployment transaction, statement by
/// statement (for `CREATE INDEX CONCURRENTLY`; design §7.3).
pub const NO_TRANSACTION_MARKER: &str = "-- git-migrate:no-transaction";

/// Whether a migration file is marked to run outside a transaction: its first line, trailing
/// blanks aside, is [`NO_TRANSACTION_MARKER`]. The one reading of the marker: deploy, verify,
/// replay, squash and `check` all ask here.
pub fn is_no_transaction(sql: &str) -> bool {
    sql.lines().next().map(str::trim_end) == Some(NO_TRANSACTION_MARKER)
}

use pg_query::protobuf::{ScanToken, Token, TransactionStmtKind};
use pg_query::NodeEnum;

/// What to do about a finding: the same words for `deploy` (the executor) and `check`.
pub const HINT: &str = "remove it: git-migrate already runs each deployment in one transaction, or mark the migration `-- git-migrate:no-transaction`";

/// A transaction-control statement found in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxControl {
    /// The statement as written, trimmed (e.g. `COMMIT`).
    pub statement: String,
    /// 1-based line of its start.
    pub line: usize,
    /// 1-based column (in characters) of its start.
    pub column: usize,
    /// Byte range of the statement in the file (from its first token, without the `;`).
    pub span: std::ops::Range<usize>,
}

/// Every top-level transaction-control statement in `sql`, in file order.
pub(crate) fn transaction_control(sql: &str) -> Vec<TxControl> {
    with_text(sql, |text| match pg_query::parse(text, 0) {
        Ok(parsed) => from_parse_tree(text, &parsed.protobuf),
        Err(_) => from_tokens(text),
    })
}

/// The scanner fallback alone (what [`transaction_control`] does when the parser refuses the
/// file), for the fuzz target that compares it with the parser on files both can read.
#[doc(hidden)]
pub(crate) fn transaction_control_by_tokens(sql: &str) -> Vec<TxControl> {
    with_text(sql, from_tokens)
}

/// What the transaction control of a file means for running it inside the deployment
/// transaction. The one rule used by deploy, apply, seed, verify and check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No transaction control: run the file as it is.
    Clean,
    /// The whole file is wrapped in one `BEGIN … COMMIT` block (the Hasura console writes
    /// `BEGIN TRANSACTION; … COMMIT TRANSACTION;`), with no other transaction control. Its
    /// meaning is clear: the statements in between run together. They run inside the
    /// deployment transaction, with the two wrapper statements blanked out.
    Wrapper(Wrapper),
    /// Transaction control anywhere else (a mid-file `COMMIT`, `ROLLBACK`, several blocks):
    /// the file would commit part of a deployment early. Every statement, in file order.
    Refused(Vec<TxControl>),
}

/// A whole-file `BEGIN … COMMIT` wrapper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wrapper {
    /// The opening statement (`BEGIN TRANSACTION`, `START TRANSACTION ISOLATION LEVEL …`).
    pub open: TxControl,
    /// The closing statement (`COMMIT TRANSACTION`, `END`).
    pub close: TxControl,
}

impl Wrapper {
    /// `BEGIN TRANSACTION … COMMIT TRANSACTION`, for plans and notes.
    pub fn describe(&self) -> String {
        let first = |t: &TxControl| t.statement.split_whitespace().collect::<Vec<_>>().join(" ");
        format!("{} … {}", first(&self.open), first(&self.close))
    }

    /// `sql` with the two wrapper statements replaced by spaces (newlines kept), so that every
    /// line and column the server reports still points into the file as written.
    pub(crate) fn strip(&self, sql: &str) -> String {
        let mut bytes = sql.as_bytes().to_vec();
        for span in [&self.open.span, &self.close.span] {
            for b in bytes.get_mut(span.clone()).unwrap_or_default() {
                if *b != b'\n' {
                    *b = b' ';
                }
            }
        }
        // Whole characters were replaced by ASCII: still UTF-8.
        String::from_utf8(bytes).unwrap_or_else(|_| sql.to_string())
    }
}

/// The text to run inside the deployment transaction, and the wrapper that was blanked out of
/// it, if any; `Err` with every statement when the file is refused.
pub fn runnable(sql: &str) -> Result<(std::borrow::Cow<'_, str>, Option<Wrapper>), Vec<TxControl>> {
    match verdict(sql) {
        Verdict::Clean => Ok((std::borrow::Cow::Borrowed(sql), None)),
        Verdict::Wrapper(w) => Ok((std::borrow::Cow::Owned(w.strip(sql)), Some(w))),
        Verdict::Refused(found) => Err(found),
    }
}

/// Decides what the transaction control of `sql` means (see [`Verdict`]).
pub(crate) fn verdict(sql: &str) -> Verdict {
    if !may_control_transactions(sql) {
        return Verdict::Clean;
    }
    let found = transaction_control(sql);
    match found.as_slice() {
        [] => Verdict::Clean,
        [open, close] if opens(open) && closes(close) && whole_file(sql, open, close) => {
            Verdict::Wrapper(Wrapper {
                open: open.clone(),
                close: close.clone(),
            })
        }
        _ => Verdict::Refused(found),
    }
}

/// Whether `sql` has a word that may start a transaction-control statement: a cheap filter
/// before parsing.
pub(crate) fn may_control_transactions(sql: &str) -> bool {
    const WORDS: [&str; 7] = [
        "begin", "start", "commit", "end", "rollback", "abort", "prepare",
    ];
    sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| WORDS.iter().any(|k| w.eq_ignore_ascii_case(k)))
}

/// The statement's keywords, lower-cased, comments skipped.
fn keywords(statement: &str) -> Vec<String> {
    scan(statement)
        .unwrap_or_default()
        .iter()
        .filter(|t| !is_comment(t))
        .filter_map(|t| {
            let (s, e) = (usize::try_from(t.start).ok()?, usize::try_from(t.end).ok()?);
            statement.get(s..e).map(str::to_ascii_lowercase)
        })
        .collect()
}

/// `BEGIN [WORK | TRANSACTION] [modes]` or `START TRANSACTION [modes]`.
fn opens(t: &TxControl) -> bool {
    let k = keywords(&t.statement);
    match k.first().map(String::as_str) {
        Some("begin") => k.get(1).is_none_or(|w| w != "atomic"),
        Some("start") => k.get(1).is_some_and(|w| w == "transaction"),
        _ => false,
    }
}

/// `COMMIT` or `END`, with `WORK` or `TRANSACTION` (not `AND CHAIN`, which opens another).
fn closes(t: &TxControl) -> bool {
    let k = keywords(&t.statement);
    matches!(k.first().map(String::as_str), Some("commit" | "end"))
        && k[1..].iter().all(|w| w == "work" || w == "transaction")
}

/// Whether `open` is the file's first statement and `close` its last (only `;`, comments and
/// whitespace after it).
fn whole_file(sql: &str, open: &TxControl, close: &TxControl) -> bool {
    let text = sql.replace('\0', " ");
    let Some(tokens) = scan(&text) else {
        return false;
    };
    let real = |t: &&ScanToken| !is_comment(t) && t.token() != Token::Ascii59;
    let first = tokens
        .iter()
        .find(real)
        .and_then(|t| usize::try_from(t.start).ok());
    let last_start = tokens
        .iter()
        .rfind(real)
        .and_then(|t| usize::try_from(t.start).ok());
    first == Some(open.span.start)
        && last_start.is_some_and(|s| s >= close.span.start && s < close.span.end)
}

/// Runs `spans` (byte spans of flagged statements) on `sql` with NUL bytes read as spaces
/// (same byte length, so every offset stays valid for `sql`), and describes what it found.
fn with_text(sql: &str, spans: impl FnOnce(&str) -> Vec<(usize, usize)>) -> Vec<TxControl> {
    let cleaned;
    let text = if sql.contains('\0') {
        cleaned = sql.replace('\0', " ");
        cleaned.as_str()
    } else {
        sql
    };
    spans(text)
        .into_iter()
        .map(|(start, end)| {
            let (line, column) = line_col(sql, start);
            TxControl {
                statement: text.get(start..end).unwrap_or_default().trim().to_string(),
                line,
                column,
                span: start..end,
            }
        })
        .collect()
}

/// Whether a parsed transaction statement starts or ends a transaction.
fn flagged(kind: TransactionStmtKind) -> bool {
    use TransactionStmtKind as K;
    match kind {
        K::TransStmtBegin
        | K::TransStmtStart
        | K::TransStmtCommit
        | K::TransStmtRollback
        | K::TransStmtPrepare
        | K::TransStmtCommitPrepared
        | K::TransStmtRollbackPrepared => true,
        K::Undefined | K::TransStmtSavepoint | K::TransStmtRelease | K::TransStmtRollbackTo => {
            false
        }
    }
}

/// Byte spans (from the first token to the end of the statement) of the flagged top-level
/// statements of a parse tree.
fn from_parse_tree(text: &str, tree: &pg_query::protobuf::ParseResult) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for raw in &tree.stmts {
        let Some(NodeEnum::TransactionStmt(t)) = raw.stmt.as_ref().and_then(|s| s.node.as_ref())
        else {
            continue;
        };
        if !flagged(t.kind()) {
            continue;
        }
        let start = usize::try_from(raw.stmt_location)
            .unwrap_or(0)
            .min(text.len());
        let end = match usize::try_from(raw.stmt_len) {
            Ok(0) | Err(_) => text.len(),
            Ok(n) => start.saturating_add(n).min(text.len()),
        };
        // The location may include whitespace and comments before the first token.
        let first = text
            .get(start..end)
            .and_then(scan)
            .and_then(|tokens| {
                tokens
                    .iter()
                    .find(|t| !is_comment(t))
                    .and_then(|t| usize::try_from(t.start).ok())
            })
            .map(|o| start + o)
            .unwrap_or(start);
        out.push((first, end));
    }
    out
}

fn is_comment(t: &ScanToken) -> bool {
    matches!(t.token(), Token::SqlComment | Token::CComment)
}

/// The fallback when the parser refuses the file: transaction keywords at statement starts,
/// found with the scanner. Byte spans as [`from_parse_tree`] gives them.
/// PostgreSQL's scanner over `text`. Through `pg_query::scan` (protobuf), not `scan_tokens`:
/// the latter makes a slice from a null pointer when there is no token at all (empty or
/// comment-only text), which the fuzz target found as an abort in builds with debug assertions.
fn scan(text: &str) -> Option<Vec<ScanToken>> {
    pg_query::scan(text).ok().map(|r| r.tokens)
}

fn from_tokens(text: &str) -> Vec<(usize, usize)> {
    let Some(tokens) = scan(text) else {
        return Vec::new();
    };
    let tokens: Vec<&ScanToken> = tokens.iter().filter(|t| !is_comment(t)).collect();
    let kind = |i: usize| tokens.get(i).map(|t| t.token());
    let offset = |v: i32| usize::try_from(v).unwrap_or(0).min(text.len());
    let mut out = Vec::new();
    // Statement boundaries: `;` outside `BEGIN ATOMIC … END` bodies (where `CASE … END` nests).
    let mut depth = 0usize;
    let mut start = Some(0usize);
    let mut open: Option<usize> = None; // a flagged statement's start byte, until its end
    for (i, token) in tokens.iter().enumerate() {
        let tok = Some(token.token());
        let at_start = start == Some(i);
        if at_start {
            let is_tx = match tok {
                Some(Token::BeginP | Token::Commit | Token::EndP | Token::AbortP) => true,
                Some(Token::Start | Token::Prepare) => kind(i + 1) == Some(Token::Transaction),
                Some(Token::Rollback) => {
                    let mut j = i + 1;
                    if matches!(kind(j), Some(Token::Work | Token::Transaction)) {
                        j += 1;
                    }
                    kind(j) != Some(Token::To)
                }
                _ => false,
            };
            if is_tx {
                open = Some(offset(token.start));
            }
            start = None;
        }
        match tok {
            Some(Token::Ascii59) if depth == 0 => {
                if let Some(s) = open.take() {
                    out.push((s, offset(token.start)));
                }
                start = Some(i + 1);
            }
            Some(Token::BeginP) if !at_start && kind(i + 1) == Some(Token::Atomic) => depth += 1,
            Some(Token::Case) if depth > 0 => depth += 1,
            Some(Token::EndP) if depth > 0 => depth -= 1,
            _ => {}
        }
    }
    if let Some(s) = open {
        out.push((s, text.len()));
    }
    out
}

/// 1-based (line, column in characters) of a byte offset (clamped to the text, and to the
/// start of the character it falls in).
fn line_col(text: &str, byte: usize) -> (usize, usize) {
    let mut byte = byte.min(text.len());
    while !text.is_char_boundary(byte) {
        byte -= 1;
    }
    let before = &text[..byte];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|p| p + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_no_transaction_marker_is_the_whole_first_line() {
        for yes in [
            "-- git-migrate:no-transaction\ncreate index concurrently i on t (x);",
            "-- git-migrate:no-transaction  \r\nselect 1;",
            "-- git-migrate:no-transaction",
        ] {
            assert!(is_no_transaction(yes), "{yes:?}");
        }
        for no in [
            "",
            "select 1;\n-- git-migrate:no-transaction",
            " -- git-migrate:no-transaction\nselect 1;",
            "-- git-migrate:no-transactional\nselect 1;",
            "-- git-migrate:no-transaction please\nselect 1;",
        ] {
            assert!(!is_no_transaction(no), "{no:?}");
        }
    }

    /// (statement, line, column) of each finding.
    fn found(sql: &str) -> Vec<(String, usize, usize)> {
        transaction_control(sql)
            .into_iter()
            .map(|t| (t.statement, t.line, t.column))
            .collect()
    }

    fn one(s: &str, line: usize, column: usize) -> (String, usize, usize) {
        (s.to_string(), line, column)
    }

    #[test]
    fn every_transaction_boundary_is_flagged() {
        let sql = "create table a (x int);\nCOMMIT;\nbegin;\nstart transaction isolation level serializable;\nend;\nrollback and chain;\nabort;\nprepare transaction 'x';\ncommit prepared 'x';\nrollback prepared 'y';\nbegin work;\ncommit transaction;\n";
        let f = found(sql);
        let statements: Vec<&str> = f.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(
            statements,
            vec![
                "COMMIT",
                "begin",
                "start transaction isolation level serializable",
                "end",
                "rollback and chain",
                "abort",
                "prepare transaction 'x'",
                "commit prepared 'x'",
                "rollback prepared 'y'",
                "begin work",
                "commit transaction"
            ]
        );
        assert_eq!(f[0], one("COMMIT", 2, 1));
        assert_eq!(f[9], one("begin work", 11, 1));
    }

    #[test]
    fn savepoints_are_harmless() {
        let sql = "savepoint a; release savepoint a; savepoint b; rollback to savepoint b; rollback to b; rollback work to b; release b;";
        assert_eq!(found(sql), vec![]);
    }

    #[test]
    fn positions_skip_leading_comments_and_count_characters() {
        let sql = "select 'é';  /* a /* nested */ comment */ -- x\n  commit";
        assert_eq!(found(sql), vec![one("commit", 2, 3)]);
        let sql = "insert into t values ('ü'); -- c\nselect 1; \t ROLLBACK ;";
        assert_eq!(found(sql), vec![one("ROLLBACK", 2, 13)]);
        assert_eq!(found("COMMIT"), vec![one("COMMIT", 1, 1)]);
    }

    #[test]
    fn quoted_and_nested_bodies_are_not_flagged() {
        for sql in [
            // dollar quotes, plain and tagged
            "select $$ commit; $$;",
            "create function f() returns void language plpgsql as $body$\nbegin\n  commit;\nend\n$body$;",
            "select $a$ $$ ; commit; $$ $a$;",
            // comments, nested ones too
            "-- commit;\nselect 1;",
            "/* outer /* inner */ commit; still a comment */ select 1;",
            // strings: standard, E'' with escapes, quoted identifiers
            "select 'commit; rollback';",
            "select E'\\'; commit; \\'';",
            "select 1 as \"commit; begin\";",
            // DO blocks
            "do $$ begin commit; end $$;",
            "do language plpgsql 'begin rollback; end';",
            // SQL-standard function bodies
            "create function g() returns int language sql begin atomic select 1; select 2; end;",
            "create procedure p() language sql begin atomic insert into t values (1); end;\nselect 1;",
            "create function h(x int) returns int language sql begin atomic select case when x > 0 then 1 else 0 end; end;",
            // keywords as identifiers and in other statements
            "create table commit_log (\"begin\" int, \"end\" int);",
            "select 1 as begin_x; create index on t (x);",
            "call do_something();",
        ] {
            assert_eq!(found(sql), vec![], "{sql}");
        }
    }

    #[test]
    fn atomic_bodies_do_not_hide_what_follows() {
        let sql =
            "create function g() returns int language sql begin atomic select 1; end;\ncommit;";
        assert_eq!(found(sql), vec![one("commit", 2, 1)]);
    }

    #[test]
    fn syntax_errors_fall_back_to_statement_starts() {
        // `selec` makes the file unparsable; the scanner still finds statement starts.
        let sql = "selec 1;\ncommit;\nselect $$ commit; $$;\n  rollback to savepoint a;\nrollback;\nselect 'begin';";
        assert_eq!(from_tokens(sql).len(), 2);
        assert_eq!(found(sql), vec![one("commit", 2, 1), one("rollback", 5, 1)]);
        // …and keeps track of BEGIN ATOMIC bodies, with CASE … END inside.
        let sql = "selec 1; create function h(x int) returns int language sql begin atomic select case when x > 0 then 1 else 0 end; end; end";
        assert_eq!(found(sql), vec![one("end", 1, 120)]);
        // A statement that starts with BEGIN is a BEGIN, not a body to skip.
        let sql = "selec 1; begin atomic; commit;";
        let f: Vec<String> = found(sql).into_iter().map(|t| t.0).collect();
        assert_eq!(f, vec!["begin atomic", "commit"]);
        let sql =
            "selec 1; prepare transaction 'x'; prepare q as select 1; start transaction; start";
        let f: Vec<String> = found(sql).into_iter().map(|t| t.0).collect();
        assert_eq!(f, vec!["prepare transaction 'x'", "start transaction"]);
    }

    #[test]
    fn scanner_errors_and_odd_input() {
        // An unterminated quote: the server's lexer refuses the whole string too.
        assert_eq!(found("commit; select 'oops"), vec![]);
        assert_eq!(found(""), vec![]);
        assert_eq!(found(";;;"), vec![]);
        assert_eq!(found("\0commit"), vec![one("commit", 1, 2)]);
        // An alias named `end` inside an atomic body: the parser knows, the scanner
        // over-reports (found by the fuzz target; the fallback runs only when the parser fails).
        let alias =
            "create function g() returns int language sql begin atomic select 1 end; end;\ncommit;";
        assert_eq!(found(alias), vec![one("commit", 2, 1)]);
        let by_tokens: Vec<_> = transaction_control_by_tokens(alias)
            .into_iter()
            .map(|t| (t.statement, t.line, t.column))
            .collect();
        assert_eq!(by_tokens, vec![one("end", 1, 73), one("commit", 2, 1)]);
        // No token at all, straight into the scanner fallback (found by the fuzz target).
        for text in [
            "",
            "  \n",
            "-- only a comment",
            "/* a /* nested */ comment */",
        ] {
            assert_eq!(transaction_control_by_tokens(text), vec![], "{text:?}");
        }
    }

    fn wrapped(sql: &str) -> Option<String> {
        match verdict(sql) {
            Verdict::Wrapper(w) => Some(w.describe()),
            _ => None,
        }
    }

    #[test]
    fn whole_file_wrappers_are_recognised_in_any_spelling() {
        for (sql, described) in [
            // The Hasura console's "modify primary key" migration.
            (
                "BEGIN TRANSACTION;\nALTER TABLE \"public\".\"t\" DROP CONSTRAINT \"t_pkey\";\nALTER TABLE \"public\".\"t\"\n    ADD CONSTRAINT \"t_pkey\" PRIMARY KEY (\"id\", \"x\");\nCOMMIT TRANSACTION;\n",
                "BEGIN TRANSACTION … COMMIT TRANSACTION",
            ),
            ("begin;\ncreate table a (x int);\ncommit;", "begin … commit"),
            ("-- header\n/* c */ START TRANSACTION ISOLATION LEVEL SERIALIZABLE;\ncreate table a (x int);\nEND;\n-- trailer\n;;\n", "START TRANSACTION ISOLATION LEVEL SERIALIZABLE … END"),
            ("Begin Work; select 1; Commit Work", "Begin Work … Commit Work"),
            ("begin; end;", "begin … end"),
            // A parse error inside (pg_query's grammar is not the server's): the scanner decides.
            ("BEGIN;\nselec 1;\nCOMMIT;", "BEGIN … COMMIT"),
        ] {
            assert_eq!(wrapped(sql).as_deref(), Some(described), "{sql}");
        }
    }

    #[test]
    fn other_transaction_control_stays_refused() {
        for sql in [
            "create table a (x int); commit;",
            "begin; create table a (x int); commit; create table b (x int);",
            "create table z (x int); begin; create table a (x int); commit;",
            "begin; create table a (x int); commit; begin; create table b (x int); commit;",
            "begin; create table a (x int); commit; select 1;",
            "begin; create table a (x int); rollback;",
            "begin; create table a (x int); commit and chain;",
            "begin; create table a (x int);",
            "begin; commit; commit;",
            "begin; prepare transaction 'x';",
            "begin; create table a (x int); commit prepared 'x';",
            "commit; begin;",
        ] {
            assert!(matches!(verdict(sql), Verdict::Refused(_)), "{sql}");
        }
        assert_eq!(verdict("create table a (x int);"), Verdict::Clean);
        assert_eq!(verdict("select $$ begin; commit; $$;"), Verdict::Clean);
    }

    #[test]
    fn stripping_keeps_every_position() {
        let sql = "BEGIN TRANSACTION;\nALTER TABLE t ADD COLUMN é int;\nCOMMIT TRANSACTION;\n";
        let (text, w) = runnable(sql).unwrap();
        assert!(w.is_some());
        assert_eq!(text.len(), sql.len());
        assert_eq!(text.lines().count(), sql.lines().count());
        assert_eq!(text.lines().nth(1), sql.lines().nth(1));
        assert_eq!(transaction_control(&text), vec![]);
        assert_eq!(text.trim_start().chars().next(), Some(';'));
        let (same, none) = runnable("select 1;").unwrap();
        assert!(matches!(same, std::borrow::Cow::Borrowed(_)) && none.is_none());
        assert!(runnable("select 1; commit;").is_err());
    }
}
