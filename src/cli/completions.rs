//! `git migrate completions SHELL` and `git migrate man`: generated from the same [`Cli`] the
//! parser uses, so they cannot drift from it.

use super::error::{CommandError, Kind};
use super::Cli;
use clap::{Args, CommandFactory};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// Arguments of `man`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write git-migrate.1 and one page per command (git-migrate-deploy.1, …) into DIR instead
    /// of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The binary's name as the shell sees it (`git migrate …` is git running `git-migrate …`).
const BIN: &str = "git-migrate";

/// Bash: git's own completion calls `_git_migrate` for `git migrate …`; it hands over to the
/// generated function with the words `git-migrate …` would have.
const BASH_GIT_SHIM: &str = r#"
# `git migrate <TAB>`: git's completion (git-completion.bash) calls _git_migrate.
_git_migrate() {
    local -a words=("git-migrate" "${COMP_WORDS[@]:2}")
    COMP_WORDS=("${words[@]}")
    COMP_CWORD=$((COMP_CWORD - 1))
    COMP_LINE="git-migrate${COMP_LINE#git migrate}"
    COMP_POINT=$((COMP_POINT - 1))
    _git__migrate git-migrate "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
}
"#;

/// Prints the completion script for `args.shell`.
pub(crate) fn cmd_completions(args: &CompletionsArgs) -> Result<(), CommandError> {
    let mut cmd = Cli::command().bin_name(BIN);
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, BIN, &mut out);
    if args.shell == clap_complete::Shell::Bash {
        // clap_complete 4.6 names a subcommand's case `git__subcmd__migrate__subcmd__deploy`
        // where it dispatches on `git__migrate__subcmd__deploy` when the binary's name has a
        // hyphen, so no option of any command would complete; one spelling makes it work.
        let script = String::from_utf8_lossy(&out).replace("git__subcmd__migrate", "git__migrate");
        out = script.into_bytes();
        out.extend_from_slice(BASH_GIT_SHIM.as_bytes());
    }
    write_stdout(&out)
}

/// Prints the man page, or writes every page into `--out`.
pub(crate) fn cmd_man(args: &ManArgs) -> Result<(), CommandError> {
    let cmd = Cli::command().name(BIN).bin_name(BIN);
    let Some(dir) = &args.out else {
        let mut out = Vec::new();
        render(&cmd, &mut out)?;
        return write_stdout(&out);
    };
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    for page in pages(&cmd) {
        let path = dir.join(format!("{}.1", page.get_name()));
        let mut out = Vec::new();
        render(&page, &mut out)?;
        std::fs::write(&path, out).map_err(|e| write_error(&path, e))?;
    }
    Ok(())
}

/// The main page and one per command (`git-migrate-metadata-apply` for nested ones).
fn pages(cmd: &clap::Command) -> Vec<clap::Command> {
    let mut out = vec![cmd.clone()];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("{}-{}", cmd.get_name(), sub.get_name());
        let bin_name = format!(
            "{} {}",
            cmd.get_bin_name().unwrap_or(cmd.get_name()),
            sub.get_name()
        );
        let sub = sub.clone().name(name).bin_name(bin_name);
        out.extend(pages(&sub));
    }
    out
}

fn render(cmd: &clap::Command, out: &mut Vec<u8>) -> Result<(), CommandError> {
    clap_mangen::Man::new(cmd.clone())
        .render(out)
        .map_err(|e| CommandError::new(Kind::Failure, format!("cannot render the man page: {e}")))
}

fn write_stdout(bytes: &[u8]) -> Result<(), CommandError> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|_| stdout.flush()) {
        Ok(()) => Ok(()),
        // `git migrate man | head`: a closed pipe is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CommandError::new(
            Kind::Failure,
            format!("cannot write to stdout: {e}"),
        )),
    }
}

fn write_error(path: &std::path::Path, e: std::io::Error) -> CommandError {
    CommandError::new(
        Kind::Failure,
        format!("cannot write {}: {e}", path.display()),
    )
    .hint("pass --out a folder you can write to")
}
