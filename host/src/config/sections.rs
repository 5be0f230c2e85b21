//! Every setting of the host, stated once: its section, name, type, default,
//! bounds, documentation and — where they predate the config file — its flag
//! and environment variable. [`settings!`](super::settings::settings) turns this into
//! the section structs (with their `Default`s) and the table that the config
//! file, the environment, the flags, `fastmcp config print` and the
//! README's table all read. A new setting is one entry here and its line in
//! the README (a test keeps that line true).

use super::codec::{Addr, Codec, Flag, List, Millis, Num, Path, Secs, Text};
use super::settings::settings;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

settings! {
    /// The inbound HTTP server and its limits.
    server: ServerConfig {
        /// Address the API (REST and MCP) listens on.
        listen: SocketAddr = "127.0.0.1:8000" as Addr, .flag("listen").env("FASTMCP_LISTEN");
        /// Largest request body, in bytes (413 above).
        max_body_bytes: usize = "1048576" as Num, .range(1, 1 << 30).flag("max-body-bytes").env("FASTMCP_MAX_BODY_BYTES");
        /// Longest wait for a request's line and headers — and for the next request on an idle keep-alive connection.
        header_read_timeout: Duration = "10000" as Millis, .range(1, 3_600_000).flag("header-read-timeout-ms").env("FASTMCP_HEADER_READ_TIMEOUT_MS");
        /// Longest wait for a request body to arrive in full (408 `body_timeout`).
        body_read_timeout: Duration = "30000" as Millis, .range(1, 3_600_000).flag("body-read-timeout-ms").env("FASTMCP_BODY_READ_TIMEOUT_MS");
        /// Longest a response may take (503 `request_timeout`); a call already running still finishes and is audited.
        request_timeout: Duration = "120000" as Millis, .range(1, 86_400_000).flag("request-timeout-ms").env("FASTMCP_REQUEST_TIMEOUT_MS");
        /// Connections served at once; beyond, new ones wait to be accepted.
        max_connections: usize = "1024" as Num, .range(1, 1_000_000).flag("max-connections").env("FASTMCP_MAX_CONNECTIONS");
        /// Connections one principal may hold (counted by the last authenticated request on each); beyond, 429 `share_exceeded` and the connection is closed.
        max_connections_per_principal: usize = "128" as Num, .range(1, 1_000_000);
        /// Connections one client address (IPv4, or IPv6 /64) may hold before an authenticated request on them (all addresses together: half of `max_connections`); beyond, new ones are closed at once. Behind a proxy every client is the proxy: raise it there.
        max_unauthenticated_connections_per_peer: usize = "64" as Num, .range(1, 1_000_000);
        /// Largest request line plus headers, in bytes.
        max_header_bytes: usize = "65536" as Num, .range(8192, 1 << 20).flag("max-header-bytes").env("FASTMCP_MAX_HEADER_BYTES");
        /// Keep connections open between requests.
        keep_alive: bool = "true" as Flag, .negated_flag("no-keep-alive").env("FASTMCP_NO_KEEP_ALIVE");
        /// How long shutdown waits for open connections.
        shutdown_grace: Duration = "30" as Secs, .range(0, 3600);
        /// Failed authentications per client address per minute audited one by one; beyond, counted and audited in aggregate.
        auth_failures_per_minute: u32 = "30" as Num, .range(1, 1_000_000).flag("auth-failures-per-minute").env("FASTMCP_AUTH_FAILURES_PER_MINUTE");
        /// Client addresses the failed-authentication budget tracks at once; while the table is full, failures are audited only in aggregate.
        auth_failure_peers: usize = "65536" as Num, .range(1, 16_777_216);
    }

    /// The WebAssembly sandbox, as far as it is not per plugin.
    runtime: RuntimeConfig {
        /// Plugin calls that may run at once; the pooling allocator is sized to match.
        max_concurrent_calls: u32 = "128" as Num, .range(1, 100_000).flag("max-concurrent-calls").env("FASTMCP_MAX_CONCURRENT_CALLS");
        /// Sandbox slots one principal may hold, running or waiting for one; beyond, 429 `share_exceeded`.
        max_calls_per_principal: u32 = "32" as Num, .range(1, 100_000);
        /// How long a call may wait for a free sandbox slot before 503 `overloaded`.
        queue_timeout: Duration = "250" as Millis, .range(0, 60_000).flag("queue-timeout-ms").env("FASTMCP_QUEUE_TIMEOUT_MS");
        /// Epoch tick: the granularity of deadlines and of cooperative yields.
        epoch_tick: Duration = "10" as Millis, .range(1, 1000);
        /// Upper bound for any manifest's `limits.memory_mb`.
        max_memory_mb: u32 = "1024" as Num, .range(1, 65_536).flag("max-memory-mb").env("FASTMCP_MAX_MEMORY_MB");
        /// Upper bound for any manifest's `limits.timeout_ms`.
        max_timeout_ms: u64 = "60000" as Num, .range(1, 3_600_000);
        /// Use the pooling allocator if the machine allows it.
        pooling: bool = "true" as Flag, .negated_flag("no-pooling").env("FASTMCP_NO_POOLING");
        /// Largest JSON result a plugin may return, in bytes.
        max_result_bytes: usize = "4194304" as Num, .range(1024, 1 << 30);
        /// Log lines a single call may write through the `log` import (and its standard output and error, which are logged line by line).
        max_log_lines_per_call: u32 = "256" as Num, .range(0, 100_000);
        /// Bytes of a call's standard output and error kept for the log (both together); beyond, writes succeed and are dropped.
        max_output_bytes_per_call: usize = "16384" as Num, .range(0, 1 << 20);
        /// Bytes of each plugin's own log file (`.runtime/plugin-output/NAME.log`: its output, log lines, failures and refused requests, which `plugin dev` follows); beyond, it is rotated once to `NAME.log.1`; 0 writes none.
        plugin_log_bytes: u64 = "1048576" as Num, .range(0, 1 << 30);
        /// Bytes of each plugin memory reset in place (memset, kept resident) rather than returned to the kernel when a call ends; either way the next call starts from a clean memory.
        memory_keep_resident_bytes: usize = "4194304" as Num, .range(0, 1 << 30).flag("memory-keep-resident-bytes").env("FASTMCP_MEMORY_KEEP_RESIDENT_BYTES");
        /// The same for tables.
        table_keep_resident_bytes: usize = "65536" as Num, .range(0, 1 << 30);
        /// Bytes of compiled functions kept in memory (Cranelift's incremental cache), so a rebuilt component recompiles only what changed; 0 turns it off.
        function_cache_bytes: usize = "268435456" as Num, .range(0, 1 << 34).flag("function-cache-bytes").env("FASTMCP_FUNCTION_CACHE_BYTES");
        /// Where precompiled components are kept (default `.runtime/cache` under the root); hosts of the same build may share one.
        compile_cache_dir: Option<PathBuf> = "" as Path, .flag("compile-cache-dir").env("FASTMCP_COMPILE_CACHE_DIR");
    }

    /// How bearer tokens are verified.
    auth: AuthConfig {
        /// Required token issuer (`iss`).
        issuer: String = "https://idp.local" as Text, .flag("issuer").env("FASTMCP_ISSUER");
        /// Required token audience (`aud`).
        audience: String = "fastmcp" as Text, .flag("audience").env("FASTMCP_AUDIENCE");
        /// Clock skew allowed for `exp`, `nbf` and `iat`, in seconds.
        leeway_s: u64 = "30" as Num, .range(0, 600).flag("token-leeway-s").env("FASTMCP_TOKEN_LEEWAY_S");
        /// A JWKS file with the verification keys (wins over the URL); without either, development keys.
        jwks_file: Option<PathBuf> = "" as Path, .flag("jwks-file").env("FASTMCP_JWKS_FILE");
        /// A JWKS URL with the verification keys.
        jwks_url: Option<String> = "" as Text, .flag("jwks-url").env("FASTMCP_JWKS_URL");
        /// Timeout of one JWKS fetch.
        jwks_timeout: Duration = "5000" as Millis, .range(1, 60_000);
        /// Minimum time between refetches triggered by unknown `kid`s.
        jwks_refetch_interval: Duration = "5000" as Millis, .range(0, 3_600_000);
        /// How often a remote JWKS is refetched when its response names no `Cache-Control: max-age`.
        jwks_refresh_interval: Duration = "300" as Secs, .range(1, 86_400).flag("jwks-refresh-s").env("FASTMCP_JWKS_REFRESH_S");
        /// The shortest refresh interval a JWKS `max-age` may set.
        jwks_min_max_age: Duration = "30" as Secs, .range(1, 86_400);
        /// The longest refresh interval a JWKS `max-age` may set.
        jwks_max_max_age: Duration = "3600" as Secs, .range(1, 86_400);
        /// Longest token accepted, in bytes.
        max_token_bytes: usize = "8192" as Num, .range(256, 1 << 20);
        /// Verified tokens remembered (0 disables the cache).
        token_cache_size: usize = "10000" as Num, .range(0, 10_000_000);
        /// When set, tokens must carry this `typ` header (e.g. `at+jwt`, RFC 9068).
        required_typ: Option<String> = "" as Text, .flag("require-token-type").env("FASTMCP_REQUIRE_TOKEN_TYPE");
    }

    /// Shared state for several replicas: rate limits, spent action tokens and idempotency records.
    redis: RedisConfig {
        /// `redis://host:port/db`; unset: embedded state and in-memory limits.
        url: Option<String> = "" as Text, .flag("redis-url").env("REDIS_URL").secret();
        /// Longest wait for one Redis operation before failing it.
        timeout: Duration = "250" as Millis, .range(1, 60_000).flag("redis-timeout-ms").env("FASTMCP_REDIS_TIMEOUT_MS");
        /// When Redis cannot answer, let calls through without rate limiting (confirmations and idempotency still fail closed).
        fail_open: bool = "false" as Flag, .flag("redis-fail-open").env("FASTMCP_REDIS_FAIL_OPEN");
        /// How often the host PINGs Redis for `/health` (which never waits on Redis itself).
        health_check_interval: Duration = "2000" as Millis, .range(100, 600_000);
    }

    /// Token brokering.
    broker: BrokerConfig {
        /// The providers file (credential sources; secrets by file or env name); default `.runtime/providers.yml` under the root when it exists.
        providers_file: Option<PathBuf> = "" as Path, .flag("providers").env("FASTMCP_PROVIDERS_FILE");
        /// Timeout of one token fetch.
        fetch_timeout: Duration = "5000" as Millis, .range(1, 60_000);
        /// After a failed fetch, answer "unavailable" at once for this long.
        failure_backoff: Duration = "1000" as Millis, .range(0, 600_000);
    }

    /// Limits on plugins' outbound HTTP.
    outbound: OutboundConfig {
        /// Longest wait for a DNS answer.
        dns_timeout: Duration = "2000" as Millis, .range(1, 60_000);
        /// Names whose DNS answers are cached (each within its TTL; every use is checked like a fresh answer); 0 asks the system resolver every time.
        dns_cache_entries: usize = "1024" as Num, .range(0, 1_000_000);
        /// A DNS server (ADDR:PORT) for plugins' host names instead of the system's configuration (the hosts file is then not read).
        dns_server: Option<SocketAddr> = "off" as Addr, .flag("outbound-dns-server").env("FASTMCP_OUTBOUND_DNS_SERVER");
        /// Longest a DNS answer is cached, whatever its TTL.
        dns_max_ttl: Duration = "300000" as Millis, .range(1, 86_400_000);
        /// Longest wait for a TCP (and TLS) connection; a plugin may ask for less.
        connect_timeout: Duration = "5000" as Millis, .range(1, 600_000).flag("outbound-connect-timeout-ms").env("FASTMCP_OUTBOUND_CONNECT_TIMEOUT_MS");
        /// Longest wait for the response head; a plugin may ask for less.
        first_byte_timeout: Duration = "30000" as Millis, .range(1, 3_600_000).flag("outbound-first-byte-timeout-ms").env("FASTMCP_OUTBOUND_FIRST_BYTE_TIMEOUT_MS");
        /// Longest silence between two chunks of a response body; a plugin may ask for less.
        between_bytes_timeout: Duration = "10000" as Millis, .range(1, 3_600_000).flag("outbound-between-bytes-timeout-ms").env("FASTMCP_OUTBOUND_BETWEEN_BYTES_TIMEOUT_MS");
        /// Largest request body a plugin may send, in bytes.
        max_request_body_bytes: u64 = "1048576" as Num, .range(0, 1 << 30).flag("outbound-max-request-bytes").env("FASTMCP_OUTBOUND_MAX_REQUEST_BYTES");
        /// Largest response body a plugin may receive, in bytes.
        max_response_body_bytes: u64 = "4194304" as Num, .range(0, 1 << 30).flag("outbound-max-response-bytes").env("FASTMCP_OUTBOUND_MAX_RESPONSE_BYTES");
        /// Outbound requests one plugin call may make.
        max_requests_per_call: u32 = "32" as Num, .range(0, 10_000).flag("outbound-max-requests-per-call").env("FASTMCP_OUTBOUND_MAX_REQUESTS_PER_CALL");
        /// Internal address ranges (loopback, private, link-local, metadata…) plugins may reach, as CIDRs — the operator's choice, never a manifest's.
        allow_internal: Vec<ipnet::IpNet> = "" as List, .flag("outbound-allow-internal").env("FASTMCP_OUTBOUND_ALLOW_INTERNAL");
        /// A PEM bundle of CA certificates that plugins' `https` requests (and the broker's token requests) trust besides the public (webpki) roots: internal APIs behind a private CA.
        ca_file: Option<PathBuf> = "" as Path, .flag("outbound-ca-file").env("FASTMCP_OUTBOUND_CA_FILE");
        /// Trust only `ca_file`, not the public roots.
        ca_file_only: bool = "false" as Flag, .flag("outbound-ca-file-only").env("FASTMCP_OUTBOUND_CA_FILE_ONLY");
        /// Idle connections kept per origin and checked address for reuse (as many as calls may run at once by default, so a busy origin keeps one per call); 0 opens a connection per request.
        pool_idle_per_origin: usize = "128" as Num, .range(0, 10_000).flag("outbound-pool-idle-per-origin").env("FASTMCP_OUTBOUND_POOL_IDLE_PER_ORIGIN");
        /// Idle connections kept in all.
        pool_idle_total: usize = "512" as Num, .range(0, 100_000);
        /// A kept connection idle this long is closed.
        pool_idle_timeout: Duration = "30000" as Millis, .range(1, 3_600_000);
        /// A connection this old is not reused (it closes when its request ends).
        pool_max_lifetime: Duration = "300000" as Millis, .range(1, 86_400_000);
    }

    /// Quotas of the idempotency store.
    idempotency: IdempotencyConfig {
        /// Largest reply kept for replay, in bytes; a retry of a bigger one gets 409 `idempotency_reply_too_large`.
        max_reply_bytes: usize = "65536" as Num, .range(0, 16 << 20).flag("idempotency-max-reply-bytes").env("FASTMCP_IDEMPOTENCY_MAX_REPLY_BYTES");
        /// Live keys one caller (tenant + subject) may hold; beyond, 429 `idempotency_quota_exceeded`.
        max_keys_per_caller: u64 = "1000" as Num, .range(1, 1_000_000).flag("idempotency-max-keys").env("FASTMCP_IDEMPOTENCY_MAX_KEYS");
    }

    /// Calls that wait for approvers (the policy's `approvals:` rules decide which).
    approvals: ApprovalsConfig {
        /// Calls awaiting approval one requester (tenant + subject) may have; beyond, 429 `approval_quota_exceeded`.
        max_pending_per_caller: u64 = "20" as Num, .range(1, 100_000);
        /// Calls awaiting approval at once, all requesters together; beyond, 429 `approval_quota_exceeded`.
        max_pending: u64 = "1000" as Num, .range(1, 1_000_000);
        /// Longest `GET /calls/{id}?wait=S` long-poll.
        max_wait: Duration = "30" as Secs, .range(0, 600);
        /// How long a finished call's outcome (and result) is kept for its requester.
        result_retention: Duration = "86400" as Secs, .range(60, 30 * 86_400);
        /// Largest result kept, in bytes of JSON; a bigger one is dropped (the call still completed).
        max_result_bytes: usize = "65536" as Num, .range(0, 16 << 20);
        /// Largest arguments of a call that waits for approvers, in bytes of JSON (every approver's inbox reads them); beyond, 413 `payload_too_large`.
        max_args_bytes: usize = "65536" as Num, .range(256, 16 << 20);
        /// How often calls past their expiry are ended as `expired` (reading one ends it too).
        sweep_interval: Duration = "5" as Secs, .range(1, 3600);
        /// An HTTP endpoint told of every request and decision (POST, JSON, signed with HMAC-SHA256 in `X-FastMCP-Signature`).
        webhook_url: Option<String> = "" as Text, .env("FASTMCP_APPROVALS_WEBHOOK_URL").secret();
        /// A file holding the key that signs webhook events; required with `webhook_url`.
        webhook_key_file: Option<PathBuf> = "" as Path, .env("FASTMCP_APPROVALS_WEBHOOK_KEY_FILE");
        /// Webhook events waiting to be sent; beyond, new ones are dropped and counted.
        webhook_queue: usize = "1024" as Num, .range(1, 1_000_000);
    }

    /// Users' own accounts at `oauth2_authorization_code` providers (`/connections`): their tokens, encrypted at rest.
    connections: ConnectionsConfig {
        /// A file holding the key (32 bytes, hex or base64) that encrypts users' tokens at rest; unset: `.runtime/connections.key`, generated on first use. Set it with Redis (replicas share it) and keep it out of the store's backups.
        key_file: Option<PathBuf> = "" as Path, .env("FASTMCP_CONNECTIONS_KEY_FILE");
        /// Files of earlier keys, used only to decrypt (rotation: a token sealed with one is sealed again with `key_file` when next refreshed; drop the old key after `max_idle`).
        previous_key_files: Vec<String> = "" as List, .env("FASTMCP_CONNECTIONS_PREVIOUS_KEY_FILES");
        /// How long a started connect flow waits for its callback.
        flow_ttl: Duration = "600" as Secs, .range(60, 3600);
        /// Connect flows one caller may have pending; beyond, 429 `connection_quota_exceeded`.
        max_pending_flows_per_caller: u64 = "5" as Num, .range(1, 100);
        /// A connection not refreshed (or made) for this long is forgotten.
        max_idle: Duration = "7776000" as Secs, .range(3600, 366 * 86_400);
        /// Largest token (access or refresh) kept, in bytes; a provider that issues a bigger one cannot be connected.
        max_token_bytes: usize = "8192" as Num, .range(256, 65_536);
        /// How long an MCP call waits for the user to finish connecting after accepting a URL elicitation (0: answer `connection_required` at once).
        elicitation_wait: Duration = "120" as Secs, .range(0, 600);
    }

    /// The audit trail.
    audit: AuditOptions {
        /// Largest record, in bytes; bigger events are cut with a digest.
        max_record_bytes: usize = "16384" as Num, .range(2048, 16 << 20).flag("audit-max-record-bytes").env("FASTMCP_AUDIT_MAX_RECORD_BYTES");
        /// A directory (on another mount) that receives a copy of every checkpoint.
        witness_dir: Option<PathBuf> = "" as Path, .flag("audit-witness-dir").env("FASTMCP_AUDIT_WITNESS_DIR");
        /// An HTTP endpoint that receives every checkpoint (POST, JSON).
        witness_url: Option<String> = "" as Text, .flag("audit-witness-url").env("FASTMCP_AUDIT_WITNESS_URL").secret();
        /// An HTTP endpoint receiving every record (POST, batches of JSON lines signed with HMAC-SHA256), at least once, in order.
        export_url: Option<String> = "" as Text, .env("FASTMCP_AUDIT_EXPORT_URL").secret();
        /// A file holding the key that signs `export_url` batches (`X-FastMCP-Signature`); required with `export_url`.
        export_key_file: Option<PathBuf> = "" as Path, .env("FASTMCP_AUDIT_EXPORT_KEY_FILE");
        /// Send every record as an OTLP log record to the traces collector (`telemetry.endpoint`).
        export_otlp: bool = "false" as Flag, .env("FASTMCP_AUDIT_EXPORT_OTLP");
        /// Records in one export batch.
        export_batch: usize = "256" as Num, .range(1, 10_000);
        /// Longest wait between retries of a failing sink (the wait doubles from 250 ms up to this).
        export_max_backoff: Duration = "30000" as Millis, .range(1, 3_600_000);
    }

    /// Traces (OpenTelemetry, OTLP). Export is on when an endpoint is set or `exporter` is `otlp`; every setting also reads its standard `OTEL_*` variable.
    telemetry: TelemetryConfig {
        /// `otlp` or `none`; unset: `otlp` when an endpoint is set.
        exporter: Option<String> = "" as Text, .env("OTEL_TRACES_EXPORTER");
        /// The collector's base URL (`http://collector:4318`; gRPC `http://collector:4317`); HTTP appends `/v1/traces` (and `/v1/logs` for the audit export).
        endpoint: Option<String> = "" as Text, .env("OTEL_EXPORTER_OTLP_ENDPOINT").secret();
        /// The traces URL, used as given (wins over `endpoint` for traces).
        traces_endpoint: Option<String> = "" as Text, .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").secret();
        /// `http/protobuf` or `grpc`.
        protocol: String = "http/protobuf" as Text, .env("OTEL_EXPORTER_OTLP_PROTOCOL");
        /// Headers sent with every export, `key=value,key2=value2` (values URL-encoded; e.g. the collector's API key).
        headers: Option<String> = "" as Text, .env("OTEL_EXPORTER_OTLP_HEADERS").secret();
        /// `service.name` of the resource.
        service_name: String = "fastmcp" as Text, .env("OTEL_SERVICE_NAME");
        /// More resource attributes, `key=value,key2=value2`.
        resource_attributes: Option<String> = "" as Text, .env("OTEL_RESOURCE_ATTRIBUTES");
        /// `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`, `parentbased_always_off` or `parentbased_traceidratio`.
        sampler: String = "parentbased_always_on" as Text, .env("OTEL_TRACES_SAMPLER");
        /// The ratio (0..1) of the `traceidratio` samplers.
        sampler_arg: Option<String> = "" as Text, .env("OTEL_TRACES_SAMPLER_ARG");
        /// Finished spans waiting for export; beyond, spans are dropped and counted (`fastmcp_trace_spans_dropped_total`).
        queue_spans: usize = "2048" as Num, .range(1, 1_000_000).env("OTEL_BSP_MAX_QUEUE_SIZE");
        /// Spans sent in one export.
        batch_spans: usize = "512" as Num, .range(1, 100_000).env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE");
        /// Longest wait between exports.
        export_interval: Duration = "1000" as Millis, .range(1, 600_000).env("OTEL_BSP_SCHEDULE_DELAY");
        /// Longest one export may take (traces and the audit export's OTLP logs).
        export_timeout: Duration = "10000" as Millis, .range(1, 600_000).env("OTEL_EXPORTER_OTLP_TIMEOUT");
        /// Longest shutdown waits to send what is queued.
        shutdown_timeout: Duration = "5000" as Millis, .range(0, 600_000);
    }

    /// The MCP endpoint (`/mcp`).
    mcp: McpConfig {
        /// Browser origins allowed to call `/mcp` (`scheme://host[:port]`); a request carrying any other `Origin` is refused (403).
        allowed_origins: Vec<String> = "" as List, .flag("mcp-allowed-origins").env("FASTMCP_MCP_ALLOWED_ORIGINS");
        /// The host's public base URL (`https://tools.example.com`) named in the protected-resource metadata; default `http://` and the `Host` header.
        public_url: Option<String> = "" as Text, .flag("public-url").env("FASTMCP_PUBLIC_URL");
        /// Authorization servers named in the metadata; default the token issuer, when it is a URL.
        authorization_servers: Vec<String> = "" as List, .flag("authorization-servers").env("FASTMCP_AUTHORIZATION_SERVERS");
        /// Legacy (2025-11-25) sessions open at once; beyond, 503 `overloaded`.
        max_sessions: usize = "256" as Num, .range(1, 1_000_000).flag("mcp-max-sessions").env("FASTMCP_MCP_MAX_SESSIONS");
        /// Legacy sessions one principal may hold; beyond, 429 `share_exceeded`.
        max_sessions_per_principal: usize = "16" as Num, .range(1, 1_000_000);
        /// A legacy session idle this long is closed.
        session_idle: Duration = "300" as Secs, .range(1, 86_400).flag("mcp-session-idle-s").env("FASTMCP_MCP_SESSION_IDLE_S");
        /// Streams (`subscriptions/listen`, `GET /mcp`) open at once, and never more than half of `server.max_connections`; beyond, 503 `overloaded`.
        max_streams: usize = "256" as Num, .range(1, 1_000_000);
        /// Streams one principal may hold open; beyond, 429 `share_exceeded`.
        max_streams_per_principal: usize = "8" as Num, .range(1, 1_000_000);
        /// A stream is ended after this long; clients reconnect (and re-list the tools).
        stream_lifetime: Duration = "600" as Secs, .range(1, 86_400);
    }

    /// Prometheus metrics.
    metrics: MetricsConfig {
        /// Where `/metrics` is served: its own listener, never the API's; `off` to not serve it.
        listen: Option<SocketAddr> = "127.0.0.1:9464" as Addr, .flag("metrics-listen").env("FASTMCP_METRICS_LISTEN");
    }

    /// Hot reload.
    reload: ReloadConfig {
        /// Reload manifests, components and policies when their files change.
        watch: bool = "true" as Flag, .negated_flag("no-watch").env("FASTMCP_NO_WATCH");
    }
}
