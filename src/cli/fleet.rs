//! Fleets (issue 17): `deploy`, `rollback` and `promote` over many databases, and `status` over
//! many databases in one screen.
//!
//! A rollout runs each database in a child process of this same binary, started with the
//! command line the user typed and the database in [`MEMBER_VAR`]: each database keeps its own
//! connection, ledger, plan, transaction, retries and exit code, exactly as a single-database
//! run has them, and a child that fails or crashes cannot touch another's state. The parent
//! schedules them ([`git_migrate_core::fleet::Rollout`]: canaries one at a time, then up to
//! `--parallel` at once, halting after `--max-failures`), reads each child's JSON document, and
//! reports. `status` reads the databases itself, in threads: a ledger read is three queries.

use super::error::{CommandError, Kind};
use super::json::{self, EnvState};
use super::render::{describe_commit, CommitNames, DescribeOnce};
use super::Ctx;
use clap::Args;
use git_migrate_core::db::{DbTarget, LibpqEnv};
use git_migrate_core::fleet::{self, Halt, Next, Rollout, RolloutOptions};
use git_migrate_core::ledger::Ledger;
use git_migrate_core::source::short;
use serde::Serialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The child's database (set by the parent; the URL may hold a password, so it travels in the
/// environment, never on a command line that `ps` shows).
pub(crate) const MEMBER_VAR: &str = "GIT_MIGRATE_FLEET_MEMBER";
/// The revision a `promote` child deploys (the parent read it from the FROM environment once).
pub(crate) const REV_VAR: &str = "GIT_MIGRATE_FLEET_REV";
/// Set when the parent asked for (and got) confirmation on a terminal.
pub(crate) const YES_VAR: &str = "GIT_MIGRATE_FLEET_CONFIRMED";

/// What a child of a rollout was told by its parent.
#[derive(Debug, Clone)]
pub(crate) struct FleetChild {
    /// Its database.
    pub url: String,
    /// For `promote`: the revision to deploy.
    pub rev: Option<String>,
    /// The parent confirmed the rollout on a terminal.
    pub confirmed: bool,
}

impl FleetChild {
    /// From the process environment, when this process is a child of a rollout.
    pub(crate) fn from_env() -> Option<FleetChild> {
        let url = std::env::var(MEMBER_VAR).ok().filter(|u| !u.is_empty())?;
        Some(FleetChild {
            url,
            rev: std::env::var(REV_VAR).ok().filter(|r| !r.is_empty()),
            confirmed: std::env::var_os(YES_VAR).is_some_and(|v| v == "1"),
        })
    }
}

/// The fleet flags of `deploy` and `rollback`.
#[derive(Args, Debug, Clone)]
pub struct FleetArgs {
    /// Run on every database listed in FILE: one connection string per line, `#` comments,
    /// `${VAR}` expanded; `-` reads stdin. An environment with `database_urls` or
    /// `database_urls_command` is a fleet too.
    #[arg(long, value_name = "FILE")]
    pub fleet: Option<PathBuf>,
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

/// How a fleet is rolled out (`deploy`, `rollback`, `promote`).
#[derive(Args, Debug, Clone)]
pub struct RolloutArgs {
    /// With a fleet: how many databases run at once (1 to 64).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// With a fleet: run the first K databases of the list first, one at a time; a failure
    /// among them stops the rollout before any other database is touched.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub canary: usize,
    /// With a fleet: start no more databases once more than F have failed.
    #[arg(long, value_name = "F", default_value_t = 0)]
    pub max_failures: usize,
}

/// A fleet: where it was listed, and its databases.
pub(crate) struct Fleet {
    /// `fleet.txt`, `environments.tenants.database_urls`, …
    pub origin: String,
    /// The databases, in list order.
    pub members: Vec<Member>,
}

/// One database of a fleet.
pub(crate) struct Member {
    /// Its connection string (may hold a password: never printed).
    pub url: String,
    /// How it is shown: host, port and database, password redacted.
    pub label: String,
}

/// The fleet this command runs on: `--fleet FILE`, or the environment's `database_urls` (or
/// `database_urls_command`) when `--env` names a fleet and no `--database-url` picks one of
/// it. `None` for a single database (and always in a rollout's child).
pub(crate) fn fleet_of(ctx: &Ctx, file: Option<&Path>) -> Result<Option<Fleet>, CommandError> {
    if ctx.fleet_child.is_some() {
        return Ok(None);
    }
    if let Some(f) = file {
        if ctx.database_url.is_some() {
            return Err(CommandError::new(
                Kind::Usage,
                "--fleet and --database-url name different databases; give one of them",
            ));
        }
        let origin = f.display().to_string();
        let members = members(&read_list_file(f)?, &origin)?;
        return Ok(Some(Fleet { origin, members }));
    }
    match ctx.env.as_ref().filter(|e| e.is_fleet()) {
        // --database-url picks one database of the environment, under its rules.
        Some(env) if ctx.database_url.is_none() => fleet_of_env(env).map(Some),
        _ => Ok(None),
    }
}

/// An environment's fleet (`promote` to it).
pub(crate) fn fleet_of_env(
    env: &git_migrate_core::config::Environment,
) -> Result<Fleet, CommandError> {
    let (text, origin) = env_list(env)?;
    members(&text, &origin).map(|members| Fleet { origin, members })
}

/// The databases of an environment: its one database, or every one of its fleet.
pub(crate) fn env_targets(
    ctx: &Ctx,
    env: &git_migrate_core::config::Environment,
) -> Result<Vec<DbTarget>, CommandError> {
    if !env.is_fleet() {
        return Ok(vec![ctx.env_target(env)?]);
    }
    Ok(fleet_of_env(env)?
        .members
        .iter()
        .map(|m| DbTarget::from_url(&m.url))
        .collect())
}

/// Reads a list's members, registering their passwords as secrets.
fn members(text: &str, origin: &str) -> Result<Vec<Member>, CommandError> {
    Ok(fleet::parse_list(text, origin, |k| std::env::var(k).ok())
        .map_err(|e| {
            CommandError::new(Kind::Usage, e.to_string())
                .hint("list one connection string per line (postgresql://user@host/db); use ${VAR} for passwords")
        })?
        .into_iter()
        .map(|m| {
            let t = DbTarget::from_url(&m.url);
            if let Some(p) = t.password() {
                super::ui::register_secret(p);
            }
            Member {
                label: t.label(),
                url: m.url,
            }
        })
        .collect())
}

fn read_list_file(f: &Path) -> Result<String, CommandError> {
    let read = if f == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(f)
    };
    read.map_err(|e| {
        CommandError::new(
            Kind::Usage,
            format!("--fleet {}: cannot read it: {e}", f.display()),
        )
    })
}

/// An environment's list of databases, and its origin for messages.
fn env_list(env: &git_migrate_core::config::Environment) -> Result<(String, String), CommandError> {
    if !env.database_urls.is_empty() {
        return Ok((
            env.database_urls.join("\n"),
            format!("environments.{}.database_urls", env.name),
        ));
    }
    let origin = format!("environments.{}.database_urls_command", env.name);
    let command = env.database_urls_command.as_deref().unwrap_or_default();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| CommandError::new(Kind::Failure, format!("{origin}: cannot run it: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut e = CommandError::new(
            Kind::Failure,
            format!(
                "{origin} ({command:?}) failed with {}; nothing was changed",
                out.status
            ),
        );
        if let Some(last) = stderr.lines().rev().find(|l| !l.trim().is_empty()) {
            e.causes.push(super::ui::scrub(last.trim()));
        }
        return Err(e.hint("run the command by hand: it must print one connection string per line"));
    }
    Ok((String::from_utf8_lossy(&out.stdout).into_owned(), origin))
}

/// What the parent tells its children beyond the command line.
pub(crate) struct Launch {
    /// What the children do, for messages: `deploy v2`, `rollback v1`, `promote staging -> prod`.
    pub what: String,
    /// For `promote`: the revision each child deploys.
    pub rev: Option<String>,
    /// `--yes`.
    pub yes: bool,
    /// `--dry-run`: nothing changes, so nothing is confirmed.
    pub dry_run: bool,
}

/// How one database's run ended.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Status {
    /// It moved.
    Done,
    /// It was at the target already.
    AlreadyThere,
    /// `--dry-run`: its plan.
    Planned,
    /// It failed; nothing changed there (each run is one transaction).
    Failed,
    /// The rollout halted before it started.
    NotStarted,
}

/// One database in `deploy --fleet --json` (docs/json.md).
#[derive(Debug, Serialize)]
pub(crate) struct MemberDoc {
    /// Host, port and database; password redacted.
    pub database: String,
    /// How it ended.
    pub status: Status,
    /// The child's exit code (`null` when not started).
    pub exit_code: Option<i32>,
    /// The child's own document: `deploy --json`, a plan, or an error.
    pub result: Option<serde_json::Value>,
    /// Seconds it ran.
    pub seconds: f64,
    /// Its warnings (what it printed on stderr as `warning: …`).
    pub warnings: Vec<String>,
}

/// `deploy --fleet --json`.
#[derive(Debug, Serialize)]
pub(crate) struct FleetDoc {
    /// Every database, in list order.
    pub databases: Vec<MemberDoc>,
    /// Counts.
    pub done: usize,
    /// At the target before the run.
    pub already_there: usize,
    /// `--dry-run` plans.
    pub planned: usize,
    /// Failed.
    pub failed: usize,
    /// Never started.
    pub not_started: usize,
    /// Why the rollout stopped starting databases: `canary`, `max-failures`, `interrupted`.
    pub halted: Option<&'static str>,
    /// Where the list came from.
    pub origin: String,
    /// Seconds the whole rollout took.
    pub seconds: f64,
}

/// A finished child.
struct Ended {
    index: usize,
    code: i32,
    stdout: String,
    stderr: String,
    seconds: f64,
}

/// Runs the command this process was started with on every database of `fleet`, each in a
/// child process, as `args` schedule them; prints each end and a summary.
pub(crate) fn rollout(
    ctx: &Ctx,
    fleet: &Fleet,
    args: &RolloutArgs,
    launch: &Launch,
) -> Result<(), CommandError> {
    let n = fleet.members.len();
    let options = RolloutOptions {
        parallel: args.parallel as usize,
        canary: args.canary,
        max_failures: args.max_failures,
    };
    if !ctx.json {
        ctx.ui.out(&format!(
            "Fleet: {} on {n} database(s) from {}, {} at a time{}{}.",
            launch.what,
            fleet.origin,
            options.parallel.min(n),
            match options.canary.min(n) {
                0 => String::new(),
                k => format!(", the first {k} as canaries"),
            },
            match options.max_failures {
                0 => ", halting at the first failure".to_string(),
                f => format!(", halting after {} failures", f + 1),
            }
        ));
    }
    // On a terminal the whole rollout is confirmed once; without one, each database follows
    // the single-database rules (a forward deploy runs, a revert needs --yes).
    let mut confirmed = false;
    if !launch.yes && !launch.dry_run {
        if let Some(answer) = ctx.ui.confirm(&format!(
            "This runs {} on {n} database(s). Proceed?",
            launch.what
        )) {
            if !answer {
                return Err(CommandError::new(
                    Kind::Refused,
                    "not confirmed; nothing was changed",
                ));
            }
            confirmed = true;
        }
    }
    let exe = std::env::current_exe().map_err(|e| {
        CommandError::new(
            Kind::Failure,
            format!("cannot find this program to run it per database: {e}"),
        )
    })?;
    let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    // Ctrl-C reaches the children too (one process group): each rolls back and exits 130.
    // This process stays to say which databases moved.
    let _watch = git_migrate_core::interrupt::Watch::install();
    let started = Instant::now();
    let bar = progress_bar(ctx, n);
    let mut schedule = Rollout::new(n, options);
    let mut ends: Vec<Option<MemberDoc>> = (0..n).map(|_| None).collect();
    let (tx, rx) = std::sync::mpsc::channel::<Ended>();
    // The children's pids, to forward an interrupt to: they run in their own process groups,
    // so that Ctrl-C on a terminal and a SIGINT sent to this process alone (as CI runners do)
    // reach each child exactly once.
    let running: std::sync::Mutex<std::collections::BTreeMap<usize, u32>> = Default::default();
    let mut forwarded = false;
    let names = DescribeOnce::new(&ctx.repo);
    std::thread::scope(|scope| loop {
        match schedule.next_step() {
            Next::Start(i) => {
                let tx = tx.clone();
                let (exe, argv, url, running) = (&exe, &argv, &fleet.members[i].url, &running);
                let rev = launch.rev.as_deref();
                scope.spawn(move || {
                    let _ = tx.send(run_child(i, exe, argv, url, rev, confirmed, running));
                });
            }
            Next::Wait => {
                let end = match rx.recv_timeout(std::time::Duration::from_millis(100)) {
                    Ok(end) => end,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        if git_migrate_core::interrupt::requested() && !forwarded {
                            forwarded = true;
                            schedule.interrupt();
                            for pid in running.lock().unwrap_or_else(|e| e.into_inner()).values() {
                                git_migrate_core::interrupt::send_sigint(*pid);
                            }
                        }
                        continue;
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                };
                let ok = end.code == 0;
                let i = end.index;
                if end.code == 130 {
                    schedule.interrupt();
                }
                schedule.finished(i, ok);
                let doc = member_doc(&fleet.members[i].label, Some(end));
                // -q keeps the failures.
                if !ctx.json && (!ok || !ctx.ui.quiet) {
                    for l in member_text(&doc, &names) {
                        bar.suspend(|| ctx.ui.out(&l));
                    }
                }
                bar.inc(1);
                ends[i] = Some(doc);
            }
            Next::Done => break,
        }
    });
    bar.finish_and_clear();
    let doc = fleet_doc(
        fleet,
        ends,
        schedule.halted(),
        started.elapsed().as_secs_f64(),
    );
    if ctx.json {
        ctx.ui.out(&json::text(&doc));
    } else {
        for w in fleet_warnings(&doc) {
            ctx.ui.warn(&w);
        }
        for l in summary_lines(&doc) {
            ctx.ui.out(&l);
        }
    }
    outcome(&doc)
}

/// A progress bar on a terminal (hidden otherwise, and with `--json` or `-q`).
fn progress_bar(ctx: &Ctx, n: usize) -> indicatif::ProgressBar {
    let show = !ctx.json && !ctx.ui.quiet && console::Term::stderr().is_term();
    let target = if show {
        indicatif::ProgressDrawTarget::stderr()
    } else {
        indicatif::ProgressDrawTarget::hidden()
    };
    let bar = indicatif::ProgressBar::with_draw_target(Some(n as u64), target);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} databases {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Runs one database's child to its end, its pid in `running` while it runs.
fn run_child(
    index: usize,
    exe: &Path,
    argv: &[OsString],
    url: &str,
    rev: Option<&str>,
    confirmed: bool,
    running: &std::sync::Mutex<std::collections::BTreeMap<usize, u32>>,
) -> Ended {
    use std::os::unix::process::CommandExt;
    let t0 = Instant::now();
    let mut cmd = std::process::Command::new(exe);
    cmd.args(argv)
        .env(MEMBER_VAR, url)
        .env("NO_COLOR", "1")
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    match rev {
        Some(r) => cmd.env(REV_VAR, r),
        None => cmd.env_remove(REV_VAR),
    };
    if confirmed {
        cmd.env(YES_VAR, "1");
    } else {
        cmd.env_remove(YES_VAR);
    }
    let ended = |code: i32, stdout: Vec<u8>, stderr: String| Ended {
        index,
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr,
        seconds: t0.elapsed().as_secs_f64(),
    };
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return ended(
                4,
                vec![],
                format!("error: cannot start git-migrate for this database: {e}"),
            )
        }
    };
    let lock = || running.lock().unwrap_or_else(|e| e.into_inner());
    lock().insert(index, child.id());
    let out = child.wait_with_output();
    lock().remove(&index);
    match out {
        Ok(out) => {
            use std::os::unix::process::ExitStatusExt;
            let code = out
                .status
                .code()
                .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
            ended(
                code,
                out.stdout,
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
        Err(e) => ended(4, vec![], format!("error: lost this database's run: {e}")),
    }
}

/// What a child's run came to, from its exit code and its JSON document.
fn member_doc(label: &str, end: Option<Ended>) -> MemberDoc {
    let Some(end) = end else {
        return MemberDoc {
            database: label.to_string(),
            status: Status::NotStarted,
            exit_code: None,
            result: None,
            seconds: 0.0,
            warnings: vec![],
        };
    };
    // One document (a result, a plan, or an error); the last one if a child printed more.
    let value: Option<serde_json::Value> = serde_json::Deserializer::from_str(&end.stdout)
        .into_iter::<serde_json::Value>()
        .map_while(Result::ok)
        .last();
    let status = match (&value, end.code) {
        (_, c) if c != 0 => Status::Failed,
        (Some(v), _) if v.get("deployment_id").is_some() => Status::Done,
        (Some(v), _) if v.get("steps").is_some() && plan_changes(v) => Status::Planned,
        (Some(v), _) if v.get("steps").is_some() => Status::AlreadyThere,
        _ => Status::Failed,
    };
    let result = value.or_else(|| {
        // No document: a crash. Its last words stand in for one.
        let last = end
            .stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output");
        Some(serde_json::json!({ "error": { "message": super::ui::scrub(last.trim()), "exit_code": end.code, "causes": [], "hints": [], "problems": [] } }))
    });
    MemberDoc {
        database: label.to_string(),
        status,
        exit_code: Some(end.code),
        result,
        seconds: end.seconds,
        warnings: end
            .stderr
            .lines()
            .filter_map(|l| l.strip_prefix("warning: "))
            .map(|w| super::ui::scrub(w.trim()))
            .collect(),
    }
}

/// Whether a plan document changes anything.
fn plan_changes(v: &serde_json::Value) -> bool {
    v["steps"].as_array().is_some_and(|s| !s.is_empty()) || !v["metadata"].is_null()
}

/// One database's lines (pure but for naming commits).
fn member_text(m: &MemberDoc, names: &impl CommitNames) -> Vec<String> {
    let none = serde_json::Value::Null;
    let r = m.result.as_ref().unwrap_or(&none);
    let count = |key: &str| r[key].as_array().map(Vec::len).unwrap_or(0);
    let at = |key: &str| {
        r[key]
            .as_str()
            .map(|c| names.describe(c))
            .unwrap_or_else(|| "the empty state".into())
    };
    match m.status {
        Status::Done => vec![format!(
            "ok      {}  at {} in {:.2}s: {} reverted, {} applied{}{}",
            m.database,
            at("at"),
            m.seconds,
            count("reverted"),
            count("applied"),
            if r["metadata_changed"].as_bool() == Some(true) {
                ", metadata updated"
            } else {
                ""
            },
            r["deployment_id"]
                .as_i64()
                .map(|i| format!(" (#{i})"))
                .unwrap_or_default()
        )],
        Status::AlreadyThere => vec![format!(
            "ok      {}  already at {}",
            m.database,
            at("to_commit")
        )],
        Status::Planned => {
            let steps = r["steps"].as_array().cloned().unwrap_or_default();
            let reverts = steps.iter().filter(|s| s["action"] == "revert").count();
            vec![format!(
                "plan    {}  from {} to {}: {} to revert, {} to apply{}",
                m.database,
                at("from_commit"),
                at("to_commit"),
                reverts,
                steps.len() - reverts,
                if r["metadata"].is_null() {
                    ""
                } else {
                    ", metadata changes"
                }
            )]
        }
        Status::Failed => {
            let e = &r["error"];
            let mut out = vec![format!(
                "FAILED  {}  exit {}: {}",
                m.database,
                m.exit_code.unwrap_or(4),
                e["message"].as_str().unwrap_or("failed")
            )];
            for (key, word) in [("causes", "caused by"), ("hints", "hint")] {
                for c in e[key].as_array().into_iter().flatten() {
                    if let Some(c) = c.as_str() {
                        out.push(format!("        {word}: {c}"));
                    }
                }
            }
            out
        }
        Status::NotStarted => vec![format!("-       {}  not started", m.database)],
    }
}

fn fleet_doc(
    fleet: &Fleet,
    ends: Vec<Option<MemberDoc>>,
    halt: Option<Halt>,
    seconds: f64,
) -> FleetDoc {
    let databases: Vec<MemberDoc> = fleet
        .members
        .iter()
        .zip(ends)
        .map(|(m, e)| e.unwrap_or_else(|| member_doc(&m.label, None)))
        .collect();
    FleetDoc::new(
        databases,
        halt.map(|h| match h {
            Halt::Canary => "canary",
            Halt::MaxFailures => "max-failures",
            Halt::Interrupted => "interrupted",
        }),
        fleet.origin.clone(),
        seconds,
    )
}

impl FleetDoc {
    /// The document of these databases' ends, counted.
    fn new(
        databases: Vec<MemberDoc>,
        halted: Option<&'static str>,
        origin: String,
        seconds: f64,
    ) -> FleetDoc {
        let count = |s: Status| databases.iter().filter(|d| d.status == s).count();
        FleetDoc {
            done: count(Status::Done),
            already_there: count(Status::AlreadyThere),
            planned: count(Status::Planned),
            failed: count(Status::Failed),
            not_started: count(Status::NotStarted),
            halted,
            origin,
            seconds,
            databases,
        }
    }
}

/// Each distinct warning of the children once, with how many databases gave it (a file's
/// warning is the same on every database).
fn fleet_warnings(doc: &FleetDoc) -> Vec<String> {
    let mut out = Vec::new();
    let mut warnings: Vec<(&str, usize)> = Vec::new();
    for w in doc.databases.iter().flat_map(|d| d.warnings.iter()) {
        match warnings.iter_mut().find(|(x, _)| *x == w.as_str()) {
            Some((_, n)) => *n += 1,
            None => warnings.push((w, 1)),
        }
    }
    for (w, n) in warnings {
        out.push(format!("{w} ({n} database(s))"));
    }
    out
}

/// The summary after a rollout (pure).
fn summary_lines(doc: &FleetDoc) -> Vec<String> {
    let mut out = Vec::new();
    let mut parts = Vec::new();
    for (n, what) in [
        (doc.done, "moved"),
        (doc.already_there, "already there"),
        (doc.planned, "planned (dry run)"),
        (doc.failed, "failed"),
        (doc.not_started, "not started"),
    ] {
        if n > 0 || what == "failed" || what == "moved" {
            parts.push(format!("{n} {what}"));
        }
    }
    out.push(format!(
        "Fleet: {} database(s) in {:.2}s: {}.",
        doc.databases.len(),
        doc.seconds,
        parts.join(", ")
    ));
    let failed: Vec<&str> = doc
        .databases
        .iter()
        .filter(|d| d.status == Status::Failed)
        .map(|d| d.database.as_str())
        .collect();
    if let Some(h) = doc.halted {
        out.push(format!(
            "halted: {}; the {} database(s) not started are unchanged",
            match h {
                "canary" => "a canary failed",
                "max-failures" => "more databases failed than --max-failures allows",
                _ => "interrupted",
            },
            doc.not_started
        ));
    }
    if !failed.is_empty() {
        out.push(format!(
            "failed (each rolled back; its database is as it was): {}",
            list(&failed)
        ));
        let waiting: Vec<&str> = doc
            .databases
            .iter()
            .filter(|d| d.status == Status::NotStarted)
            .map(|d| d.database.as_str())
            .collect();
        if !waiting.is_empty() {
            out.push(format!("not started: {}", list(&waiting)));
        }
        out.push("next: fix the failure above, then run the same command again: databases already at the target have nothing to do".into());
    }
    out
}

/// Up to ten names, then a count.
fn list(names: &[&str]) -> String {
    let mut s = names
        .iter()
        .take(10)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 10 {
        s.push_str(&format!(" and {} more", names.len() - 10));
    }
    s
}

/// The exit status of a rollout: 0 when every database ended well; 130 when interrupted;
/// otherwise the failures' exit code when they share one, else 4.
fn outcome(doc: &FleetDoc) -> Result<(), CommandError> {
    if doc.failed == 0 && doc.not_started == 0 {
        return Ok(());
    }
    let codes: std::collections::BTreeSet<i32> = doc
        .databases
        .iter()
        .filter(|d| d.status == Status::Failed)
        .filter_map(|d| d.exit_code)
        .collect();
    let kind = if doc.halted == Some("interrupted") {
        Kind::Interrupted
    } else {
        match codes.iter().next() {
            Some(2) if codes.len() == 1 => Kind::Usage,
            Some(3) if codes.len() == 1 => Kind::Refused,
            Some(5) if codes.len() == 1 => Kind::Lock,
            _ => Kind::Failure,
        }
    };
    // The lines above said it all; the error line only names the count.
    Err(CommandError::new(
        kind,
        format!(
            "{} of {} database(s) failed, {} not started",
            doc.failed,
            doc.databases.len(),
            doc.not_started
        ),
    )
    .quiet_in_json())
}

/// The flags of `status --fleet`.
#[derive(Args, Debug, Clone)]
pub struct FleetStatusArgs {
    /// Group every database listed in FILE (one connection string per line; `-`: stdin) by the
    /// commit it is at, and flag drift, failed attempts and unreachable databases. An
    /// environment with `database_urls` is read the same way with `--env`.
    #[arg(long, value_name = "FILE")]
    pub fleet: Option<PathBuf>,
    /// With a fleet: how many databases are read at once (1 to 64).
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
}

/// One database in `status --fleet` (docs/json.md).
#[derive(Debug, Serialize, Clone, Default)]
pub(crate) struct MemberState {
    /// Host, port and database; password redacted.
    pub database: String,
    /// The commit its last successful deployment reached.
    pub commit: Option<String>,
    /// Unfinished no-transaction migrations.
    pub dirty: Vec<git_migrate_core::project::Version>,
    /// The newest deployment of any status.
    pub last: Option<git_migrate_core::ledger::DeploymentSummary>,
    /// The deployment since which the schema changed outside git-migrate, and how many objects.
    pub drift: Option<json::SchemaDrift>,
    /// It has a git-migrate ledger.
    pub ledger: bool,
    /// Why it could not be read.
    pub error: Option<String>,
}

/// Reads one database (connects, reads the ledger and, with `drift`, compares the schema with
/// the one recorded; changes nothing). No `Ctx`: it runs in a thread.
fn read_member(url: &str, label: &str, ledger: &Ledger, drift: bool) -> MemberState {
    let mut out = MemberState {
        database: label.to_string(),
        ..MemberState::default()
    };
    let (target, _) = DbTarget::from_url(url).resolve(LibpqEnv::from_process());
    let mut client = match target.connect() {
        Ok(c) => c,
        Err(e) => {
            out.error = Some(super::ui::scrub(&super::connect_error(e).one_line()));
            return out;
        }
    };
    let mut read = || -> Result<(), CommandError> {
        let state = ledger.read(&mut client)?;
        out.ledger = state.live.ledger_exists;
        out.commit = state.live.deployed_commit.clone();
        out.dirty = state.live.dirty_versions();
        if state.live.ledger_exists {
            out.last = ledger.history(&mut client, 1)?.into_iter().next();
        }
        if drift {
            out.drift = ledger
                .schema_drift(&mut client, state.schema_version)?
                .map(|(id, d)| json::SchemaDrift::new(id, &d));
        }
        Ok(())
    };
    if let Err(e) = read() {
        out.error = Some(super::ui::scrub(&e.one_line()));
    }
    out
}

/// A group of `status --fleet`: the databases at one commit.
#[derive(Debug, Serialize)]
pub(crate) struct Group {
    /// The commit; `null`: never deployed with git-migrate.
    pub commit: Option<String>,
    /// `git describe` of it, when this repository has it.
    pub describe: Option<String>,
    /// Tags pointing at it.
    pub tags: Vec<String>,
    /// It is the target.
    pub at_target: bool,
    /// How many databases are there.
    pub databases: usize,
}

/// `status --fleet --json`.
#[derive(Debug, Serialize)]
pub(crate) struct FleetStatusDoc {
    /// Where the list came from.
    pub origin: String,
    /// The revision compared with.
    pub target: json::Target,
    /// Databases per commit, the target's first, then the most populated.
    pub groups: Vec<Group>,
    /// Every database, in list order.
    pub databases: Vec<MemberState>,
    /// Databases at the target, with nothing flagged.
    pub in_sync: usize,
    /// Databases that could not be read.
    pub unreachable: usize,
}

/// `status --fleet`: every database's commit, grouped; drift, failed attempts, unfinished
/// migrations and unreachable databases flagged.
pub(crate) fn status(
    ctx: &Ctx,
    fleet: &Fleet,
    args: &FleetStatusArgs,
    rev: Option<&str>,
    exit_code: bool,
) -> Result<(), CommandError> {
    let reference = rev.unwrap_or("HEAD").to_string();
    let target_commit = ctx.repo.resolve_commit(&reference)?.to_string();
    let ledger = ctx.ledger();
    let states = read_all(fleet, &ledger, args.parallel as usize, true);
    let groups = group(&states, &target_commit, |c| {
        let oid = git2::Oid::from_str(c)
            .ok()
            .filter(|_| ctx.repo.has_commit(c));
        (
            oid.map(|_| describe_commit(&ctx.repo, c)),
            oid.map(|o| ctx.repo.tags_at(o)).unwrap_or_default(),
        )
    });
    let doc = FleetStatusDoc {
        origin: fleet.origin.clone(),
        target: json::Target {
            commit: Some(target_commit.clone()),
            reference,
        },
        in_sync: states
            .iter()
            .filter(|s| s.commit.as_deref() == Some(&target_commit) && flags(s).is_empty())
            .count(),
        unreachable: states.iter().filter(|s| s.error.is_some()).count(),
        groups,
        databases: states,
    };
    if ctx.json {
        ctx.ui.out(&json::text(&doc));
    } else {
        let head = describe_commit(&ctx.repo, &target_commit);
        for l in status_lines(&doc, &head) {
            ctx.ui.out(&l);
        }
    }
    if doc.unreachable > 0 {
        return Err(CommandError::new(
            Kind::Failure,
            format!(
                "{} of {} database(s) could not be read (see above)",
                doc.unreachable,
                doc.databases.len()
            ),
        )
        .quiet_in_json());
    }
    if exit_code && doc.in_sync < doc.databases.len() {
        return Err(CommandError::new(Kind::Findings, ""));
    }
    Ok(())
}

/// Reads every database, `parallel` at a time, in list order.
fn read_all(fleet: &Fleet, ledger: &Ledger, parallel: usize, drift: bool) -> Vec<MemberState> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<MemberState>>> = fleet
        .members
        .iter()
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    std::thread::scope(|scope| {
        for _ in 0..parallel.clamp(1, fleet.members.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(m) = fleet.members.get(i) else { break };
                let s = read_member(&m.url, &m.label, ledger, drift);
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
            });
        }
    });
    slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_default()
        })
        .collect()
}

/// Groups databases by commit (pure but for `describe`, which names a commit).
fn group(
    states: &[MemberState],
    target: &str,
    describe: impl Fn(&str) -> (Option<String>, Vec<String>),
) -> Vec<Group> {
    let mut counts: std::collections::BTreeMap<Option<&str>, usize> = Default::default();
    for s in states.iter().filter(|s| s.error.is_none()) {
        *counts.entry(s.commit.as_deref()).or_default() += 1;
    }
    let mut groups: Vec<Group> = counts
        .into_iter()
        .map(|(commit, n)| {
            let (describe, tags) = commit.map(&describe).unwrap_or_default();
            Group {
                at_target: commit == Some(target),
                commit: commit.map(str::to_string),
                describe,
                tags,
                databases: n,
            }
        })
        .collect();
    groups.sort_by(|a, b| {
        b.at_target
            .cmp(&a.at_target)
            .then(b.databases.cmp(&a.databases))
            .then(a.commit.cmp(&b.commit))
    });
    groups
}

/// What is wrong with one database, beyond its commit (pure).
fn flags(s: &MemberState) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = &s.error {
        out.push(format!("unreachable: {e}"));
        return out;
    }
    if let Some(d) = &s.drift {
        out.push(format!(
            "drift: the schema changed outside git-migrate since deployment #{} ({} object(s))",
            d.since_deployment,
            d.objects.len()
        ));
    }
    if let Some(l) = s.last.as_ref().filter(|l| l.status != "ok") {
        out.push(format!(
            "last attempt {}: #{} {} {} at {} by {}",
            l.status.to_uppercase(),
            l.id,
            l.kind,
            l.target_ref.as_deref().unwrap_or(""),
            l.started_at,
            l.actor.as_deref().unwrap_or("unknown")
        ));
    }
    if !s.dirty.is_empty() {
        out.push(format!(
            "unfinished no-transaction migrations: {}",
            s.dirty
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out
}

/// The text of `status --fleet` (pure): one screen for a thousand databases.
fn status_lines(doc: &FleetStatusDoc, target_describe: &str) -> Vec<String> {
    let mut out = vec![
        format!(
            "fleet       {} database(s) from {}",
            doc.databases.len(),
            doc.origin
        ),
        format!("target      {} = {target_describe}", doc.target.reference),
    ];
    let rows: Vec<[String; 4]> = doc
        .groups
        .iter()
        .take(20)
        .map(|g| {
            let commit = g.commit.as_deref().map(short).unwrap_or_else(|| "-".into());
            let release = match (&g.commit, g.tags.is_empty(), &g.describe) {
                (None, _, _) => "never deployed".to_string(),
                (Some(_), false, _) => g.tags.join(", "),
                (Some(_), true, Some(d)) => d.clone(),
                (Some(_), true, None) => "not in this repository".to_string(),
            };
            [
                commit,
                release,
                g.databases.to_string(),
                if g.at_target { "target" } else { "" }.to_string(),
            ]
        })
        .collect();
    let header = [
        "COMMIT".to_string(),
        "RELEASE".into(),
        "DATABASES".into(),
        String::new(),
    ];
    let mut w = header.clone().map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in w.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(rows.iter()) {
        out.push(
            format!(
                "{:<a$}  {:<b$}  {:>c$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                a = w[0],
                b = w[1],
                c = w[2]
            )
            .trim_end()
            .to_string(),
        );
    }
    if doc.groups.len() > 20 {
        out.push(format!(
            "… and {} more commits (--json lists every database)",
            doc.groups.len() - 20
        ));
    }
    let flagged: Vec<(String, String)> = doc
        .databases
        .iter()
        .flat_map(|s| flags(s).into_iter().map(|f| (s.database.clone(), f)))
        .collect();
    if !flagged.is_empty() {
        let dbs: std::collections::BTreeSet<&str> =
            flagged.iter().map(|(d, _)| d.as_str()).collect();
        out.push(format!("flagged     {} database(s)", dbs.len()));
        for (db, f) in flagged.iter().take(20) {
            out.push(format!("  {db}  {f}"));
        }
        if flagged.len() > 20 {
            out.push(format!(
                "  … and {} more (--json lists every database)",
                flagged.len() - 20
            ));
        }
    }
    let behind = doc.databases.len() - doc.in_sync - doc.unreachable;
    out.push(if behind == 0 && doc.unreachable == 0 {
        format!(
            "in sync: all {} database(s) at {}",
            doc.databases.len(),
            doc.target.reference
        )
    } else {
        format!(
            "{} of {} database(s) at {} with nothing flagged; move the rest with `git migrate deploy {} --fleet …`",
            doc.in_sync,
            doc.databases.len(),
            doc.target.reference,
            doc.target.reference
        )
    });
    out
}

/// An environment's state for `status --all-envs` when it is a fleet: its commit when every
/// database agrees, otherwise why not (the caller describes the commit).
pub(crate) fn env_state(ctx: &Ctx, env: &git_migrate_core::config::Environment) -> EnvState {
    let mut out = EnvState::named(&env.name);
    let members = match fleet_of_env(env) {
        Ok(f) => f,
        Err(e) => {
            out.error = Some(e.one_line());
            return out;
        }
    };
    out.database = format!("{} databases", members.members.len());
    // Where its databases are, not their drift: nothing here shows it.
    let states = read_all(&members, &ctx.ledger(), 16, false);
    let commits: std::collections::BTreeSet<Option<&str>> =
        states.iter().map(|s| s.commit.as_deref()).collect();
    if let Some(s) = states.iter().find(|s| s.error.is_some()) {
        out.error = Some(format!(
            "{}: {}",
            s.database,
            s.error.as_deref().unwrap_or_default()
        ));
    } else if commits.len() > 1 {
        out.error = Some(format!(
            "its databases are at {} different commits; see `git migrate status --env {}`",
            commits.len(),
            env.name
        ));
    } else {
        out.commit = states.first().and_then(|s| s.commit.clone());
        // A failed attempt on any database is the fleet's last word (promote refuses it).
        let lasts = || states.iter().filter_map(|s| s.last.clone());
        out.last = lasts()
            .filter(|l| l.status != "ok")
            .max_by_key(|l| l.started_at.clone())
            .or_else(|| lasts().max_by_key(|l| l.started_at.clone()));
        out.dirty = states.iter().flat_map(|s| s.dirty.clone()).collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(db: &str, commit: Option<&str>) -> MemberState {
        MemberState {
            database: db.into(),
            commit: commit.map(str::to_string),
            ledger: true,
            ..MemberState::default()
        }
    }

    #[test]
    fn groups_put_the_target_first_then_the_most_populated() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let mut states = vec![
            member("h/1", Some(&b)),
            member("h/2", Some(&b)),
            member("h/3", Some(&a)),
            member("h/4", None),
            member("h/5", Some(&b)),
        ];
        states.push(MemberState {
            error: Some("connection refused".into()),
            ..member("h/6", None)
        });
        let g = group(&states, &a, |c| (Some(format!("d-{}", &c[..1])), vec![]));
        let seen: Vec<(Option<&str>, usize, bool)> = g
            .iter()
            .map(|g| (g.describe.as_deref(), g.databases, g.at_target))
            .collect();
        assert_eq!(
            seen,
            vec![
                (Some("d-a"), 1, true),
                (Some("d-b"), 3, false),
                (None, 1, false)
            ]
        );
    }

    /// Commits named by their short id.
    struct Short;

    impl CommitNames for Short {
        fn describe(&self, commit: &str) -> String {
            short(commit)
        }

        fn summary(&self, _: &str) -> Option<String> {
            None
        }
    }

    #[test]
    fn a_failed_child_reads_as_failed_with_its_error_and_a_crash_keeps_its_last_words() {
        let end = |code: i32, stdout: &str, stderr: &str| Ended {
            index: 0,
            code,
            stdout: stdout.into(),
            stderr: stderr.into(),
            seconds: 0.5,
        };
        let m = member_doc(
            "h/t1",
            Some(end(
                4,
                r#"{"error":{"message":"migration 1_x failed","causes":["relation exists"],"hints":[],"exit_code":4,"problems":[]}}"#,
                "",
            )),
        );
        assert_eq!(m.status, Status::Failed);
        assert_eq!(
            member_text(&m, &Short),
            vec![
                "FAILED  h/t1  exit 4: migration 1_x failed",
                "        caused by: relation exists"
            ]
        );
        let m = member_doc("h/t2", Some(end(101, "", "thread panicked\n")));
        assert_eq!(m.status, Status::Failed);
        assert_eq!(
            member_text(&m, &Short)[0],
            "FAILED  h/t2  exit 101: thread panicked"
        );
        let m = member_doc(
            "h/t3",
            Some(end(
                0,
                r#"{"applied":[1,2],"reverted":[],"at":"abcdef1234","deployment_id":7,"metadata_changed":false,"lock_retries":0,"seconds":0.1}"#,
                "",
            )),
        );
        assert_eq!(m.status, Status::Done);
        assert_eq!(
            member_text(&m, &Short),
            vec!["ok      h/t3  at abcdef1234 in 0.50s: 0 reverted, 2 applied (#7)"]
        );
        let m = member_doc("h/t4", None);
        assert_eq!(m.status, Status::NotStarted);
    }

    fn doc_of(
        statuses: &[(Status, Option<i32>, &[&str])],
        halted: Option<&'static str>,
    ) -> FleetDoc {
        let databases: Vec<MemberDoc> = statuses
            .iter()
            .enumerate()
            .map(|(i, (status, code, warnings))| MemberDoc {
                database: format!("h/t{i}"),
                status: status.clone(),
                exit_code: *code,
                result: None,
                seconds: 0.1,
                warnings: warnings.iter().map(|w| w.to_string()).collect(),
            })
            .collect();
        FleetDoc::new(databases, halted, "f".into(), 1.5)
    }

    #[test]
    fn the_summary_counts_names_the_failures_and_warns_once_per_warning() {
        let doc = doc_of(
            &[
                (Status::Done, Some(0), &["lint: x"]),
                (Status::Failed, Some(3), &["lint: x"]),
                (Status::NotStarted, None, &[]),
            ],
            Some("max-failures"),
        );
        assert_eq!(fleet_warnings(&doc), vec!["lint: x (2 database(s))"]);
        assert_eq!(
            summary_lines(&doc),
            vec![
                "Fleet: 3 database(s) in 1.50s: 1 moved, 1 failed, 1 not started.",
                "halted: more databases failed than --max-failures allows; the 1 database(s) not started are unchanged",
                "failed (each rolled back; its database is as it was): h/t1",
                "not started: h/t2",
                "next: fix the failure above, then run the same command again: databases already at the target have nothing to do",
            ]
        );
        // One kind of failure keeps its exit code; mixed ones are 4; an interrupt is 130.
        assert_eq!(outcome(&doc).unwrap_err().kind, Kind::Refused);
        let mixed = doc_of(
            &[
                (Status::Failed, Some(3), &[]),
                (Status::Failed, Some(4), &[]),
            ],
            None,
        );
        assert_eq!(outcome(&mixed).unwrap_err().kind, Kind::Failure);
        let stopped = doc_of(&[(Status::Failed, Some(130), &[])], Some("interrupted"));
        assert_eq!(outcome(&stopped).unwrap_err().kind, Kind::Interrupted);
        let fine = doc_of(
            &[
                (Status::Done, Some(0), &[]),
                (Status::AlreadyThere, Some(0), &[]),
            ],
            None,
        );
        assert!(outcome(&fine).is_ok());
        assert_eq!(
            summary_lines(&fine),
            vec!["Fleet: 2 database(s) in 1.50s: 1 moved, 1 already there, 0 failed."]
        );
    }

    #[test]
    fn status_fits_one_screen_whatever_the_fleet_size() {
        let a = "a".repeat(40);
        let mut states: Vec<MemberState> = (0..1000)
            .map(|i| member(&format!("h/{i}"), Some(&a)))
            .collect();
        for s in states.iter_mut().take(30) {
            s.error = Some("connection refused".into());
        }
        let doc = FleetStatusDoc {
            origin: "f".into(),
            target: json::Target {
                commit: Some(a.clone()),
                reference: "v2".into(),
            },
            groups: group(&states, &a, |_| {
                (Some("v2 (aaaaaaaaaa)".into()), vec!["v2".into()])
            }),
            in_sync: 970,
            unreachable: 30,
            databases: states,
        };
        let lines = status_lines(&doc, "v2 (aaaaaaaaaa)");
        assert!(lines.len() <= 30, "{}", lines.join("\n"));
        assert_eq!(lines[3], "aaaaaaaaaa  v2             970  target");
        assert!(lines.contains(&"flagged     30 database(s)".to_string()));
        assert!(lines.contains(&"  … and 10 more (--json lists every database)".to_string()));
    }
}
