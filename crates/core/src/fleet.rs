//! Fleets (issue 17): many databases moved by one command, each with its own ledger and its own
//! one-transaction guarantee. This module is pure: reading a list of databases from text
//! ([`parse_list`]) and the order in which a rollout starts them ([`Rollout`]). Connecting,
//! running and printing live in the command layer.

use crate::config::{expand_vars, ExpandError};

/// Why a list of databases could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// A line's `${VAR}` could not be expanded.
    #[error("{origin} line {line}: {error}")]
    Expand {
        /// Where the list came from (a file, a command, an environment).
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        error: ExpandError,
    },
    /// The same database twice: one of the two would run a second deployment on it.
    #[error("{origin} lines {first} and {again} name the same database")]
    Duplicate {
        /// Where the list came from.
        origin: String,
        /// 1-based line of the first mention.
        first: usize,
        /// 1-based line of the second.
        again: usize,
    },
    /// Nothing listed.
    #[error("{origin} lists no database")]
    Empty {
        /// Where the list came from.
        origin: String,
    },
}

/// One database of a fleet: its URL (`${VAR}` expanded; it may hold a password, so it is never
/// printed: show [`crate::db::DbTarget::redacted`]) and where it was listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The connection string.
    pub url: String,
    /// 1-based line (or list position) it came from.
    pub line: usize,
}

/// Reads a list of databases: one connection string per line; blank lines and lines starting
/// with `#` are skipped; `${VAR}` is expanded from `get`. `origin` names the list in errors.
pub fn parse_list(
    text: &str,
    origin: &str,
    get: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Member>, ListError> {
    let mut out: Vec<Member> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let url = expand_vars(line, &get).map_err(|error| ListError::Expand {
            origin: origin.to_string(),
            line: i + 1,
            error,
        })?;
        if let Some(first) = out.iter().find(|m| m.url == url) {
            return Err(ListError::Duplicate {
                origin: origin.to_string(),
                first: first.line,
                again: i + 1,
            });
        }
        out.push(Member { url, line: i + 1 });
    }
    if out.is_empty() {
        return Err(ListError::Empty {
            origin: origin.to_string(),
        });
    }
    Ok(out)
}

/// How a rollout over `n` databases is run: the first `canary` one at a time, stopping at the
/// first failure among them; then the rest with up to `parallel` at once, starting no more once
/// more than `max_failures` have failed. Deployments already running when it halts finish (each
/// is one transaction on its own database: it commits whole or not at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolloutOptions {
    /// At most this many at once (at least 1).
    pub parallel: usize,
    /// The first K databases of the list, one at a time, before any other.
    pub canary: usize,
    /// Halt once more than this many have failed.
    pub max_failures: usize,
}

/// Why a rollout stopped starting databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// A canary failed.
    Canary,
    /// More than `max_failures` failed.
    MaxFailures,
    /// The user interrupted it.
    Interrupted,
}

/// What to do next ([`Rollout::next_step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Start the database at this index of the list.
    Start(usize),
    /// Wait for a running one to finish.
    Wait,
    /// Nothing more will start, and nothing is running.
    Done,
}

/// The scheduler of a rollout (pure): the command layer asks [`Rollout::next_step`] and reports
/// each end with [`Rollout::finished`].
#[derive(Debug, Clone)]
pub struct Rollout {
    options: RolloutOptions,
    n: usize,
    started: usize,
    running: usize,
    failed: usize,
    halt: Option<Halt>,
}

impl Rollout {
    /// A rollout over `n` databases.
    pub fn new(n: usize, options: RolloutOptions) -> Rollout {
        Rollout {
            options: RolloutOptions {
                parallel: options.parallel.max(1),
                ..options
            },
            n,
            started: 0,
            running: 0,
            failed: 0,
            halt: None,
        }
    }

    /// The next step.
    pub fn next_step(&mut self) -> Next {
        let more = self.halt.is_none() && self.started < self.n;
        if !more {
            return if self.running == 0 {
                Next::Done
            } else {
                Next::Wait
            };
        }
        // A canary runs alone, and nothing starts while one runs.
        let in_canary = self.started < self.options.canary;
        let canary_running = self.started <= self.options.canary && self.running > 0;
        let limit = if in_canary || canary_running {
            1
        } else {
            self.options.parallel
        };
        if self.running >= limit {
            return Next::Wait;
        }
        let i = self.started;
        self.started += 1;
        self.running += 1;
        Next::Start(i)
    }

    /// Database `index` finished; `ok` says whether it succeeded.
    pub fn finished(&mut self, index: usize, ok: bool) {
        self.running = self.running.saturating_sub(1);
        if ok {
            return;
        }
        self.failed += 1;
        if self.halt.is_none() {
            if index < self.options.canary {
                self.halt = Some(Halt::Canary);
            } else if self.failed > self.options.max_failures {
                self.halt = Some(Halt::MaxFailures);
            }
        }
    }

    /// Stops starting databases (Ctrl-C).
    pub fn interrupt(&mut self) {
        self.halt.get_or_insert(Halt::Interrupted);
    }

    /// Why it stopped starting databases, if it did.
    pub fn halted(&self) -> Option<Halt> {
        self.halt
    }

    /// How many were started.
    pub fn started(&self) -> usize {
        self.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        (k == "PW").then(|| "s3cret".to_string())
    }

    #[test]
    fn lists_skip_comments_expand_and_refuse_duplicates() {
        let m = parse_list(
            "# tenants\npostgresql://a:${PW}@h/t1\n\n  postgresql://h/t2  \n",
            "fleet.txt",
            env,
        )
        .unwrap();
        assert_eq!(
            m,
            vec![
                Member {
                    url: "postgresql://a:s3cret@h/t1".into(),
                    line: 2
                },
                Member {
                    url: "postgresql://h/t2".into(),
                    line: 4
                }
            ]
        );
        let e = parse_list("postgresql://h/a\npostgresql://h/a\n", "f", env).unwrap_err();
        assert_eq!(e.to_string(), "f lines 1 and 2 name the same database");
        let e = parse_list("x\npostgresql://${NOPE}/a\n", "f", env).unwrap_err();
        assert_eq!(e.to_string(), "f line 2: ${NOPE} is not set");
        let e = parse_list("# nothing\n\n", "f", env).unwrap_err();
        assert_eq!(e.to_string(), "f lists no database");
    }

    /// Drives a rollout to its end; `fails` are the indexes that fail. Returns the order of
    /// starts, the most that ran at once, and the halt.
    fn drive(n: usize, o: RolloutOptions, fails: &[usize]) -> (Vec<usize>, usize, Option<Halt>) {
        let mut r = Rollout::new(n, o);
        let mut running: Vec<usize> = Vec::new();
        let mut order = Vec::new();
        let mut most = 0;
        loop {
            match r.next_step() {
                Next::Start(i) => {
                    order.push(i);
                    running.push(i);
                    most = most.max(running.len());
                }
                Next::Wait => {
                    // The oldest running one finishes.
                    let i = running.remove(0);
                    r.finished(i, !fails.contains(&i));
                }
                Next::Done => break,
            }
        }
        (order, most, r.halted())
    }

    #[test]
    fn all_run_with_the_parallelism_asked() {
        let o = RolloutOptions {
            parallel: 3,
            canary: 0,
            max_failures: 0,
        };
        let (order, most, halt) = drive(10, o, &[]);
        assert_eq!(order, (0..10).collect::<Vec<_>>());
        assert_eq!(most, 3);
        assert_eq!(halt, None);
    }

    #[test]
    fn canaries_run_alone_and_a_failed_canary_stops_everything() {
        let o = RolloutOptions {
            parallel: 4,
            canary: 2,
            max_failures: 5,
        };
        // The second canary fails: nothing after it starts, whatever max_failures says.
        let (order, most, halt) = drive(10, o, &[1]);
        assert_eq!(order, vec![0, 1]);
        assert_eq!(most, 1);
        assert_eq!(halt, Some(Halt::Canary));
        // Canaries pass: the rest go four at a time, only after the last canary ended.
        let mut r = Rollout::new(10, o);
        assert_eq!(r.next_step(), Next::Start(0));
        assert_eq!(r.next_step(), Next::Wait);
        r.finished(0, true);
        assert_eq!(r.next_step(), Next::Start(1));
        assert_eq!(r.next_step(), Next::Wait);
        r.finished(1, true);
        for i in 2..6 {
            assert_eq!(r.next_step(), Next::Start(i));
        }
        assert_eq!(r.next_step(), Next::Wait);
    }

    #[test]
    fn max_failures_halts_new_starts_and_lets_running_ones_finish() {
        let o = RolloutOptions {
            parallel: 2,
            canary: 0,
            max_failures: 0,
        };
        let (order, _, halt) = drive(10, o, &[0]);
        // 0 and 1 were running; 0 failed, so nothing after 1 starts.
        assert_eq!(order, vec![0, 1]);
        assert_eq!(halt, Some(Halt::MaxFailures));
        let o = RolloutOptions {
            max_failures: 2,
            ..o
        };
        let (order, _, halt) = drive(10, o, &[0, 3, 4, 5]);
        assert_eq!(order, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(halt, Some(Halt::MaxFailures));
        let (order, _, halt) = drive(10, o, &[0, 3]);
        assert_eq!(order.len(), 10);
        assert_eq!(halt, None);
    }

    #[test]
    fn an_interrupt_stops_new_starts() {
        let mut r = Rollout::new(
            5,
            RolloutOptions {
                parallel: 2,
                canary: 0,
                max_failures: 0,
            },
        );
        assert_eq!(r.next_step(), Next::Start(0));
        r.interrupt();
        assert_eq!(r.next_step(), Next::Wait);
        r.finished(0, true);
        assert_eq!(r.next_step(), Next::Done);
        assert_eq!(r.halted(), Some(Halt::Interrupted));
        assert_eq!(r.started(), 1);
    }
}
