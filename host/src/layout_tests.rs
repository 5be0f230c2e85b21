//! The docs that describe the code's layout stay true: every path
//! `docs/architecture.md` names exists, its table names every module
//! directory, and `lib.rs`'s layout names every module the crate has.

use std::collections::BTreeSet;
use std::path::Path;

const ARCHITECTURE: &str = include_str!("../../docs/architecture.md");
const LIB: &str = include_str!("lib.rs");

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent")
}

/// Backticked words of `text` that name repository paths.
fn named_paths(text: &str) -> BTreeSet<&str> {
    const ROOTS: &[&str] = &["host/", "wit/", "plugins/", "tests/", "devtools/", "bench/", "docs/"];
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| ROOTS.iter().any(|root| word.starts_with(root)) || *word == "fastmcp.example.yaml")
        .filter(|word| !word.contains(' ') && !word.contains('*'))
        .collect()
}

/// The modules `lib.rs` declares.
fn declared_modules() -> BTreeSet<&'static str> {
    LIB.lines()
        .filter_map(|line| line.strip_prefix("pub mod ").or_else(|| line.strip_prefix("pub(crate) mod ")))
        .filter_map(|rest| rest.strip_suffix(';'))
        .collect()
}

#[test]
fn every_path_the_architecture_names_exists() {
    let missing: Vec<_> =
        named_paths(ARCHITECTURE).into_iter().filter(|p| !workspace().join(p).exists()).collect();
    assert!(missing.is_empty(), "docs/architecture.md names paths that do not exist: {missing:?}");
}

#[test]
fn every_module_is_declared_and_named_in_the_layouts() {
    let src = workspace().join("host/src");
    let mut on_disk = BTreeSet::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let module = path.is_dir() || path.extension().is_some_and(|e| e == "rs");
        if module && !["lib", "main"].contains(&name.as_str()) && !name.ends_with("_tests") {
            on_disk.insert(name);
        }
    }
    let declared: BTreeSet<String> = declared_modules().into_iter().map(str::to_owned).collect();
    assert_eq!(on_disk, declared, "host/src and lib.rs's module declarations differ");
    let layout = LIB.split("//! # Layout").nth(1).expect("lib.rs has a Layout section");
    let unnamed: Vec<_> = declared.iter().filter(|m| !layout.contains(&format!("[`{m}`]"))).collect();
    assert!(unnamed.is_empty(), "lib.rs's layout does not name: {unnamed:?}");
    let table = ARCHITECTURE.split("## Layout").nth(1).expect("docs/architecture.md has a Layout section");
    let directories: Vec<_> = declared
        .iter()
        .filter(|m| src.join(m).is_dir() && !table.contains(&format!("`host/src/{m}/`")))
        .collect();
    assert!(directories.is_empty(), "docs/architecture.md's layout does not name: {directories:?}");
}
