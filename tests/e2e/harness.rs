//! Test harness: builds the plugins once per test run, makes temporary roots,
//! and starts the real server on `127.0.0.1:0`.

use fastmcp_dev_upstream::Secret;
use fastmcp_dev_upstream::{DevUpstream, DevUpstreamConfig};
use fastmcp_host::auth::devkeys::{DevKeyFiles, dev_claims};
use fastmcp_host::{AppState, HostConfig};
use reqwest::{Client, Response};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The plugins of `plugins/plugins.txt` (the list `./dev` builds from) in
/// `language`, or in every language but it when `except` is true.
fn listed_plugins(language: &str, except: bool) -> Vec<String> {
    let list = std::fs::read_to_string(workspace().join("plugins/plugins.txt")).expect("plugins/plugins.txt");
    list.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (name, lang) = (fields.next()?, fields.next()?);
            ((lang == language) != except).then(|| name.to_owned())
        })
        .collect()
}

/// The Rust plugins, examples and fixtures: built with cargo, copied into
/// every test root.
pub fn rust_plugins() -> &'static [String] {
    static LIST: OnceLock<Vec<String>> = OnceLock::new();
    LIST.get_or_init(|| listed_plugins("rust", false))
}

/// The example plugins in Python and JavaScript: built by `./dev` with
/// `fastmcp plugin build`, added to a root only by tests that ask.
pub fn language_examples() -> &'static [String] {
    static LIST: OnceLock<Vec<String>> = OnceLock::new();
    LIST.get_or_init(|| listed_plugins("rust", true))
}

/// The address the repository's `ads` manifest names (the development upstream).
pub const DEV_UPSTREAM_ADDR: &str = "127.0.0.1:8001";

/// Variables of `./dev check`'s lint wrapper (clippy-driver around rustc for
/// the workspace's crates): builds the tests start themselves must not
/// inherit them, or they would lint — and rebuild — what `./dev` built
/// without them.
pub const LINT_WRAPPER_ENV: [&str; 2] = ["RUSTC_WORKSPACE_WRAPPER", "CLIPPY_ARGS"];

/// The workspace root.
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent")
}

/// Build every plugin (once per test process) and return the directory of
/// the `.wasm` files. The build uses its own target directory, shared with
/// `./dev`, so it never waits on the lock of the `cargo test` that runs us.
pub fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target_dir = workspace().join("target/plugins");
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo
            .current_dir(workspace())
            .args(["build", "--quiet", "--target", "wasm32-wasip2", "--profile", "plugin"])
            .arg("--target-dir")
            .arg(&target_dir);
        for name in LINT_WRAPPER_ENV {
            cargo.env_remove(name);
        }
        for p in rust_plugins() {
            cargo.args(["-p", p]);
        }
        let status = cargo.status().expect("running cargo to build the plugins");
        assert!(
            status.success(),
            "building the plugins failed; is the target installed? (rustup target add wasm32-wasip2)"
        );
        target_dir.join("wasm32-wasip2/plugin")
    })
}

/// The bytes of a built plugin.
pub fn plugin_bytes(name: &str) -> Vec<u8> {
    std::fs::read(plugin_dir().join(format!("{name}.wasm"))).expect("built plugin")
}

/// A temporary root with the repository's manifests, the misbehave fixture
/// manifest, and every built plugin in `plugins/<name>/<name>.wasm`.
pub struct TestRoot {
    dir: TempDir,
}

impl TestRoot {
    /// A fully populated root whose `ads` plugin talks to the upstream shared
    /// by this test process.
    pub fn new() -> Self {
        Self::with_upstream(TestUpstream::shared())
    }

    /// A fully populated root whose `ads-api` provider and `ads` plugin point
    /// at `upstream`.
    pub fn with_upstream(upstream: &TestUpstream) -> Self {
        Self::with_provider_at(upstream.addr, upstream.secret.expose())
    }

    /// A fully populated root whose `ads-api` provider is the OAuth endpoint
    /// at `addr` (which may be down) with `secret`.
    pub fn with_provider_at(addr: SocketAddr, secret: &str) -> Self {
        let root = Self::empty();
        for entry in std::fs::read_dir(workspace().join("manifests")).unwrap() {
            let path = entry.unwrap().path();
            if language_examples().iter().any(|e| path.ends_with(format!("{e}.yaml"))) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap().replace(DEV_UPSTREAM_ADDR, &addr.to_string());
            root.write(&format!("manifests/{}", path.file_name().unwrap().to_str().unwrap()), text);
        }
        root.write(".runtime/ads-client-secret", secret);
        root.write(
            ".runtime/providers.yml",
            format!(
                "providers:\n  ads-api:\n    kind: oauth2_client_credentials\n    token_url: http://{addr}/oauth/token\n    client_id: {id}\n    client_secret: {{ file: ads-client-secret }}\n    plugins: [ads, netprobe, offline, report, digest]\n    origins: [\"http://{addr}\"]\n    allow_http: true\n  ads-user:\n    kind: token_exchange\n    token_url: http://{addr}/oauth/token\n    client_id: {id}\n    client_secret: {{ file: ads-client-secret }}\n    scopes: [campaigns.read]\n    delegation: true\n    plugins: [ads]\n    origins: [\"http://{addr}\"]\n    allow_http: true\n",
                id = fastmcp_dev_upstream::DEV_CLIENT_ID
            ),
        );
        std::fs::copy(
            workspace().join("tests/fixtures/misbehave.yaml"),
            root.path().join("manifests/misbehave.yaml"),
        )
        .unwrap();
        // The sample policy, plus a `tester` role that grants every tool.
        let policy = std::fs::read_to_string(workspace().join("policies/policies.yml")).unwrap();
        let policy = policy.replacen("roles:\n", "roles:\n  tester: { tools: [\"*\"] }\n", 1);
        assert!(policy.contains("tester"), "the sample policy has a roles section");
        root.write("policies/policies.yml", policy);
        for p in rust_plugins() {
            root.write(&format!("plugins/{p}/{p}.wasm"), plugin_bytes(p));
        }
        root
    }

    /// Add the Python and JavaScript example plugins (built by `./dev test`
    /// into `plugins/NAME/NAME.wasm`), pointed at `upstream`.
    pub fn add_language_examples(&self, upstream: SocketAddr) {
        for name in language_examples() {
            let manifest = workspace().join(format!("manifests/{name}.yaml"));
            let text =
                std::fs::read_to_string(manifest).unwrap().replace(DEV_UPSTREAM_ADDR, &upstream.to_string());
            self.write(&format!("manifests/{name}.yaml"), text);
            let component = workspace().join(format!("plugins/{name}/{name}.wasm"));
            let bytes = std::fs::read(&component).unwrap_or_else(|e| {
                panic!("{}: {e}; `./dev test` builds it (fastmcp plugin build {name})", component.display())
            });
            self.write(&format!("plugins/{name}/{name}.wasm"), bytes);
        }
    }

    /// Let the operator's `ads-api` provider also be injected into
    /// `http://addr` (as a providers file would list a second origin).
    pub fn bind_origin(&self, addr: SocketAddr) {
        let path = self.path().join(".runtime/providers.yml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("origins: ["), "the providers file lists origins");
        std::fs::write(path, text.replacen("origins: [", &format!("origins: [\"http://{addr}\", "), 1))
            .unwrap();
    }

    /// Add a fixture manifest (`tests/fixtures/<name>.yaml`), with `UPSTREAM`
    /// replaced by `upstream`.
    pub fn add_fixture(&self, name: &str, upstream: SocketAddr) {
        let text = std::fs::read_to_string(workspace().join(format!("tests/fixtures/{name}.yaml"))).unwrap();
        self.write(&format!("manifests/{name}.yaml"), text.replace("UPSTREAM", &upstream.to_string()));
    }

    /// A root with an empty `manifests/`.
    pub fn empty() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("manifests")).unwrap();
        Self { dir }
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write a file under the root, creating directories.
    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    /// A configuration for this root. The test upstreams listen on
    /// loopback, so the operator setting that lets plugins reach it is on.
    pub fn config(&self) -> HostConfig {
        let mut config = HostConfig::for_root(self.path());
        config.outbound.allow_internal = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        config.runtime.compile_cache_dir = Some(shared_compile_cache().to_path_buf());
        config
    }
}

/// The compile cache every test host shares (components are compiled once
/// per build of the test binaries, not once per test).
pub fn shared_compile_cache() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| workspace().join("target/e2e-compile-cache"))
}

/// Scopes of the default test token.
pub const ALL_SCOPES: &[&str] =
    &["tools.invoke:write", "tools.query:catalog", "ads.write", "host.health:read"];

/// A running server.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A token for `tester` (role `tester`, tenant `public`, every scope).
    pub token: String,
    /// The server's state (for reloads and white-box checks).
    pub state: AppState,
    /// `http://127.0.0.1:PORT` of the metrics listener.
    pub metrics_base: String,
    runtime_dir: PathBuf,
    client: Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Start on `127.0.0.1:0` with the default configuration of `root`.
    pub async fn start(root: &TestRoot) -> Self {
        Self::start_with(root.config()).await
    }

    /// Start with a given configuration.
    pub async fn start_with(config: HostConfig) -> Self {
        let runtime_dir = config.runtime_dir();
        let state = AppState::start(config).await.expect("server state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_base = format!("http://{}", metrics.local_addr().unwrap());
        tokio::spawn(fastmcp_host::serve_metrics(metrics, state.clone()));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(fastmcp_host::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        // With a configured JWKS there is no development key to mint with.
        let token = if runtime_dir.join("dev-private.pem").exists() {
            mint(&runtime_dir, "tester", "public", &["tester"], ALL_SCOPES)
        } else {
            String::new()
        };
        let server = Self {
            base,
            token,
            state,
            metrics_base,
            runtime_dir,
            client: Client::new(),
            shutdown: Some(tx),
            task: Some(task),
        };
        // Serving (and watching files) once the first request is answered.
        assert_eq!(server.client.get(server.url("/health")).send().await.unwrap().status(), 200);
        server
    }

    /// A development token for another principal.
    pub fn token_for(&self, sub: &str, tenant: &str, roles: &[&str], scopes: &[&str]) -> String {
        mint(&self.runtime_dir, sub, tenant, roles, scopes)
    }

    /// A URL on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The text of `GET /metrics` on the metrics listener.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(format!("{}/metrics", self.metrics_base)).send().await.unwrap();
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        response.text().await.unwrap()
    }

    /// The HTTP client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `GET path` with the default token.
    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).bearer_auth(&self.token).send().await.unwrap()
    }

    /// `POST /tools/{tool}/invoke` with a JSON body and the default token.
    pub async fn invoke(&self, tool: &str, args: Value) -> Response {
        self.invoke_as(&self.token, tool, args).await
    }

    /// `POST /tools/{tool}/invoke` with a JSON body and `token`.
    pub async fn invoke_as(&self, token: &str, tool: &str, args: Value) -> Response {
        let url = self.url(&format!("/tools/{tool}/invoke"));
        self.client.post(url).bearer_auth(token).json(&args).send().await.unwrap()
    }

    /// `POST /tools/ads:createCampaign/confirm`-style confirm with the default
    /// token: `args` plus `action_token`, for the tool named in the token's 202.
    pub async fn confirm(&self, action_token: &Value, args: Value) -> Response {
        let tool = self.pending_tool(action_token);
        self.confirm_as(&self.token, &tool, action_token, args).await
    }

    /// Confirm `tool` as `token`.
    pub async fn confirm_as(
        &self,
        token: &str,
        tool: &str,
        action_token: &Value,
        mut args: Value,
    ) -> Response {
        args["action_token"] = action_token.clone();
        let url = self.url(&format!("/tools/{tool}/confirm"));
        self.client.post(url).bearer_auth(token).json(&args).send().await.unwrap()
    }

    /// The tool an action token was issued for (read from its claims).
    fn pending_tool(&self, action_token: &Value) -> String {
        use base64::Engine as _;
        let token = action_token.as_str().unwrap_or_default();
        let claims = token.split('.').nth(1).unwrap_or_default();
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap_or_default();
        let claims: Value = serde_json::from_slice(&claims).unwrap_or_default();
        claims["tool"].as_str().unwrap_or("ads:createCampaign").to_owned()
    }

    /// A POST to `/tools/{tool}/invoke` with the default token, to customise.
    pub fn post_invoke(&self, tool: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(&format!("/tools/{tool}/invoke"))).bearer_auth(&self.token)
    }

    /// Graceful stop; waits for the server task.
    pub async fn stop(mut self) {
        self.shutdown.take().map(|tx| tx.send(()));
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// Every record of the audit trail under `root`, in order.
pub fn audit_records(root: &Path) -> Vec<Value> {
    let mut all = Vec::new();
    for file in fastmcp_host::audit::recover::trail_files(&root.join(".audit")).unwrap() {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            all.push(serde_json::from_str(line).unwrap());
        }
    }
    all
}

/// Status and JSON body of a response.
pub async fn json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, body)
}

/// Assert a problem+json response with this status and code; return the body.
pub async fn problem(response: Response, status: u16, code: &str) -> Value {
    let content_type = response.headers().get("content-type").cloned();
    let (got, body) = json(response).await;
    assert_eq!((got, body["code"].as_str().unwrap_or("")), (status, code), "{body}");
    assert_eq!(content_type.unwrap(), "application/problem+json");
    assert_eq!(body["status"], status);
    assert!(body["correlation_id"].as_str().is_some_and(|s| !s.is_empty()), "{body}");
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
    body
}

/// Mint a development token with the keys under `runtime_dir`.
pub fn mint(runtime_dir: &Path, sub: &str, tenant: &str, roles: &[&str], scopes: &[&str]) -> String {
    let claims = dev_claims(
        "https://idp.local",
        "fastmcp",
        sub,
        tenant,
        roles.iter().map(|r| r.to_string()).collect(),
        scopes.iter().map(|s| s.to_string()).collect(),
        Duration::from_secs(3600),
    );
    DevKeyFiles::in_dir(runtime_dir).mint(&claims).unwrap()
}

/// Flags that lift one caller's fair share to the whole host, for tests
/// that drive a host with one token from hundreds of connections at once
/// (they test something else: rate limits' exactness).
pub const ONE_CALLER_MAY_USE_ALL: &[&str] = &[
    "--server-max-connections-per-principal",
    "1024",
    "--server-max-unauthenticated-connections-per-peer",
    "1024",
    "--runtime-max-calls-per-principal",
    "128",
];

/// The same as [`ONE_CALLER_MAY_USE_ALL`], for an in-process host.
pub fn one_caller_may_use_all(config: &mut HostConfig) {
    config.server.max_connections_per_principal = config.server.max_connections;
    config.server.max_unauthenticated_connections_per_peer = config.server.max_connections;
    config.runtime.max_calls_per_principal = config.runtime.max_concurrent_calls;
}

/// The real `fastmcp` binary serving `root` on an ephemeral port.
pub struct ServerProcess {
    /// The child process.
    pub child: tokio::process::Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// `127.0.0.1:PORT` of the metrics listener.
    pub metrics_addr: String,
    /// Every log line, once the process has exited.
    pub logs: tokio::task::JoinHandle<Vec<String>>,
}

impl ServerProcess {
    /// Start `fastmcp serve` and wait until it listens.
    pub async fn start(root: &TestRoot, rust_log: &str, extra_args: &[&str]) -> Self {
        Self::start_with_env(root, rust_log, extra_args, &[]).await
    }

    /// [`ServerProcess::start`] with more environment variables.
    pub async fn start_with_env(
        root: &TestRoot,
        rust_log: &str,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fastmcp"))
            .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .args(["--outbound-allow-internal", "127.0.0.0/8,::1/128", "--compile-cache-dir"])
            .arg(shared_compile_cache())
            .arg("--root")
            .arg(root.path())
            .args(extra_args)
            .env("RUST_LOG", rust_log)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut startup = Vec::new();
        let mut metrics_addr = String::new();
        // A bound on a hang, not a timing check: a root whose interpreter-sized
        // plugins (Python, JavaScript) are compiled cold, on two cores shared
        // with the rest of the suite, has taken over a minute in CI.
        let addr = tokio::time::timeout(Duration::from_secs(240), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let log: Value = serde_json::from_str(&line).expect("log lines are JSON");
                startup.push(line);
                let addr = || log["fields"]["addr"].as_str().unwrap().to_owned();
                if log["fields"]["message"] == "metrics listening" {
                    metrics_addr = addr();
                }
                if log["fields"]["message"] == "listening" {
                    return addr();
                }
            }
            panic!("the server exited before listening");
        })
        .await
        .expect("the server listens within four minutes");
        // Keep draining logs so the child never blocks on a full pipe.
        let logs = tokio::spawn(async move {
            let mut all = startup;
            while let Ok(Some(line)) = lines.next_line().await {
                all.push(line);
            }
            all
        });
        Self { child, addr, metrics_addr, logs }
    }

    /// `http://ADDR/path` on the API listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The process's resident set now and at its peak, in KiB (`VmRSS`,
    /// `VmHWM`).
    pub fn rss_kib(&self) -> (u64, u64) {
        let pid = self.child.id().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |name: &str| {
            let line = status.lines().find(|l| l.starts_with(name)).unwrap();
            line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Send a signal (`-TERM`, `-HUP`, `-KILL`) to the process.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("running").to_string();
        // The shell's builtin `kill`: present even where procps is not.
        let status =
            std::process::Command::new("sh").args(["-c", &format!("kill {name} {pid}")]).status().unwrap();
        assert!(status.success(), "kill {name} {pid}");
    }
}

/// A development upstream (OAuth token endpoint + Ads API): a real HTTP
/// server on a loopback port.
pub struct TestUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state (counters, issued tokens).
    pub upstream: Arc<DevUpstream>,
    /// The client secret it accepts.
    pub secret: Secret,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestUpstream {
    /// Start one on `127.0.0.1:0` in the current tokio runtime.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (upstream, secret) = Self::new_upstream();
        let (tx, rx) = oneshot::channel::<()>();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(upstream.clone().serve(listener, async {
            let _ = rx.await;
        }));
        Self { addr, upstream, secret, shutdown: Some(tx) }
    }

    /// Start one serving HTTPS with `tls` on `127.0.0.1:0`.
    pub async fn start_tls(tls: Arc<rustls::ServerConfig>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (upstream, secret) = Self::new_upstream();
        let (tx, rx) = oneshot::channel::<()>();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(upstream.clone().serve_tls(listener, tls, async {
            let _ = rx.await;
        }));
        Self { addr, upstream, secret, shutdown: Some(tx) }
    }

    /// The upstream shared by every test of this process (its own thread
    /// and runtime, so it outlives each test's runtime).
    pub fn shared() -> &'static TestUpstream {
        static SHARED: OnceLock<TestUpstream> = OnceLock::new();
        SHARED.get_or_init(|| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let addr = listener.local_addr().unwrap();
            let (upstream, secret) = Self::new_upstream();
            let serving = upstream.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    serving.serve(listener, std::future::pending()).await.unwrap();
                });
            });
            TestUpstream { addr, upstream, secret, shutdown: None }
        })
    }

    fn new_upstream() -> (Arc<DevUpstream>, Secret) {
        let secret = Secret::new(format!("test-client-secret-{}", uuid::Uuid::now_v7().simple()));
        let config = DevUpstreamConfig::new(secret.clone());
        (DevUpstream::new(config), secret)
    }

    /// Its request counters (`/_dev/stats`), without the connection count,
    /// which asking itself changes (tests read that one from `upstream.stats`).
    pub async fn stats(&self) -> Value {
        let url = format!("http://{}/_dev/stats", self.addr);
        let mut stats: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        stats.as_object_mut().expect("an object").remove("connections");
        stats
    }

    /// Make the next `count` API calls answer `status`.
    pub async fn fail_next(&self, status: u16, count: u32) {
        let url = format!("http://{}/_dev/fail", self.addr);
        let response =
            Client::new().post(url).json(&serde_json::json!({"status": status, "count": count})).send();
        assert_eq!(response.await.unwrap().status(), 204);
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.shutdown.take().map(|tx| tx.send(()));
    }
}

/// A real `redis-server` on a free loopback port, stopped when dropped.
pub struct RedisServer {
    child: Option<std::process::Child>,
    /// Its port.
    pub port: u16,
    dir: TempDir,
}

impl RedisServer {
    /// Start one, or `None` (with a visible message) when `redis-server` is
    /// not installed here. Where Redis is required (`FASTMCP_REQUIRE_REDIS`,
    /// set by `.ci/run`) a missing binary fails the test instead.
    pub fn start() -> Option<Self> {
        if Command::new("redis-server").arg("--version").output().is_err() {
            assert!(
                std::env::var_os("FASTMCP_REQUIRE_REDIS").is_none(),
                "redis-server is required here but not installed"
            );
            eprintln!("SKIPPED: redis-server is not installed (apt-get install -y redis-server)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = Self { child: None, port, dir: tempfile::tempdir().unwrap() };
        server.restart();
        Some(server)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stop the server (as a crash would: SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start (again) on the same port and wait until it answers.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("starting redis-server");
        self.child = Some(child);
        for _ in 0..200 {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let mut reply = [0u8; 7];
                if stream.write_all(b"PING\r\n").is_ok()
                    && stream.read_exact(&mut reply).is_ok()
                    && &reply == b"+PONG\r\n"
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not start on port {}", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Poll `check` every 20 ms until it returns `Some`, for at most `within`;
/// panics naming `what` if it never does.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Total bytes of the audit trail files under `root`.
pub fn trail_bytes(root: &Path) -> u64 {
    fastmcp_host::audit::recover::trail_files(&root.join(".audit"))
        .unwrap()
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum()
}

/// The campaign the walkthrough creates (`ads:createCampaign` arguments),
/// named `name`.
pub fn campaign_named(name: &str) -> Value {
    serde_json::json!({"name": name, "budget": 1200, "startDate": "2025-10-10"})
}

/// The walkthrough's campaign, `LaunchX`.
pub fn campaign() -> Value {
    campaign_named("LaunchX")
}

/// Write `lines` to `file`, each ended by a newline.
pub fn write_lines(file: &Path, lines: &[String]) {
    std::fs::write(file, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

/// `header.payload.signature`: a JWT signed with `key` using `alg`, whatever
/// its header and claims say (for tests of what verification refuses).
pub fn signed_jwt(
    header: &Value,
    claims: &Value,
    key: &jsonwebtoken::EncodingKey,
    alg: jsonwebtoken::Algorithm,
) -> String {
    let message = format!("{}.{}", base64url_json(header), base64url_json(claims));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

/// A JSON value as one unpadded base64url JWT segment.
pub fn base64url_json(value: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}
