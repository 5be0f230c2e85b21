//! The official MCP SDKs as test clients: the Python SDK in a venv under
//! `target/mcp-venv` and the TypeScript SDK (and the Inspector) in
//! `tests/mcp-clients/node_modules`, installed on first use from the pinned
//! `requirements.txt` / `package-lock.json` (again only when those change).
//! Each scenario is one process of `tests/mcp-clients/{python_client.py,
//! ts_client.mjs}` printing its observations as JSON on its last line.

use crate::harness::workspace;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// An official SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    /// `mcp` on PyPI: 2026-07-28 (stateless, MRTR), falling back to 2025-11-25.
    Python,
    /// The Python SDK pinned to the initialize handshake (2025-11-25).
    PythonLegacy,
    /// `@modelcontextprotocol/sdk` on npm: 2025-11-25.
    TypeScript,
}

/// Every SDK mode the tests cover.
pub const ALL: [Sdk; 3] = [Sdk::Python, Sdk::PythonLegacy, Sdk::TypeScript];

impl Sdk {
    /// The protocol revision this client negotiates with FastMCP.
    pub fn revision(self) -> &'static str {
        match self {
            Sdk::Python => "2026-07-28",
            Sdk::PythonLegacy | Sdk::TypeScript => "2025-11-25",
        }
    }

    fn command(self) -> Command {
        let dir = clients_dir();
        match self {
            Sdk::Python | Sdk::PythonLegacy => {
                let mut command = Command::new(python_venv().join("bin/python"));
                command.arg(dir.join("python_client.py"));
                command.env("MCP_MODE", if self == Sdk::Python { "auto" } else { "legacy" });
                command
            }
            Sdk::TypeScript => {
                node_modules();
                let mut command = Command::new("node");
                command.arg(dir.join("ts_client.mjs"));
                command
            }
        }
    }
}

/// `tests/mcp-clients`.
pub fn clients_dir() -> PathBuf {
    workspace().join("tests/mcp-clients")
}

fn digest_of(files: &[&Path]) -> String {
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(std::fs::read(file).unwrap_or_default());
    }
    hex::encode(hasher.finalize())
}

fn run_setup(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The venv with the Python SDK (created or updated once per test process).
pub fn python_venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| venv_with("target/mcp-venv", "tests/mcp-clients/requirements.txt"))
}

/// The venv `dir` (under the workspace) with `requirements` installed:
/// created or updated only when the requirements file changed.
pub fn venv_with(dir: &str, requirements: &str) -> PathBuf {
    let venv = workspace().join(dir);
    let requirements = workspace().join(requirements);
    let stamp = venv.join(".fastmcp-installed");
    let want = digest_of(&[&requirements]);
    let installed = venv.join("bin/python").exists();
    if !installed || std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        run_setup(Command::new("python3").args(["-m", "venv"]).arg(&venv), "python3 -m venv");
        run_setup(
            Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(&requirements),
            &format!("pip install -r {}", requirements.display()),
        );
        std::fs::write(&stamp, want).unwrap();
    }
    venv
}

/// `tests/mcp-clients/node_modules` from the lockfile (`npm ci`, once per
/// test process, again only when the lockfile changed).
pub fn node_modules() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = clients_dir();
        let modules = dir.join("node_modules");
        let stamp = modules.join(".fastmcp-installed");
        let want = digest_of(&[&dir.join("package-lock.json")]);
        // `npm ci` writes `.package-lock.json`: without it the tree is gone.
        let installed = modules.join(".package-lock.json").exists();
        if !installed || std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
            run_setup(
                Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir),
                "npm ci in tests/mcp-clients",
            );
            std::fs::write(&stamp, want).unwrap();
        }
        modules
    })
}

/// Run one scenario to its end; its JSON observations.
pub async fn run(sdk: Sdk, url: &str, token: Option<&str>, scenario: &str, arg: Value) -> Value {
    let mut command = sdk.command();
    command.arg(scenario).arg(arg.to_string()).env("MCP_URL", url);
    match token {
        Some(token) => command.env("MCP_TOKEN", token),
        None => command.env_remove("MCP_TOKEN"),
    };
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .unwrap_or_else(|_| panic!("{sdk:?} {scenario} did not finish within 120 s"))
        .expect("client runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{sdk:?} {scenario} failed:\n{stdout}\n{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|_| panic!("{sdk:?} {scenario}: not JSON: {stdout}\n{stderr}"))
}

/// A scenario that prints `ready` before it waits for something the test
/// does; returns once it is ready, with a future for its JSON result.
pub async fn start_waiting(
    sdk: Sdk,
    url: &str,
    token: &str,
    scenario: &str,
) -> impl std::future::Future<Output = Value> + use<> {
    let mut command = tokio::process::Command::from(sdk.command());
    command
        .arg(scenario)
        .env("MCP_URL", url)
        .env("MCP_TOKEN", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("client starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await;
    let ready = ready.unwrap_or_else(|_| panic!("{sdk:?} {scenario}: not ready within 120 s"));
    assert_eq!(ready.unwrap().as_deref(), Some("ready"), "{sdk:?} {scenario}");
    let scenario = scenario.to_owned();
    async move {
        let last = tokio::time::timeout(Duration::from_secs(60), async {
            let mut last = None;
            while let Some(line) = lines.next_line().await.unwrap() {
                last = Some(line);
            }
            last
        })
        .await
        .expect("the client finished within 60 s of the change");
        let status = child.wait().await.unwrap();
        assert!(status.success(), "{scenario} exited with {status}");
        serde_json::from_str(&last.unwrap_or_default()).expect("JSON result")
    }
}
