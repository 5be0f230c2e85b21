//! `fastmcp plugin build`: a plugin's sources into its component, with the
//! language's standard tool, moved into place by rename.
//!
//! - Rust: `cargo build --release --target wasm32-wasip2` (the crate's own
//!   target directory unless `CARGO_TARGET_DIR` says otherwise);
//! - Python: `componentize-py` for the `http-plugin` world, `app.py` as the
//!   entry module (other modules beside it are bundled);
//! - JavaScript: `componentize-js` for the `plugin` world, `app.js` as the
//!   entry module (the JS runtime imports `wasi:http` for `fetch` itself).
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
/// by rename.
pub fn build(project: &Project, plugin: &PluginSource) -> anyhow::Result<Built> {
    let tmp = temporary_beside(&plugin.component);
    let built = build_into(project, plugin, &tmp);
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
            let artifact = cargo_build(&plugin.dir)?;
            std::fs::copy(&artifact, out)
                .with_context(|| format!("copying {} to {}", artifact.display(), out.display()))?;
        }
        Tool::ComponentizePy(exe) => toolchain::run(
            Command::new(exe)
                .arg("--quiet")
                .arg("--wit-path")
                .arg(plugin.wit_dir(project)?)
                .args(["--world", "http-plugin", "componentize", "--python-path"])
                .arg(&plugin.dir)
                .args(["app", "--output"])
                .arg(out),
            "componentize-py",
        )?,
        Tool::ComponentizeJs(exe) => toolchain::run(
            Command::new(exe)
                .arg("--wit")
                .arg(plugin.wit_dir(project)?)
                .args(["--world-name", "plugin", "--out"])
                .arg(out)
                .arg(plugin.dir.join("app.js"))
                .stdout(Stdio::null()),
            "componentize-js",
        )?,
    }
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok(Built { bytes, took: started.elapsed() })
}

fn rename(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::rename(from, to).with_context(|| format!("moving {} to {}", from.display(), to.display()))
}

/// `cargo build` the crate in `dir` for `wasm32-wasip2`; the `.wasm` it made.
fn cargo_build(dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
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
