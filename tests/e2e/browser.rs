//! Real-browser runs: Debian's Chromium, headless, driven by Playwright for
//! Python (scripts under `tests/browser/`, a venv under
//! `target/browser-venv`; Playwright never downloads a browser here).

use crate::harness::workspace;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The system Chromium: `FASTMCP_CHROMIUM`, else Debian's binary.
pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("FASTMCP_CHROMIUM") {
        return path.into();
    }
    let debian = Path::new("/usr/lib/chromium/chromium");
    assert!(
        debian.exists(),
        "the browser tests need Chromium: apt-get install -y chromium (or set FASTMCP_CHROMIUM)"
    );
    debian.to_path_buf()
}

/// The venv with Playwright (created once per test process; again only
/// when `tests/browser/requirements.txt` changes).
fn playwright_venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        crate::mcp::clients::venv_with("target/browser-venv", "tests/browser/requirements.txt")
    })
}

/// Run `tests/browser/<script>` with one JSON argument; it asserts as it
/// goes and prints its observations as the last line of JSON.
pub async fn run(script: &str, arg: &Value) -> Value {
    let python = playwright_venv().join("bin/python");
    let script = workspace().join("tests/browser").join(script);
    let mut command = tokio::process::Command::new(python);
    command.arg(script).arg(arg.to_string()).kill_on_drop(true);
    let output = tokio::time::timeout(std::time::Duration::from_secs(180), command.output())
        .await
        .expect("the browser run finishes within 3 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}
