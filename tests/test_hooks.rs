//! `git migrate hooks install|uninstall`: where the hooks go (core.hooksPath, linked worktrees,
//! bare repositories), never clobbering foreign hooks, and scripts that really gate `git commit`,
//! `git push` and a push received by a bare repository. `git migrate check` itself is replaced by
//! a fake binary (through `GIT_MIGRATE_BIN`) that records its arguments and stdin and exits with
//! a chosen code.

#![cfg(unix)]

use crate::common::git::TestRepo;
use crate::common::{gm, gm_env, Run};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const MARKER: &str = "# installed by git-migrate; remove with: git migrate hooks uninstall";

fn hooks(dir: &Path, args: &[&str]) -> Run {
    let mut all = vec!["hooks"];
    all.extend_from_slice(args);
    gm(dir, "", &all)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn canon(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|e| panic!("canonicalize {}: {e}", p.display()))
}

/// Runs the git CLI hermetically (no system or user config, fixed identity).
fn git_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("git runs")
}

#[track_caller]
fn git_ok(dir: &Path, args: &[&str]) -> String {
    let out = git_env(dir, args, &[]);
    assert!(
        out.status.success(),
        "git {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Where git itself says hooks are run from (`git rev-parse --git-path hooks`, which honours
/// core.hooksPath), as an absolute canonical path.
fn git_hooks_dir(dir: &Path) -> PathBuf {
    let p = PathBuf::from(git_ok(dir, &["rev-parse", "--git-path", "hooks"]));
    canon(&dir.join(p))
}

/// A stand-in for `git-migrate`: writes its arguments (one per line) to `<log>.args` and its
/// stdin to `<log>.stdin`, then exits with `$FAKE_EXIT` (default 0).
struct FakeBin {
    dir: tempfile::TempDir,
}

impl FakeBin {
    fn new() -> FakeBin {
        let dir = tempfile::Builder::new()
            .prefix("gm-fake-")
            .tempdir()
            .unwrap();
        let bin = dir.path().join("fake-git-migrate");
        std::fs::write(
            &bin,
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$FAKE_LOG.args\"\ncat > \"$FAKE_LOG.stdin\"\nexit \"${FAKE_EXIT:-0}\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeBin { dir }
    }

    fn bin(&self) -> String {
        self.dir
            .path()
            .join("fake-git-migrate")
            .display()
            .to_string()
    }

    fn log(&self) -> String {
        self.dir.path().join("log").display().to_string()
    }

    /// The environment that makes a hook call this fake and exit with `code`.
    fn env(&self, code: i32) -> Vec<(String, String)> {
        vec![
            ("GIT_MIGRATE_BIN".into(), self.bin()),
            ("FAKE_LOG".into(), self.log()),
            ("FAKE_EXIT".into(), code.to_string()),
        ]
    }

    fn args(&self) -> Vec<String> {
        read(Path::new(&format!("{}.args", self.log())))
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn stdin(&self) -> String {
        read(Path::new(&format!("{}.stdin", self.log())))
    }

    fn reset(&self) {
        let _ = std::fs::remove_file(format!("{}.args", self.log()));
        let _ = std::fs::remove_file(format!("{}.stdin", self.log()));
    }
}

fn borrow(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Runs a hook script directly, as git would: `sh <hook> args…` with `stdin`.
fn run_hook(
    cwd: &Path,
    hook: &Path,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
) -> (i32, String) {
    use std::io::Write;
    let mut cmd = Command::new(hook);
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the hook runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn install_default_writes_pre_commit_and_pre_push() {
    let repo = TestRepo::new();
    let p = repo.path();
    let r = hooks(&p, &["install"]);
    r.expect_code(0)
        .expect_contains("installed .git/hooks/pre-commit")
        .expect_contains("installed .git/hooks/pre-push");
    let dir = git_hooks_dir(&p);
    assert_eq!(dir, canon(&p.join(".git/hooks")));
    for (name, exec) in [
        ("pre-commit", "exec \"$bin\" check --staged\n"),
        ("pre-push", "exec \"$bin\" check --pre-push \"$@\"\n"),
    ] {
        let f = dir.join(name);
        let text = read(&f);
        assert!(text.starts_with("#!/bin/sh\n"), "{name}:\n{text}");
        assert!(text.lines().any(|l| l == MARKER), "{name}:\n{text}");
        assert!(text.ends_with(exec), "{name}:\n{text}");
        assert_eq!(mode(&f), 0o755, "{name}");
    }
    assert!(!dir.join("pre-receive").exists());
    // Not on PATH in tests: the scripts call this very binary by its absolute path, quoted.
    let exe = canon(Path::new(env!("CARGO_BIN_EXE_git-migrate")));
    assert!(read(&dir.join("pre-commit")).contains(&format!("bin='{}'\n", exe.display())));
}

#[test]
fn install_uses_the_name_when_the_binary_is_first_on_path() {
    let repo = TestRepo::new();
    let p = repo.path();
    let exe = Path::new(env!("CARGO_BIN_EXE_git-migrate"));
    let path = format!(
        "{}:{}",
        exe.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    gm_env(&p, "", &["hooks", "install"], &[("PATH", &path)]).expect_code(0);
    assert!(read(&p.join(".git/hooks/pre-commit")).contains("bin='git-migrate'\n"));
}

#[test]
fn reinstall_is_idempotent_and_repairs_our_own_hook() {
    let repo = TestRepo::new();
    let p = repo.path();
    hooks(&p, &["install"]).expect_code(0);
    let f = p.join(".git/hooks/pre-commit");
    let first = read(&f);
    hooks(&p, &["install"])
        .expect_code(0)
        .expect_contains("unchanged .git/hooks/pre-commit");
    assert_eq!(read(&f), first);
    // Our own hook, edited or with --verify added, is simply rewritten; no backup is made.
    std::fs::write(&f, format!("{first}echo edited\n")).unwrap();
    hooks(&p, &["install", "--pre-commit", "--verify"])
        .expect_code(0)
        .expect_contains("updated .git/hooks/pre-commit");
    assert!(read(&f).ends_with("exec \"$bin\" check --staged --verify\n"));
    assert!(!p.join(".git/hooks/pre-commit.pre-git-migrate").exists());
    assert_eq!(mode(&f), 0o755);
}

#[test]
fn foreign_hook_is_refused_then_moved_aside_with_force_and_restored() {
    let repo = TestRepo::new();
    let p = repo.path();
    let dir = p.join(".git/hooks");
    std::fs::create_dir_all(&dir).unwrap();
    let foreign = "#!/bin/sh\necho 'my own lint'\n";
    std::fs::write(dir.join("pre-commit"), foreign).unwrap();
    std::fs::set_permissions(
        dir.join("pre-commit"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();

    let r = hooks(&p, &["install"]);
    r.expect_code(2)
        .expect_contains("pre-commit already exists and was not installed by git-migrate")
        .expect_contains("--force");
    assert_eq!(read(&dir.join("pre-commit")), foreign);
    // Nothing was changed: not even the pre-push hook, which was free.
    assert!(!dir.join("pre-push").exists());
    assert!(!dir.join("pre-commit.pre-git-migrate").exists());

    hooks(&p, &["install", "--force"])
        .expect_code(0)
        .expect_contains("moved to .git/hooks/pre-commit.pre-git-migrate");
    assert_eq!(read(&dir.join("pre-commit.pre-git-migrate")), foreign);
    assert!(read(&dir.join("pre-commit")).contains(MARKER));
    assert!(read(&dir.join("pre-push")).contains(MARKER));
    // A second forced install finds our own hook: the backup stays as it is.
    hooks(&p, &["install", "--force"]).expect_code(0);
    assert_eq!(read(&dir.join("pre-commit.pre-git-migrate")), foreign);

    hooks(&p, &["uninstall"])
        .expect_code(0)
        .expect_contains("restored .git/hooks/pre-commit")
        .expect_contains("removed .git/hooks/pre-push");
    assert_eq!(read(&dir.join("pre-commit")), foreign);
    assert_eq!(mode(&dir.join("pre-commit")), 0o700);
    assert!(!dir.join("pre-commit.pre-git-migrate").exists());
    assert!(!dir.join("pre-push").exists());
}

#[test]
fn force_refuses_to_overwrite_an_existing_backup() {
    let repo = TestRepo::new();
    let p = repo.path();
    let dir = p.join(".git/hooks");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pre-push"), "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::write(dir.join("pre-push.pre-git-migrate"), "old backup\n").unwrap();
    hooks(&p, &["install", "--force"])
        .expect_code(2)
        .expect_contains("pre-push.pre-git-migrate already exists");
    assert_eq!(read(&dir.join("pre-push")), "#!/bin/sh\nexit 0\n");
    assert_eq!(read(&dir.join("pre-push.pre-git-migrate")), "old backup\n");
    assert!(!dir.join("pre-commit").exists());
}

#[test]
fn uninstall_leaves_foreign_hooks_alone() {
    let repo = TestRepo::new();
    let p = repo.path();
    let dir = p.join(".git/hooks");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pre-push"), "#!/bin/sh\nexit 0\n").unwrap();
    hooks(&p, &["install", "--pre-commit"]).expect_code(0);
    hooks(&p, &["uninstall"])
        .expect_code(0)
        .expect_contains("removed .git/hooks/pre-commit")
        .expect_contains("kept .git/hooks/pre-push: it was not installed by git-migrate");
    assert!(!dir.join("pre-commit").exists());
    assert_eq!(read(&dir.join("pre-push")), "#!/bin/sh\nexit 0\n");
    hooks(&p, &["uninstall", "--pre-commit"])
        .expect_code(0)
        .expect_contains("no git-migrate hooks in .git/hooks");
}

#[test]
fn relative_core_hooks_path_is_relative_to_the_working_tree_root() {
    let repo = TestRepo::new();
    let p = repo.path();
    git_ok(&p, &["config", "core.hooksPath", ".githooks"]);
    let sub = p.join("sub/dir");
    std::fs::create_dir_all(&sub).unwrap();
    // Run from a subfolder: the path is still taken from the root, as git does.
    let r = hooks(&sub, &["install"]);
    r.expect_code(0)
        .expect_contains("core.hooksPath is \".githooks\"");
    assert!(read(&p.join(".githooks/pre-commit")).contains(MARKER));
    assert!(read(&p.join(".githooks/pre-push")).contains(MARKER));
    assert!(!p.join(".git/hooks/pre-commit").exists());
    assert!(!sub.join(".githooks").exists());
    assert_eq!(git_hooks_dir(&p), canon(&p.join(".githooks")));
    hooks(&sub, &["uninstall"]).expect_code(0);
    assert!(!p.join(".githooks/pre-commit").exists());
}

#[test]
fn absolute_core_hooks_path_is_respected() {
    let repo = TestRepo::new();
    let p = repo.path();
    let shared = tempfile::Builder::new()
        .prefix("gm-hooks-")
        .tempdir()
        .unwrap();
    let target = shared.path().join("not-yet-created");
    git_ok(&p, &["config", "core.hooksPath", target.to_str().unwrap()]);
    let r = gm(&p, "", &["hooks", "install", "--json"]);
    r.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["core_hooks_path"], target.to_str().unwrap());
    assert!(read(&target.join("pre-commit")).contains(MARKER));
    assert!(read(&target.join("pre-push")).contains(MARKER));
    assert_eq!(git_hooks_dir(&p), canon(&target));
}

#[test]
fn bare_repository_gets_pre_receive() {
    let repo = TestRepo::bare();
    let p = repo.path();
    hooks(&p, &["install"])
        .expect_code(0)
        .expect_contains("hooks/pre-receive");
    let f = p.join("hooks/pre-receive");
    assert!(read(&f).ends_with("exec \"$bin\" check --pre-receive\n"));
    assert_eq!(mode(&f), 0o755);
    assert!(!p.join("hooks/pre-commit").exists());
    assert!(!p.join("hooks/pre-push").exists());
    assert_eq!(git_hooks_dir(&p), canon(&p.join("hooks")));
    // Nobody commits in a bare repository.
    hooks(&p, &["install", "--pre-commit"])
        .expect_code(2)
        .expect_contains("bare repository");
    // A relative core.hooksPath is relative to the git dir here.
    git_ok(&p, &["config", "core.hooksPath", "custom"]);
    hooks(&p, &["install"]).expect_code(0);
    assert!(read(&p.join("custom/pre-receive")).contains(MARKER));
    assert_eq!(git_hooks_dir(&p), canon(&p.join("custom")));
}

#[test]
fn linked_worktree_installs_into_the_common_hooks_dir() {
    let mut repo = TestRepo::new();
    repo.commit(&[("README", "hello\n")], &[], "first");
    let holder = tempfile::Builder::new().prefix("gm-wt-").tempdir().unwrap();
    let wt = holder.path().join("wt");
    repo.repo.worktree("wt", &wt, None).unwrap();
    hooks(&wt, &["install"]).expect_code(0);
    let common = repo.path().join(".git/hooks");
    assert!(read(&common.join("pre-commit")).contains(MARKER));
    assert!(read(&common.join("pre-push")).contains(MARKER));
    assert!(!repo.path().join(".git/worktrees/wt/hooks").exists());
    assert_eq!(git_hooks_dir(&wt), canon(&common));
    hooks(&wt, &["uninstall"]).expect_code(0);
    assert!(!common.join("pre-commit").exists());
}

#[test]
fn json_reports_parse() {
    let repo = TestRepo::new();
    let p = repo.path();
    let r = gm(&p, "", &["hooks", "install", "--json", "--verify"]);
    r.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["command"], "install");
    assert_eq!(
        canon(Path::new(doc["hooks_dir"].as_str().unwrap())),
        canon(&p.join(".git/hooks"))
    );
    assert!(doc["core_hooks_path"].is_null());
    let hooks_json = doc["hooks"].as_array().unwrap();
    assert_eq!(hooks_json.len(), 2);
    assert_eq!(hooks_json[0]["hook"], "pre-commit");
    assert_eq!(hooks_json[0]["action"], "installed");
    assert_eq!(
        hooks_json[0]["command"],
        "git-migrate check --staged --verify"
    );
    assert_eq!(hooks_json[1]["hook"], "pre-push");
    assert!(hooks_json[1]["backup"].is_null());

    let r = gm(&p, "", &["hooks", "uninstall", "--json"]);
    r.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let actions: Vec<&str> = doc["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["removed", "removed", "not-installed"]);

    // A refusal is a JSON error document with exit code 2.
    std::fs::write(p.join(".git/hooks/pre-push"), "#!/bin/sh\n").unwrap();
    let r = gm(&p, "", &["hooks", "install", "--json"]);
    r.expect_code(2);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["error"]["exit_code"], 2);
}

#[test]
fn pre_commit_hook_gates_a_real_git_commit() {
    let repo = TestRepo::new();
    let p = repo.path();
    let fake = FakeBin::new();
    hooks(&p, &["install"]).expect_code(0);

    std::fs::write(p.join("a.txt"), "a\n").unwrap();
    git_ok(&p, &["add", "a.txt"]);
    // --no-verify skips the hook altogether.
    let env = fake.env(1);
    let out = git_env(
        &p,
        &["commit", "-q", "--no-verify", "-m", "first"],
        &borrow(&env),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = git_ok(&p, &["rev-parse", "HEAD"]);
    assert!(!Path::new(&format!("{}.args", fake.log())).exists());

    std::fs::write(p.join("b.txt"), "b\n").unwrap();
    git_ok(&p, &["add", "b.txt"]);
    // Findings (exit 1): the commit is refused and HEAD stays put.
    fake.reset();
    let out = git_env(&p, &["commit", "-q", "-m", "second"], &borrow(&fake.env(1)));
    assert!(!out.status.success());
    assert_eq!(git_ok(&p, &["rev-parse", "HEAD"]), first);
    assert_eq!(fake.args(), ["check", "--staged"]);

    // Clean (exit 0): the commit goes through.
    fake.reset();
    let out = git_env(&p, &["commit", "-q", "-m", "second"], &borrow(&fake.env(0)));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(git_ok(&p, &["rev-parse", "HEAD"]), first);
    assert_eq!(git_ok(&p, &["rev-parse", "HEAD~1"]), first);
    assert_eq!(fake.args(), ["check", "--staged"]);
}

#[test]
fn pre_push_hook_passes_arguments_and_stdin_and_propagates_the_exit_code() {
    let repo = TestRepo::new();
    let p = repo.path();
    let fake = FakeBin::new();
    hooks(&p, &["install", "--pre-push", "--verify"]).expect_code(0);
    let hook = p.join(".git/hooks/pre-push");
    let lines = "refs/heads/main 1111111111111111111111111111111111111111 refs/heads/main 2222222222222222222222222222222222222222\n";
    for code in [0, 1, 2, 7] {
        fake.reset();
        let (got, stderr) = run_hook(
            &p,
            &hook,
            &["origin", "https://example.invalid/r.git"],
            lines,
            &borrow(&fake.env(code)),
        );
        assert_eq!(got, code, "{stderr}");
        assert_eq!(
            fake.args(),
            [
                "check",
                "--pre-push",
                "--verify",
                "origin",
                "https://example.invalid/r.git"
            ]
        );
        assert_eq!(fake.stdin(), lines);
    }
}

#[test]
fn pre_push_hook_gates_a_real_git_push() {
    let mut repo = TestRepo::new();
    let p = repo.path();
    repo.commit(&[("README", "hello\n")], &[], "first");
    let remote = TestRepo::bare();
    let url = remote.path().display().to_string();
    let fake = FakeBin::new();
    hooks(&p, &["install", "--pre-push"]).expect_code(0);
    let head = git_ok(&p, &["rev-parse", "HEAD"]);

    let out = git_env(
        &p,
        &["push", "-q", &url, "HEAD:refs/heads/main"],
        &borrow(&fake.env(1)),
    );
    assert!(!out.status.success());
    assert!(remote.repo.find_reference("refs/heads/main").is_err());
    assert_eq!(fake.args(), ["check", "--pre-push", &url, &url]);
    let stdin = fake.stdin();
    assert!(
        stdin.starts_with(&format!("HEAD {head} refs/heads/main ")),
        "{stdin}"
    );

    fake.reset();
    let out = git_env(
        &p,
        &["push", "-q", &url, "HEAD:refs/heads/main"],
        &borrow(&fake.env(0)),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        remote
            .repo
            .find_reference("refs/heads/main")
            .unwrap()
            .target()
            .unwrap()
            .to_string(),
        head
    );
}

#[test]
fn pre_receive_hook_gates_a_push_into_a_bare_repository() {
    let mut repo = TestRepo::new();
    let p = repo.path();
    repo.commit(&[("README", "hello\n")], &[], "first");
    let remote = TestRepo::bare();
    let url = remote.path().display().to_string();
    hooks(&remote.path(), &["install"]).expect_code(0);
    let fake = FakeBin::new();
    let head = git_ok(&p, &["rev-parse", "HEAD"]);

    let out = git_env(
        &p,
        &["push", "-q", &url, "HEAD:refs/heads/main"],
        &borrow(&fake.env(1)),
    );
    assert!(!out.status.success());
    assert!(remote.repo.find_reference("refs/heads/main").is_err());
    assert_eq!(fake.args(), ["check", "--pre-receive"]);
    assert_eq!(
        fake.stdin(),
        format!("{} {head} refs/heads/main\n", "0".repeat(40))
    );

    fake.reset();
    let out = git_env(
        &p,
        &["push", "-q", &url, "HEAD:refs/heads/main"],
        &borrow(&fake.env(0)),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(remote.repo.find_reference("refs/heads/main").is_ok());
}

#[test]
fn hook_fails_loudly_when_the_binary_is_missing() {
    let repo = TestRepo::new();
    let p = repo.path();
    hooks(&p, &["install", "--pre-commit"]).expect_code(0);
    let hook = p.join(".git/hooks/pre-commit");
    for missing in ["/nonexistent/git-migrate", "git-migrate-not-on-path"] {
        let (code, stderr) = run_hook(&p, &hook, &[], "", &[("GIT_MIGRATE_BIN", missing)]);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains(&format!("cannot run '{missing}'")),
            "{stderr}"
        );
    }
    // A folder is not a binary either.
    let (code, _) = run_hook(&p, &hook, &[], "", &[("GIT_MIGRATE_BIN", "/tmp")]);
    assert_eq!(code, 2);
}
