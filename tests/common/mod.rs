//! Test harness: a throwaway PostgreSQL cluster per test run, one database per test, real git
//! repositories built with git2, and a runner for the real binary.

#![allow(dead_code)]

pub mod git;
pub mod pg;
pub mod reliability;
pub mod source;
pub mod tcp;

use std::path::Path;
use std::process::Command;

/// Output of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// What a finished process printed and how it exited.
    pub fn from_output(out: &std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// stdout + stderr, for searching.
    pub fn all(&self) -> String {
        format!("{}\n--- stderr ---\n{}", self.stdout, self.stderr)
    }

    /// Panics with the whole output unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            code,
            "unexpected exit code; output:\n{}",
            self.all()
        );
        self
    }

    /// Panics unless the output contains `needle`.
    #[track_caller]
    pub fn expect_contains(&self, needle: &str) -> &Self {
        assert!(
            self.all().contains(needle),
            "output does not contain {needle:?}:\n{}",
            self.all()
        );
        self
    }
}

/// Runs `git-migrate` in `dir` with `DATABASE_URL=url` and a clean environment.
pub fn gm(dir: &Path, url: &str, args: &[&str]) -> Run {
    gm_env(dir, url, args, &[])
}

/// Like [`gm`] with extra environment variables.
pub fn gm_env(dir: &Path, url: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = gm_command(dir, url, args, env)
        .output()
        .expect("the git-migrate binary runs");
    Run::from_output(&out)
}

/// The command [`gm_env`] runs: the real binary in `dir`, with a clean environment,
/// `DATABASE_URL=url` (unless empty) and `env`.
pub fn gm_command(dir: &Path, url: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_git-migrate"));
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_MIGRATE_ACTOR", "test")
        .env("NO_COLOR", "1");
    if !url.is_empty() {
        cmd.env("DATABASE_URL", url);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}
