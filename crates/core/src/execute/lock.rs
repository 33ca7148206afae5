//! The deploy lock: the ledger's transaction-scoped advisory lock (design §7.3), tried and then
//! waited for in queue order ([`attempt_lock`], with [`Event::Waiting`] and who holds it), held
//! around a piece of work by [`with_lock`], and checked before a segment of a deployment with
//! no-transaction migrations commits ([`still_locked`]).

use super::types::{commit_tx, db, pg_ms, Event, ExecError, LockHolder};
use crate::ledger::{quote_literal, Ledger};
use postgres::{Client, SimpleQueryMessage};
use std::time::Duration;

/// How one attempt at the ledger's advisory lock ended.
pub(super) enum Attempt {
    /// The transaction holds the lock.
    Locked,
    /// Roll back and try again in a new transaction (stale catalog cache).
    Restart,
}

/// Tries to take the ledger's advisory lock in `tx` (design §7.3): tries first; if another
/// deployment holds it, reports [`Event::Waiting`] once and waits until `deadline`. Waiters
/// are served in queue order.
///
/// A backend does not process catalog invalidations while it waits on an advisory lock, so a
/// ledger created meanwhile can still look absent to name lookups (a stale negative cache
/// entry); when the catalog itself disagrees with the cache, the caller starts a fresh
/// transaction, which processes invalidations first.
pub(super) fn attempt_lock(
    tx: &mut postgres::Transaction<'_>,
    ledger: &Ledger,
    deadline: std::time::Instant,
    timeout: Duration,
    announced: &mut bool,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Attempt, ExecError> {
    let key = ledger.lock_key();
    let got = first_bool(
        tx.simple_query(&format!("SELECT pg_try_advisory_xact_lock({key})"))
            .map_err(db("taking the deploy lock"))?,
    );
    if got {
        return Ok(Attempt::Locked);
    }
    let holder = lock_holder(tx, key);
    if !*announced {
        on_event(Event::Waiting(holder.as_ref()));
        *announced = true;
    }
    let remaining = deadline.saturating_duration_since(std::time::Instant::now());
    let timed_out = || ExecError::LockTimeout {
        timeout,
        holder: holder.clone(),
    };
    if remaining.is_zero() {
        return Err(timed_out());
    }
    let wait = tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = {}; SELECT pg_advisory_xact_lock({key})",
        quote_literal(&pg_ms(remaining.max(Duration::from_millis(1))))
    ));
    match wait {
        Ok(()) if ledger.cache_is_stale(tx)? => Ok(Attempt::Restart),
        Ok(()) => {
            // That lock_timeout bounded the wait only, not the statements that follow.
            tx.batch_execute("SET LOCAL lock_timeout = DEFAULT")
                .map_err(db("taking the deploy lock"))?;
            Ok(Attempt::Locked)
        }
        Err(e) if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            Err(timed_out())
        }
        Err(e) => Err(db("waiting for the deploy lock")(e)),
    }
}

/// Runs `work` in one transaction holding the ledger's advisory lock (waiting up to
/// `timeout` for another deployment) and commits when it succeeds; any error rolls back and is
/// returned as it is (the caller's own error type, which the lock's errors convert into).
pub fn with_lock<R, E: From<ExecError>>(
    client: &mut Client,
    ledger: &Ledger,
    timeout: Duration,
    on_event: &mut dyn FnMut(Event<'_>),
    work: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<R, E>,
) -> Result<R, E> {
    let deadline = std::time::Instant::now() + timeout;
    let mut announced = false;
    loop {
        let mut tx = client
            .transaction()
            .map_err(db("starting the transaction"))?;
        match attempt_lock(&mut tx, ledger, deadline, timeout, &mut announced, on_event)? {
            Attempt::Locked => {
                let r = work(&mut tx)?;
                commit_tx(tx)?;
                return Ok(r);
            }
            Attempt::Restart => tx.rollback().map_err(db("restarting the transaction"))?,
        }
    }
}

pub(super) fn still_locked(held: bool) -> Result<(), ExecError> {
    if held {
        Ok(())
    } else {
        Err(ExecError::LockLost)
    }
}

/// SQL text of a file (not an LFS pointer, no NUL bytes, UTF-8).
pub(super) fn first_bool(msgs: Vec<SimpleQueryMessage>) -> bool {
    msgs.iter().any(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0) == Some("t"),
        _ => false,
    })
}

fn lock_holder(tx: &mut postgres::Transaction<'_>, key: i64) -> Option<LockHolder> {
    let classid = (key >> 32) as u32;
    let objid = (key & 0xffff_ffff) as u32;
    let sql = format!(
        "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), \
         coalesce(to_char(a.xact_start, 'YYYY-MM-DD HH24:MI:SS TZ'), '') \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {classid} AND l.objid = {objid} AND l.objsubid = 1 \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         LIMIT 1"
    );
    let msgs = tx.simple_query(&sql).ok()?;
    msgs.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => Some(LockHolder {
            pid: r.get(0)?.parse().ok()?,
            application_name: r.get(1)?.to_string(),
            user: r.get(2)?.to_string(),
            since: r.get(3)?.to_string(),
        }),
        _ => None,
    })
}
