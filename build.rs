//! Embeds `fixtures/` into the binary so that `git migrate demo` works from anywhere.

use std::fmt::Write as _;
use std::path::Path;

fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("fixtures/ is readable")
        .map(|e| e.expect("fixture entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, root, out);
        } else {
            out.push(
                p.strip_prefix(root)
                    .expect("under fixtures/")
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    println!("cargo:rerun-if-changed=fixtures");
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    let mut code = String::from("/// Every file under `fixtures/`: (relative path, bytes).\npub static FILES: &[(&str, &[u8])] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed=fixtures/{f}");
        // The path is resolved when the crate compiles, not baked in here: a target directory
        // shared by two checkouts (a worktree) would otherwise embed the other checkout's files,
        // or fail once it is gone, since this script does not rerun for a new checkout.
        writeln!(
            code,
            "    ({f:?}, include_bytes!(concat!(env!(\"CARGO_MANIFEST_DIR\"), {:?}))),",
            format!("/fixtures/{f}")
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("fixtures.rs");
    std::fs::write(out, code).unwrap();
}
