//! The one integration test binary: every test file is a module here, so there is one binary
//! to link and one throwaway PostgreSQL cluster per run (started by `common::pg`).

mod common;

mod test_adopt;
mod test_apply;
mod test_authoring;
mod test_bad_input;
mod test_check;
mod test_computed_downs;
mod test_concurrency;
mod test_connection;
mod test_consistency;
mod test_deploy;
mod test_diff;
mod test_end_state;
mod test_environments;
mod test_fingerprint;
mod test_fleet;
mod test_forward_only;
mod test_hasura_catalog;
mod test_history;
mod test_hooks;
mod test_hostile;
mod test_interrupt;
mod test_layering;
mod test_lint;
mod test_lock_retry;
mod test_metadata_cli;
mod test_no_transaction;
mod test_plan_file;
mod test_pooler;
mod test_promote;
mod test_real_projects;
mod test_reliability;
mod test_revision_settings;
mod test_rollback;
mod test_schema_diff;
mod test_secrets;
mod test_seed;
mod test_snapshots;
mod test_txcontrol;
mod test_v3_metadata;
mod test_verify;

/// Every `tests/test_*.rs` file must be listed above, or it would silently never run.
#[test]
fn no_forgotten_test_files() {
    let listed = include_str!("runner.rs");
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(m) = name
            .strip_prefix("test_")
            .and_then(|n| n.strip_suffix(".rs"))
        {
            assert!(
                listed.contains(&format!("mod test_{m};")),
                "tests/{name} is not included in tests/runner.rs"
            );
        }
    }
}
