//! What tool authors run: `fastmcp plugin new | build | check | dev`.
//!
//! - [`scaffold`] writes a new plugin's sources, WIT and manifest;
//! - [`toolchain`] installs each language's component tool into the
//!   project's tools directory (never globally);
//! - [`build`] turns a plugin's sources into its component, in place by rename;
//! - [`check`] loads manifests and components exactly as the host does and
//!   reports what does not match;
//! - [`dev`] watches a plugin's sources, rebuilds and checks on every change.
//!
//! A plugin is found through its manifest: the manifest's `component` path
//! names the component, and the plugin's sources are the directory that
//! holds it (`plugins/NAME/` for a plugin made by `new`).

pub mod build;
pub mod check;
pub mod cli;
pub mod dev;
pub mod scaffold;
mod templates;
pub mod toolchain;

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// A plugin's source language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust, built with `cargo build --target wasm32-wasip2`.
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with componentize-js.
    Js,
}

impl Lang {
    /// The file that marks a source directory as this language's.
    pub fn marker(self) -> &'static str {
        match self {
            Lang::Rust => "Cargo.toml",
            Lang::Python => "app.py",
            Lang::Js => "app.js",
        }
    }

    /// The language of the sources in `dir`, by their marker file.
    pub fn detect(dir: &Path) -> Option<Lang> {
        [Lang::Rust, Lang::Python, Lang::Js].into_iter().find(|lang| dir.join(lang.marker()).is_file())
    }

    /// The name used in messages and manifests.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }
}

/// Where the tool authors' commands work.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project root (`manifests/`, `plugins/`, `policies/`).
    pub root: PathBuf,
    /// Where language toolchains are installed (`ROOT/.fastmcp/tools` unless
    /// `--tools-dir` / `FASTMCP_TOOLS_DIR` says otherwise).
    pub tools_dir: PathBuf,
}

impl Project {
    /// A project at `root`, with its tools in `tools_dir` or the default.
    pub fn new(root: PathBuf, tools_dir: Option<PathBuf>) -> Self {
        let root = std::fs::canonicalize(&root).unwrap_or(root);
        let tools_dir = tools_dir.unwrap_or_else(|| root.join(".fastmcp/tools"));
        Self { root, tools_dir }
    }

    /// `path` against the root unless absolute.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() { path.to_path_buf() } else { self.root.join(path) }
    }
}

/// One plugin as the authoring commands see it.
#[derive(Debug, Clone)]
pub struct PluginSource {
    /// The plugin's name (the manifest's `plugin`).
    pub name: String,
    /// Its manifest.
    pub manifest: PathBuf,
    /// The component the manifest names (absolute).
    pub component: PathBuf,
    /// The sources: the component's directory.
    pub dir: PathBuf,
    /// Their language.
    pub lang: Lang,
}

impl PluginSource {
    /// Find a plugin by name (its manifest's `plugin`) or by its source
    /// directory (relative to the project root).
    pub fn locate(project: &Project, which: &str) -> anyhow::Result<Self> {
        let dir = project.root.join("manifests");
        let manifests =
            crate::registry::manifest_files(&dir).with_context(|| format!("reading {}", dir.display()))?;
        let as_dir = std::fs::canonicalize(project.resolve(Path::new(which))).ok().filter(|p| p.is_dir());
        let mut known = Vec::new();
        for file in manifests {
            let Some((name, component)) = read_plugin_and_component(&file) else { continue };
            let component = project.resolve(Path::new(&component));
            let dir = component.parent().map(Path::to_path_buf).unwrap_or_else(|| project.root.clone());
            let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
            if name == which || as_dir.as_ref() == Some(&dir) {
                let Some(lang) = Lang::detect(&dir) else {
                    bail!(
                        "{}: the plugin `{name}` has no sources in {} (no Cargo.toml, app.py or app.js beside its component)",
                        file.display(),
                        dir.display()
                    );
                };
                return Ok(Self { name, manifest: file, component, dir, lang });
            }
            known.push(name);
        }
        bail!(
            "no manifest in {} names the plugin `{which}` or has its component in that directory (plugins: [{}])",
            project.root.join("manifests").display(),
            known.join(", ")
        )
    }

    /// The WIT directory the build uses: the nearest `wit/` holding
    /// `plugin.wit`, from the sources up to the project root.
    pub fn wit_dir(&self, project: &Project) -> anyhow::Result<PathBuf> {
        let mut dir = Some(self.dir.as_path());
        while let Some(current) = dir {
            let wit = current.join("wit");
            if wit.join("plugin.wit").is_file() {
                return Ok(wit);
            }
            if current == project.root {
                break;
            }
            dir = current.parent();
        }
        bail!("no wit/plugin.wit in {} or above it up to the project root", self.dir.display())
    }
}

/// The `plugin` and `component` of a manifest, without validating the rest
/// (`check` does that, with the host's own loader).
fn read_plugin_and_component(file: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(file).ok()?;
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).ok()?;
    Some((value.get("plugin")?.as_str()?.to_owned(), value.get("component")?.as_str()?.to_owned()))
}

/// `.NAME.tmp` beside `path`.
pub fn temporary_beside(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}
