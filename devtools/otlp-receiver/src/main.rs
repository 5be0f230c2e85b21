//! `fastmcp-otlp-receiver [HTTP_ADDR] [GRPC_ADDR] [AUDIT_KEY_FILE]`: receive
//! OTLP traces and logs (and the audit export's signed batches at
//! `POST /audit`) and print each span, log record and audit record as one
//! JSON line — a collector for trying FastMCP's observability locally.
//! Defaults: `127.0.0.1:4318`, `127.0.0.1:4317`, no audit key. With
//! `OTLP_RECEIVER_COUNT_ONLY=1` it keeps and prints nothing but the counts,
//! every 5 s on standard error (the load test's collector).

use serde_json::json;
use std::time::Duration;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let parse = |a: Option<String>, default: &str| {
        a.unwrap_or_else(|| default.to_owned()).parse().expect("an ADDR:PORT")
    };
    let http = parse(args.next(), "127.0.0.1:4318");
    let grpc = parse(args.next(), "127.0.0.1:4317");
    let key = match args.next() {
        Some(file) => std::fs::read_to_string(file)?.trim().as_bytes().to_vec(),
        None => Vec::new(),
    };
    let count_only = std::env::var("OTLP_RECEIVER_COUNT_ONLY").is_ok_and(|v| v == "1");
    let keep = if count_only { 0 } else { usize::MAX };
    let receiver = fastmcp_otlp_receiver::Receiver::start_keeping(http, grpc, &key, keep).await?;
    eprintln!(
        "OTLP/HTTP on http://{}, gRPC on http://{}, audit sink at http://{}/audit",
        receiver.http, receiver.grpc, receiver.http
    );
    let (mut spans, mut logs, mut batches) = (0, 0, 0);
    if count_only {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let [spans, logs, records] = receiver.counts();
            eprintln!("received {spans} spans, {logs} log records, {records} audit records");
        }
    }
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for span in receiver.spans().iter().skip(spans) {
            println!("{}", json!({ "span": span }));
            spans += 1;
        }
        for log in receiver.logs().iter().skip(logs) {
            println!("{}", json!({ "log": log }));
            logs += 1;
        }
        for batch in receiver.audit_batches().iter().skip(batches) {
            for record in &batch.records {
                println!("{}", json!({ "audit": record }));
            }
            batches += 1;
        }
    }
}
