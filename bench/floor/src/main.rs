//! `fastmcp-floor`: what the load test measures the host against — a bare
//! axum server answering `POST /tools/{id}/invoke` with the host's response
//! shape (`{"status", "tool", "result", "correlation_id"}`, the arguments
//! echoed as the result), and `POST /mcp` with a JSON-RPC `tools/call`
//! result echoing the arguments (`structuredContent` and a text block) —
//! and nothing else: no token, no schema, no policy, no sandbox, no audit,
//! no log, no protocol checks.
//!
//! ```text
//! fastmcp-floor [--listen 127.0.0.1:18002]
//! ```

use axum::Json;
use axum::extract::Path;
use axum::routing::post;
use serde_json::{Value, json};

async fn invoke(Path(tool): Path<String>, Json(args): Json<Value>) -> Json<Value> {
    let correlation_id = uuid::Uuid::now_v7().to_string();
    Json(json!({ "status": "completed", "tool": tool, "result": args, "correlation_id": correlation_id }))
}

async fn mcp(Json(request): Json<Value>) -> Json<Value> {
    let args = request["params"]["arguments"].clone();
    let text = args.to_string();
    Json(json!({
        "jsonrpc": "2.0",
        "id": request["id"],
        "result": {"resultType": "complete", "content": [{"type": "text", "text": text}], "structuredContent": args, "isError": false},
    }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut listen = String::from("127.0.0.1:18002");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().unwrap_or_default(),
            other => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("unknown argument {other}"),
                ));
            }
        }
    }
    let app = axum::Router::new().route("/tools/{id}/invoke", post(invoke)).route("/mcp", post(mcp));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    axum::serve(listener, app).await
}
