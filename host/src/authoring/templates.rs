//! The files `fastmcp plugin new` writes, embedded in the binary: a source
//! tree per language, the manifest, and the WIT contract (`wit/plugin.wit`
//! and the WASI packages it names, under `wit/deps/`).

use super::Lang;

/// `(path inside the plugin directory, contents)`; `{{name}}` is replaced.
pub fn sources(lang: Lang) -> &'static [(&'static str, &'static str)] {
    match lang {
        Lang::Rust => &[
            ("Cargo.toml", include_str!("../../templates/rust/Cargo.toml")),
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
