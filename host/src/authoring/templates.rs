//! The files `fastmcp plugin new` writes, embedded in the binary: a source
//! tree per language, the manifest, and the WIT contract (`wit/plugin.wit`
//! and the WASI packages it names, under `wit/deps/`).

use super::Lang;

/// `(path inside the plugin directory, contents)`; `{{name}}` is replaced.
pub fn sources(lang: Lang) -> &'static [(&'static str, &'static str)] {
    match lang {
        Lang::Rust => &[
            ("Cargo.toml", include_str!("../../templates/rust/Cargo.toml")),
            ("Cargo.lock", RUST_LOCKFILE),
            ("src/lib.rs", include_str!("../../templates/rust/src/lib.rs")),
            (".gitignore", include_str!("../../templates/rust/gitignore")),
        ],
        Lang::Python => &[
            ("app.py", include_str!("../../templates/python/app.py")),
            (".gitignore", include_str!("../../templates/python/gitignore")),
        ],
        Lang::Js => &[
            ("app.js", include_str!("../../templates/js/app.js")),
            (".gitignore", include_str!("../../templates/js/gitignore")),
        ],
    }
}

/// The Rust template's lockfile: the versions the workspace's own plugins
/// build with, so a new plugin's first build needs no registry lookup and
/// shares compiled dependencies with them.
const RUST_LOCKFILE: &str = include_str!("../../templates/rust/Cargo.lock");

/// The manifest; `{{name}}`, `{{lang}}`, `{{component}}` and `{{memory_mb}}`
/// are replaced.
pub const MANIFEST: &str = include_str!("../../templates/manifest.yaml");

/// The contract, as the plugin's `wit/` directory.
pub const WIT: &[(&str, &str)] = &[
    ("plugin.wit", include_str!("../../../wit/plugin.wit")),
    ("deps/cli.wit", include_str!("../../../wit/deps/cli.wit")),
    ("deps/clocks.wit", include_str!("../../../wit/deps/clocks.wit")),
    ("deps/filesystem.wit", include_str!("../../../wit/deps/filesystem.wit")),
    ("deps/http.wit", include_str!("../../../wit/deps/http.wit")),
    ("deps/io.wit", include_str!("../../../wit/deps/io.wit")),
    ("deps/random.wit", include_str!("../../../wit/deps/random.wit")),
    ("deps/sockets.wit", include_str!("../../../wit/deps/sockets.wit")),
];

#[cfg(test)]
mod tests {
    /// `(name, version)` of every package a lockfile pins.
    fn pinned(lockfile: &str) -> Vec<(String, String)> {
        let mut pins = Vec::new();
        let mut name = None;
        for line in lockfile.lines() {
            if let Some(n) = line.strip_prefix("name = ") {
                name = Some(n.trim_matches('"').to_owned());
            } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
                pins.push((n, v.trim_matches('"').to_owned()));
            }
        }
        pins
    }

    #[test]
    fn the_rust_template_pins_what_the_workspace_builds_with() {
        let workspace = pinned(include_str!("../../../Cargo.lock"));
        let template = pinned(super::RUST_LOCKFILE);
        assert!(template.iter().any(|(n, _)| n == "wit-bindgen"), "{template:?}");
        for pin in template.iter().filter(|(n, _)| n != "{{name}}") {
            assert!(
                workspace.contains(pin),
                "host/templates/rust/Cargo.lock pins {pin:?}, which Cargo.lock does not: regenerate it from Cargo.lock (docs/plugins.md)"
            );
        }
    }
}
