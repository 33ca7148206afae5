//! Who blocks the migrations (issue 16): while a deployment runs with a `lock_timeout`, an
//! [`Observer`] on its own thread and its own connection looks, every few tenths of a second,
//! for the sessions the deploying session waits for (`pg_blocking_pids`), and keeps the last
//! ones it saw, so that a statement that times out waiting for a lock can name who held it:
//! pid, application_name, user, how long its transaction has been open, its query, the lock.
//!
//! The observer connects only once the deployment has run for half the `lock_timeout` (at most
//! a second): a deployment that ends sooner never opens the second connection, and a statement
//! that times out has waited the whole `lock_timeout`, so it is seen waiting several times.
//! Looking only after the failure would be too late: the statement's wait, and with it what
//! `pg_blocking_pids` reports, ends with the error.

use postgres::{Client, SimpleQueryMessage};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A session that held a lock a migration's statement waited for (issue 16), as seen from a
/// second connection while the statement waited (`pg_blocking_pids`).
#[derive(Clone, Debug, PartialEq)]
pub struct Blocker {
    /// Backend pid.
    pub pid: i32,
    /// Its application_name.
    pub application_name: String,
    /// Its user.
    pub user: String,
    /// `active`, `idle in transaction`, …
    pub state: String,
    /// How long its transaction had been open when seen, in seconds.
    pub in_transaction_secs: Option<f64>,
    /// Its current (or last) query, cut to [`BLOCKER_QUERY_CHARS`] characters.
    pub query: String,
    /// The locks it held that the statement waited for: `AccessExclusiveLock on public.t`.
    pub locks: Vec<String>,
}

/// A session's `application_name` as messages show it.
pub(crate) fn application_name(name: &str) -> &str {
    if name.is_empty() {
        "no application_name"
    } else {
        name
    }
}

/// How much of a blocking session's query is kept.
pub const BLOCKER_QUERY_CHARS: usize = 120;

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} ({}, user {}, {}",
            self.pid,
            application_name(&self.application_name),
            self.user,
            if self.state.is_empty() {
                "state unknown"
            } else {
                &self.state
            },
        )?;
        if let Some(s) = self.in_transaction_secs {
            write!(f, ", in its transaction for {s:.1}s")?;
        }
        write!(f, ")")?;
        if !self.locks.is_empty() {
            write!(f, " holding {}", self.locks.join(", "))?;
        }
        if !self.query.is_empty() {
            write!(f, "; query: {}", self.query)?;
        }
        Ok(())
    }
}

/// Watches the deploying session for blockers; see the module docs. Shared between the
/// deploying thread and the observing one.
pub(crate) struct Observer {
    lock_timeout: Duration,
    state: Mutex<Seen>,
    wake: Condvar,
}

#[derive(Default)]
struct Seen {
    stop: bool,
    /// The deploying session's backend pid, read inside its transaction (through a
    /// transaction pooler the session's pid is only stable there).
    pid: Option<i32>,
    /// The last non-empty observation, and when it was made.
    last: Option<(Instant, Vec<Blocker>)>,
}

impl Observer {
    /// An observer for statements that run with `lock_timeout`.
    pub(super) fn new(lock_timeout: Duration) -> Observer {
        Observer {
            lock_timeout,
            state: Mutex::new(Seen::default()),
            wake: Condvar::new(),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Watches the session with backend pid `pid` from now on.
    pub(super) fn watch_pid(&self, pid: i32) {
        self.seen().pid = Some(pid);
        self.wake.notify_all();
    }

    /// Ends [`Observer::run`].
    pub(super) fn stop(&self) {
        self.seen().stop = true;
        self.wake.notify_all();
    }

    /// The pause between two looks: a tenth of the `lock_timeout`, within 20-200 ms.
    fn poll(&self) -> Duration {
        (self.lock_timeout / 10).clamp(Duration::from_millis(20), Duration::from_millis(200))
    }

    /// Observes until [`Observer::stop`]: waits half the `lock_timeout` (at most 1 s), then
    /// connects with `connect` and looks for blockers every [`Observer::poll`]. A connection
    /// or query that fails only means nothing is seen.
    pub(super) fn run(&self, connect: &(dyn Fn() -> Result<Client, String> + Sync)) {
        let started = Instant::now();
        let delay = (self.lock_timeout / 2).min(Duration::from_secs(1));
        let mut seen = self.seen();
        loop {
            if seen.stop {
                return;
            }
            let elapsed = started.elapsed();
            if elapsed >= delay && seen.pid.is_some() {
                break;
            }
            let pause = delay.saturating_sub(elapsed).max(self.poll());
            seen = self
                .wake
                .wait_timeout(seen, pause)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(seen);
        let Ok(mut client) = connect() else {
            return;
        };
        let _ = client.batch_execute("SET application_name = 'git-migrate (observer)'");
        loop {
            let pid = {
                let seen = self.seen();
                if seen.stop {
                    return;
                }
                seen.pid
            };
            if let Some(pid) = pid {
                if let Some(found) = blockers_of(&mut client, pid).filter(|b| !b.is_empty()) {
                    self.seen().last = Some((Instant::now(), found));
                }
            }
            let seen = self.seen();
            if seen.stop {
                return;
            }
            let _ = self.wake.wait_timeout(seen, self.poll());
        }
    }

    /// The blockers seen while the statement that just timed out waited: the last ones seen,
    /// when that was within its `lock_timeout` (and a second) from now.
    pub(super) fn recent(&self) -> Vec<Blocker> {
        match &self.seen().last {
            Some((at, b)) if at.elapsed() <= self.lock_timeout + Duration::from_secs(1) => {
                b.clone()
            }
            _ => vec![],
        }
    }
}

/// The backend pid of the session running `c`'s statements.
pub(super) fn backend_pid(c: &mut impl postgres::GenericClient) -> Option<i32> {
    c.simple_query("SELECT pg_backend_pid()")
        .ok()?
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0)?.parse().ok(),
            _ => None,
        })
}

/// The sessions `pid` waits for, oldest transaction first, each with the locks it holds that
/// `pid` waits for; `None` when the query fails.
fn blockers_of(client: &mut Client, pid: i32) -> Option<Vec<Blocker>> {
    let sql = format!(
        "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), \
         coalesce(a.state, ''), \
         coalesce(round(extract(epoch FROM now() - a.xact_start)::numeric, 1)::text, ''), \
         left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), {}), \
         coalesce((SELECT string_agg(DISTINCT h.mode || ' on ' || \
             coalesce(h.relation::regclass::text, h.locktype), ', ') \
           FROM pg_locks h JOIN pg_locks w ON w.pid = {pid} AND NOT w.granted \
             AND h.locktype = w.locktype \
             AND h.database IS NOT DISTINCT FROM w.database \
             AND h.relation IS NOT DISTINCT FROM w.relation \
             AND h.transactionid IS NOT DISTINCT FROM w.transactionid \
             AND h.classid IS NOT DISTINCT FROM w.classid \
             AND h.objid IS NOT DISTINCT FROM w.objid \
           WHERE h.pid = a.pid AND h.granted), '') \
         FROM pg_stat_activity a WHERE a.pid = ANY(pg_blocking_pids({pid})) \
         ORDER BY a.xact_start NULLS LAST, a.pid",
        BLOCKER_QUERY_CHARS + 1
    );
    let msgs = client.simple_query(&sql).ok()?;
    Some(
        msgs.iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(Blocker {
                    pid: r.get(0)?.parse().ok()?,
                    application_name: r.get(1)?.to_string(),
                    user: r.get(2)?.to_string(),
                    state: r.get(3)?.to_string(),
                    in_transaction_secs: r.get(4).and_then(|s| s.parse().ok()),
                    query: cut(r.get(5)?),
                    locks: r
                        .get(6)?
                        .split(", ")
                        .filter(|l| !l.is_empty())
                        .map(str::to_string)
                        .collect(),
                }),
                _ => None,
            })
            .collect(),
    )
}

/// `query` cut to [`BLOCKER_QUERY_CHARS`] characters, with `…` when it was longer.
fn cut(query: &str) -> String {
    let q = query.trim();
    if q.chars().count() > BLOCKER_QUERY_CHARS {
        let mut s: String = q.chars().take(BLOCKER_QUERY_CHARS).collect();
        s.push('…');
        s
    } else {
        q.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocker_reads_as_one_line() {
        let b = Blocker {
            pid: 42,
            application_name: "report-job".into(),
            user: "app".into(),
            state: "idle in transaction".into(),
            in_transaction_secs: Some(12.34),
            query: "LOCK TABLE t IN ACCESS EXCLUSIVE MODE".into(),
            locks: vec!["AccessExclusiveLock on t".into()],
        };
        assert_eq!(
            b.to_string(),
            "pid 42 (report-job, user app, idle in transaction, in its transaction for 12.3s) \
             holding AccessExclusiveLock on t; query: LOCK TABLE t IN ACCESS EXCLUSIVE MODE"
        );
        assert_eq!(
            cut(&"x".repeat(200)).chars().count(),
            BLOCKER_QUERY_CHARS + 1
        );
        assert_eq!(cut(" select 1 "), "select 1");
    }
}
