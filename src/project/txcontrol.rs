//! Finding transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`, `END`, …) in migration SQL, which
//! would silently break the one deployment transaction. Being written.

/// A transaction-control statement found in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxControl {
    /// The statement as written, trimmed (e.g. `COMMIT`).
    pub statement: String,
    /// 1-based line of its start.
    pub line: usize,
    /// 1-based column (in characters) of its start.
    pub column: usize,
}

/// Every top-level transaction-control statement in `sql`, in file order.
pub fn transaction_control(_sql: &str) -> Vec<TxControl> {
    Vec::new()
}
