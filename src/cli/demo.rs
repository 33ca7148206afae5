//! `git migrate demo`: builds the sample repository in a temp dir, starts a throwaway
//! PostgreSQL (unless --database-url is given), and runs deploy → status → rollback → status,
//! showing each command and its output.

use super::error::{CommandError, Kind};
use super::ui::Ui;
use clap::Args;
use std::process::Command;
use std::time::Instant;

/// Arguments of `demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {}

/// `git migrate demo`.
pub(crate) fn cmd_demo(
    ui: &Ui,
    _args: &DemoArgs,
    database_url: Option<&str>,
) -> Result<(), CommandError> {
    let started = Instant::now();
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        CommandError::new(Kind::Failure, format!("demo: {what}: {e}"))
    };
    let dir = tempfile::Builder::new()
        .prefix("git-migrate-demo-")
        .tempdir()
        .map_err(|e| fail("cannot create a temp dir", &e))?;
    let repo_dir = dir.path().join("shop");
    let tags = crate::fixtures::build_repo(&repo_dir, "shop", false)
        .map_err(|e| fail("cannot build the sample repository", &e))?;
    ui.out(&format!(
        "Sample repository {} with {} tagged commits: {}",
        repo_dir.display(),
        tags.len(),
        tags.iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));

    let cluster;
    let url = match database_url {
        Some(u) => u.to_string(),
        None => {
            ui.out("Starting a throwaway PostgreSQL server…");
            cluster = git_migrate_core::scratch::Cluster::start().map_err(|e| {
                CommandError::new(Kind::Failure, format!("demo: {e}")).hint(
                    "or pass --database-url to run the demo against a scratch database you provide",
                )
            })?;
            let url = cluster
                .create_database("shop", None)
                .map_err(|e| fail("cannot create the demo database", &e))?;
            ui.out(&format!(
                "  listening on {}",
                cluster.socket_dir().display()
            ));
            url
        }
    };
    let exe =
        std::env::current_exe().map_err(|e| fail("cannot find the git-migrate binary", &e))?;
    let steps: &[&[&str]] = &[
        &["deploy", "v1.1.0", "--yes"],
        &["deploy", "v2.0.0", "--yes"],
        &["status"],
        &["rollback", "v1.0.0", "--dry-run"],
        &["rollback", "v1.0.0", "--yes"],
        &["status"],
        &["log"],
    ];
    for args in steps {
        ui.out("");
        ui.out(&ui.paint(
            &format!("$ git migrate {}", args.join(" ")),
            console::Style::new().bold(),
        ));
        let out = Command::new(&exe)
            .args(*args)
            .arg("--color")
            .arg(if ui.color { "always" } else { "never" })
            .current_dir(&repo_dir)
            .env("DATABASE_URL", &url)
            .env("GIT_MIGRATE_ACTOR", "demo")
            .output()
            .map_err(|e| fail("cannot run git-migrate", &e))?;
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            ui.out(l);
        }
        for l in String::from_utf8_lossy(&out.stderr).lines() {
            ui.out(l);
        }
        if !out.status.success() {
            return Err(CommandError::new(
                Kind::Failure,
                format!(
                    "demo: `git migrate {}` failed ({})",
                    args.join(" "),
                    out.status
                ),
            ));
        }
    }
    ui.out("");
    ui.out(&format!(
        "Demo finished in {:.1}s; the temp repository and server are removed.",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
