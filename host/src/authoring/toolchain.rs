//! The languages' component tools, installed on first use into the
//! project's tools directory and never globally:
//!
//! - Python: a venv with `componentize-py` (PyPI) at the pinned version;
//! - JavaScript: `@bytecodealliance/componentize-js` (npm) from a lockfile
//!   embedded in this binary (`npm ci`);
//! - Rust: the `wasm32-wasip2` target (`rustup target add`; rustup keeps
//!   targets per toolchain, which is the one thing not project-local).
//!
//! An install is redone when the pinned versions change (a stamp file
//! records what was installed) and is serialised by a lock file, so two
//! builds never install at once.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The pinned Python toolchain (pip requirements).
const PYTHON_REQUIREMENTS: &str = include_str!("../../toolchains/python/requirements.txt");
/// The JavaScript toolchain's package.json and lockfile.
const JS_PACKAGE: &str = include_str!("../../toolchains/js/package.json");
const JS_LOCK: &str = include_str!("../../toolchains/js/package-lock.json");

/// The `componentize-py` executable, installed if needed.
pub fn componentize_py(tools_dir: &Path) -> anyhow::Result<PathBuf> {
    let venv = tools_dir.join("python");
    let exe = venv.join("bin/componentize-py");
    install_once(&venv, PYTHON_REQUIREMENTS, &exe, || {
        eprintln!("fastmcp: installing componentize-py into {} (first use)", venv.display());
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run(Command::new(&python).args(["-m", "venv"]).arg(&venv), "creating the Python venv").context(
            "Python 3 with its venv module is needed to build Python plugins (Debian: apt-get install python3-venv)",
        )?;
        std::fs::write(venv.join("requirements.txt"), PYTHON_REQUIREMENTS)?;
        run(
            Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(venv.join("requirements.txt")),
            "installing componentize-py from PyPI",
        )
    })?;
    Ok(exe)
}

/// The `componentize-js` executable, installed if needed.
pub fn componentize_js(tools_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = tools_dir.join("js");
    let exe = dir.join("node_modules/.bin/componentize-js");
    install_once(&dir, JS_LOCK, &exe, || {
        eprintln!("fastmcp: installing componentize-js into {} (first use)", dir.display());
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("package.json"), JS_PACKAGE)?;
        std::fs::write(dir.join("package-lock.json"), JS_LOCK)?;
        run(
            Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&dir),
            "installing componentize-js from npm",
        )
        .context("Node.js 18+ with npm is needed to build JavaScript plugins")
    })?;
    Ok(exe)
}

/// Add the `wasm32-wasip2` target to the active Rust toolchain if missing.
pub fn ensure_wasm_target() -> anyhow::Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == "wasm32-wasip2") => {
            Ok(())
        }
        Ok(_) => {
            eprintln!("fastmcp: adding the wasm32-wasip2 target (rustup target add wasm32-wasip2)");
            run(
                Command::new("rustup").args(["target", "add", "wasm32-wasip2"]),
                "adding the wasm32-wasip2 target",
            )
        }
        // Without rustup, cargo says what is missing if the target is.
        Err(_) => Ok(()),
    }
}

/// Run `install` unless `dir` holds a stamp of `pinned` and `exe` exists;
/// one install at a time per tools directory.
fn install_once(
    dir: &Path,
    pinned: &str,
    exe: &Path,
    install: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let stamp = dir.join(".fastmcp-installed");
    let want = stamp_of(pinned);
    let current = || std::fs::read_to_string(&stamp).ok().is_some_and(|s| s == want) && exe.exists();
    if current() {
        return Ok(());
    }
    let parent = dir.parent().context("the tools directory has a parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let lock_path = parent.join(".install.lock");
    let lock =
        std::fs::File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
    if current() {
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing the stale {}", dir.display()))?;
    }
    install()?;
    if !exe.exists() {
        bail!("the install finished but {} is missing", exe.display());
    }
    std::fs::write(&stamp, want)?;
    Ok(())
}

fn stamp_of(pinned: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(pinned.as_bytes()))
}

/// Run `command` with the terminal's output; fail naming `what`.
pub fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status =
        command.status().with_context(|| format!("{what}: cannot start {:?}", command.get_program()))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}
