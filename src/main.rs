//! The `git-migrate` binary (`git migrate …` when on PATH).

fn main() -> std::process::ExitCode {
    git_migrate::cli::main()
}
