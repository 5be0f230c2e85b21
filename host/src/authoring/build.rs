//! `fastmcp plugin build`: a plugin's sources into its component, with the
//! language's standard tool, moved into place by rename.
//!
//! - Rust: `cargo build --release --target wasm32-wasip2` into one target
//!   directory shared by the project's plugins (`ROOT/.fastmcp/target`
//!   unless `CARGO_TARGET_DIR` says otherwise), so their dependencies
//!   compile once; `plugin new` writes a lockfile with the versions the
//!   examples use;
//! - Python: `componentize-py` for the `http-plugin` world, `app.py` as the
//!   entry module (other modules beside it are bundled), entered through a
//!   generated module that first imports the codecs the standard library
//!   looks up by name at run time ([`python_entry`]);
//! - JavaScript: a syntax check that names file, line and column
//!   ([`JS_SYNTAX_CHECK`]), then `componentize-js` for the `plugin` world,
//!   `app.js` as the entry module (the JS runtime imports `wasi:http` for
//!   `fetch` itself).
//!
//! The tools write to the terminal, so build errors show as each tool
//! reports them.

use super::{Lang, PluginSource, Project, temporary_beside, toolchain};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The tool that builds a language's sources (installed when needed).
enum Tool {
    Cargo,
    ComponentizePy(PathBuf),
    ComponentizeJs(PathBuf),
}

/// A finished build.
#[derive(Debug)]
pub struct Built {
    /// Size of the component.
    pub bytes: u64,
    /// Wall time of the build (tool installs excluded).
    pub took: Duration,
}

/// Build `plugin` into the component its manifest names, moved into place
/// by rename — only if it is a component for the `fastmcp:plugin` world
/// (read by name, without compiling: [`crate::runtime::contract::precheck`];
/// `plugin check` and `plugin dev` load it whole).
pub fn build(project: &Project, plugin: &PluginSource) -> anyhow::Result<Built> {
    let tmp = temporary_beside(&plugin.component);
    let built = build_into(project, plugin, &tmp).and_then(|built| {
        let bytes = std::fs::read(&tmp).with_context(|| format!("reading {}", tmp.display()))?;
        match crate::runtime::contract::precheck(&bytes) {
            Ok(_) => Ok(built),
            Err(crate::runtime::contract::Precheck::Unreadable(why)) => {
                bail!("the build made something that is not a component ({why}); nothing was put in place")
            }
            Err(crate::runtime::contract::Precheck::Mismatch(why)) => {
                bail!("the build made a component the host would reject: {why}; nothing was put in place")
            }
        }
    });
    if built.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let built = built?;
    rename(&tmp, &plugin.component)?;
    Ok(built)
}

/// Build `plugin` into the file `out` (which nothing watches).
pub fn build_into(project: &Project, plugin: &PluginSource, out: &Path) -> anyhow::Result<Built> {
    // Installs first, so the timing is the build's alone.
    let tool = match plugin.lang {
        Lang::Rust => toolchain::ensure_wasm_target().map(|()| Tool::Cargo)?,
        Lang::Python => Tool::ComponentizePy(toolchain::componentize_py(&project.tools_dir)?),
        Lang::Js => Tool::ComponentizeJs(toolchain::componentize_js(&project.tools_dir)?),
    };
    let started = Instant::now();
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    match tool {
        Tool::Cargo => {
            let artifact = cargo_build(project, &plugin.dir)?;
            std::fs::copy(&artifact, out)
                .with_context(|| format!("copying {} to {}", artifact.display(), out.display()))?;
        }
        Tool::ComponentizePy(exe) => {
            let entry_dir = python_entry(project, plugin)?;
            toolchain::run(
                Command::new(exe)
                    .arg("--quiet")
                    .arg("--wit-path")
                    .arg(plugin.wit_dir(project)?)
                    .args(["--world", "http-plugin", "componentize", "--python-path"])
                    .arg(&plugin.dir)
                    .arg("--python-path")
                    .arg(&entry_dir)
                    .args([PYTHON_ENTRY, "--output"])
                    .arg(out),
                "componentize-py",
            )?
        }
        Tool::ComponentizeJs(exe) => {
            check_js_syntax(project, &plugin.dir.join("app.js"))?;
            toolchain::run(
                Command::new(exe)
                    .arg("--wit")
                    .arg(plugin.wit_dir(project)?)
                    .args(["--world-name", "plugin", "--out"])
                    .arg(out)
                    .arg(plugin.dir.join("app.js"))
                    .stdout(Stdio::null()),
                "componentize-js",
            )?
        }
    }
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok(Built { bytes, took: started.elapsed() })
}

fn rename(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::rename(from, to).with_context(|| format!("moving {} to {}", from.display(), to.display()))
}

/// The module componentize-py enters through (generated, see [`python_entry`]).
const PYTHON_ENTRY: &str = "fastmcp_entry";

/// Write the generated entry module for `plugin`; the directory holding it.
///
/// componentize-py bundles the modules imported while it pre-initialises
/// the app, and the component has no files at run time, so a module first
/// imported during a call is not found. The standard library looks some up
/// by name only when needed — the `idna` and `punycode` codecs, which every
/// host name passes through (`str.encode("idna")`, `socket`, `urllib`,
/// `http.client`) — and without them a call fails with `LookupError:
/// unknown encoding: idna`. The entry imports them, then re-exports the
/// app's `Tools`.
fn python_entry(project: &Project, plugin: &PluginSource) -> anyhow::Result<PathBuf> {
    let dir = project.root.join(".fastmcp/build/python").join(&plugin.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let entry = dir.join(format!("{PYTHON_ENTRY}.py"));
    std::fs::write(&entry, PYTHON_ENTRY_SOURCE).with_context(|| format!("writing {}", entry.display()))?;
    Ok(dir)
}

const PYTHON_ENTRY_SOURCE: &str = "\
# Generated by `fastmcp plugin build`: the codecs the standard library looks
# up by name at run time, bundled now (the component has no files), then the app.
import encodings.idna  # noqa: F401
import encodings.punycode  # noqa: F401

from app import Tools  # noqa: F401
";

/// The syntax check run before componentize-js (whose own parser reports
/// only a count of errors): oxc's parser, the one componentize-js uses,
/// from the same install, printing `file:line:column: message` and a code
/// frame for each error.
const JS_SYNTAX_CHECK: &str = include_str!("../../toolchains/js/check-syntax.mjs");

/// Fail naming each syntax error of `file`, with its line and column.
fn check_js_syntax(project: &Project, file: &Path) -> anyhow::Result<()> {
    let script = project.tools_dir.join("js").join("check-syntax.mjs");
    if std::fs::read_to_string(&script).ok().as_deref() != Some(JS_SYNTAX_CHECK) {
        std::fs::write(&script, JS_SYNTAX_CHECK).with_context(|| format!("writing {}", script.display()))?;
    }
    let status = Command::new("node")
        .arg(&script)
        .arg(file)
        .status()
        .context("cannot start node for the syntax check")?;
    if !status.success() {
        bail!("{} has syntax errors (above)", file.display());
    }
    Ok(())
}

/// `cargo build` the crate in `dir` for `wasm32-wasip2`; the `.wasm` it made.
fn cargo_build(project: &Project, dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        command.env("CARGO_TARGET_DIR", project.root.join(".fastmcp/target"));
    }
    let output = command
        .args(["build", "--release", "--target", "wasm32-wasip2", "--message-format=json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&manifest)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot start cargo")?;
    if !output.status.success() {
        bail!("cargo build failed ({})", output.status);
    }
    let manifest = std::fs::canonicalize(&manifest).unwrap_or(manifest);
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let same_crate = message["manifest_path"]
            .as_str()
            .is_some_and(|p| std::fs::canonicalize(p).is_ok_and(|p| p == manifest));
        let wasm = message["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .find(|f| f.ends_with(".wasm"));
        if let (true, Some(wasm)) = (same_crate, wasm) {
            return Ok(PathBuf::from(wasm));
        }
    }
    bail!("cargo built no .wasm for {} (is it a `cdylib`?)", manifest.display())
}
