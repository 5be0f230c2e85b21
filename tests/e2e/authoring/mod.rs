//! Tool authors: the example plugins in Python and JavaScript, the
//! `fastmcp plugin new → build → serve` path in every language, the
//! load-time checks that name a mismatch, and the `plugin dev` loop — all
//! with the real `fastmcp` binary, the real language tools (componentize-py
//! from PyPI, componentize-js from npm, cargo) and a real host on loopback.

mod checks;
mod dev_loop;
mod examples;
mod output;
mod workflow;

use crate::harness::{shared_compile_cache, workspace};
use std::path::Path;
use std::process::{Command, Output};

/// Run `fastmcp ARGS` in `root`, with the tools directory `./dev` uses (so
/// the toolchains are installed once per checkout), a shared target
/// directory for Rust plugins made by `new` (so their dependencies compile
/// once per checkout) and the test hosts' compile cache (as a host and
/// `plugin check` on one root share `.runtime/cache`).
pub fn fastmcp(root: &Path, args: &[&str]) -> Output {
    let output = command(root, args).output().expect("running fastmcp");
    eprintln!(
        "$ fastmcp {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `fastmcp ARGS` in `root`, not started.
pub fn command(root: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fastmcp"));
    command
        .args(args)
        .current_dir(root)
        .env("FASTMCP_ROOT", root)
        .env("FASTMCP_TOOLS_DIR", workspace().join(".fastmcp/tools"))
        .env("CARGO_TARGET_DIR", workspace().join("target/plugin-templates"))
        .env("FASTMCP_COMPILE_CACHE_DIR", shared_compile_cache())
        .env("RUST_BACKTRACE", "0");
    for name in crate::harness::LINT_WRAPPER_ENV {
        command.env_remove(name);
    }
    command
}

/// stdout and stderr of `output`, as one text.
pub fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// The line `fastmcp plugin new` printed for the policy, added under `roles:`.
pub fn grant(root: &Path, printed: &str) {
    let line = printed
        .lines()
        .find(|l| l.trim_start().contains("{ tools: ["))
        .unwrap_or_else(|| panic!("no grant line in {printed}"))
        .trim();
    let policy = root.join("policies/policies.yml");
    let text = std::fs::read_to_string(&policy).unwrap_or_else(|_| "version: 1\nroles:\n".into());
    std::fs::create_dir_all(policy.parent().unwrap()).unwrap();
    std::fs::write(&policy, text.replacen("roles:\n", &format!("roles:\n  {line}\n"), 1)).unwrap();
}

/// The lines `stream` (a child's output) prints, as they come.
pub fn lines_of_child(stream: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
            let _ = send.send(line);
        }
    });
    lines
}

/// Wait (at most three minutes) for a line of `plugin dev`'s output
/// containing `what`.
pub fn wait_for(lines: &std::sync::mpsc::Receiver<String>, what: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = lines.recv_timeout(left).unwrap_or_else(|_| panic!("no `{what}` from plugin dev"));
        eprintln!("dev: {line}");
        if line.contains(what) {
            return line;
        }
    }
}
