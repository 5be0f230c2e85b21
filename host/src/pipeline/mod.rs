//! The call pipeline: the one way a tool runs. Every transport (REST, MCP)
//! turns its request into a [`CallRequest`] and renders the
//! [`CallOutcome`] of [`call`]; nothing in between knows about HTTP (replies
//! and stored replays are typed outcomes each transport renders).
//!
//! ```text
//!  transport ──CallRequest──▶ authenticate ─▶ shape ─▶ authorize id ─▶ arguments
//!                             ─▶ resolve ─▶ validate ─▶ rules ─▶ rate limit
//!                             ─▶ connection ─▶ idempotency ─▶ gate ─▶ execute
//!  transport ◀─CallOutcome─── record (audit, durable) ◀─┘  (every stop above too)
//! ```
//!
//! Each step takes what the step before it produced and returns what the
//! next one needs (a [`steps::Authorized`] caller, then [`steps::Arguments`],
//! a [`steps::Checked`] call), so the compiler keeps the order. What is
//! audited is written down on the way in one [`CallRecord`], which becomes
//! the audit record, the log line and the metrics at the end — denials
//! included. Adding a step is one function in [`steps`] (or its own module)
//! and one line in `run`. The order, and why:
//! 1. **authenticate** — the transport verified the bearer token (or failed
//!    to); the pipeline decides on it first, so every later outcome belongs to
//!    a known caller, and an unauthenticated client only ever learns "401"
//!    (its failures are recorded within a per-address budget,
//!    [`crate::auth::failures`]).
//! 2. **shape** — a tool id that no manifest could ever declare (bad
//!    characters, over [`MAX_TOOL_ID_LEN`]) is 404 before it is matched
//!    against any pattern; the record keeps it cut to that length.
//! 3. **authorize the id** — the invoke scope, then RBAC on the tool id as
//!    given (does a role grant it?), *before* the tool is looked up or the
//!    arguments are read: a caller who may not use a tool gets the same 403
//!    whether or not it exists, and never its schema.
//! 4. **arguments** — the transport's arguments (REST reads the body only
//!    now), the idempotency key and the action token.
//! 5. **resolve** — the tool in the registry snapshot (404 only for callers a
//!    role would let use it), then the tool's own scopes.
//! 6. **validate**, then the **rules** — arguments against the tool's
//!    schema; ABAC rules read `args`, so they only ever see arguments that
//!    passed it. Both run on confirm too: a policy change between invoke and
//!    confirm applies.
//! 7. **rate limit**, the **connection** and **idempotency** follow
//!    authorization, so denied callers cannot spend quota or keys; a tool
//!    that acts with the caller's own account at a provider needs their
//!    connection ([`connection`]: `connection_required` before anything is
//!    asked of a human or run); idempotency precedes the gate, so a
//!    retried invoke gets the same action token back and a retried confirm
//!    the same result instead of "token used".
//! 8. **gate** ([`gate`]): the caller's own confirmation first, then the
//!    approval by others ([`approval`]) — the call is stored and waits —,
//!    then **execute** ([`execute`]) in a fresh sandbox. An approved call
//!    comes back through every step as its requester ([`Endpoint::Approved`]).
//! 9. **record** ([`record`]): durable before the transport answers.

pub mod approval;
mod connection;
mod digest;
mod execute;
mod gate;
pub mod record;
mod replay;
pub mod reply;
mod steps;

pub use record::CallRecord;
pub use reply::{
    AwaitingApprovalBody, CallOutcome, CompletedBody, PendingBody, Reply, ReplyBody, StoredOutcome,
};

pub use crate::confirm::DeclineReason;
use crate::correlation::CorrelationId;
use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;
use serde_json::{Map, Value};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

/// Longest tool id a manifest can declare (`plugin:name`, 64 + 1 + 64).
pub const MAX_TOOL_ID_LEN: usize = 129;

/// Which entry point a call came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Run the tool (or stop at the confirmation gate).
    Invoke,
    /// Run a tool a human approved, presenting its action token.
    Confirm,
    /// A human declined (or cancelled): spend the action token, run nothing.
    /// The reason is recorded.
    Decline(DeclineReason),
    /// Run a call its approvers agreed to, as its requester: every check
    /// again under the rules in force, then execute (no confirmation,
    /// approval or rate limit a second time).
    Approved,
}

impl Endpoint {
    /// `invoke`, `confirm`, `decline` or `approved`.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Invoke => "invoke",
            Endpoint::Confirm => "confirm",
            Endpoint::Decline(_) => "decline",
            Endpoint::Approved => "approved",
        }
    }
}

/// Which transport a call came over (recorded in the audit trail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `POST /tools/{id}/invoke|confirm`.
    Rest,
    /// `POST /mcp` (`tools/call`).
    Mcp,
}

impl Transport {
    /// `rest` or `mcp`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Rest => "rest",
            Transport::Mcp => "mcp",
        }
    }
}

/// The arguments of a call, and what travels with them.
#[derive(Debug, Default)]
pub struct CallArgs {
    /// The tool's arguments (a JSON object).
    pub args: Map<String, Value>,
    /// The action token, on confirm.
    pub action_token: Option<String>,
    /// The idempotency key, if the caller sent one (checked by the pipeline).
    pub idempotency_key: Option<String>,
}

/// Arguments a transport produces when the pipeline asks for them (after
/// authorization): REST reads and parses the body only then.
pub type ArgsSource = Pin<Box<dyn Future<Output = Result<CallArgs, ApiError>> + Send>>;

/// One call, as a transport hands it over.
pub struct CallRequest {
    /// The request's correlation id.
    pub correlation_id: CorrelationId,
    /// Over which transport.
    pub transport: Transport,
    /// Invoke or confirm.
    pub endpoint: Endpoint,
    /// Who: the principal the transport authenticated, or why it could not.
    pub caller: Result<Arc<Principal>, ApiError>,
    /// The client's address, when known.
    pub peer: Option<IpAddr>,
    /// The tool id as given.
    pub tool: String,
    /// What: the arguments, asked for after authorization.
    pub args: ArgsSource,
    /// Fires if the client gives up: a running tool is stopped (its sandbox
    /// torn down) and the call recorded `cancelled`. `None`: run to the end.
    pub cancel: Option<tokio_util::sync::CancellationToken>,
    /// The call's span and the trace context the caller sent.
    pub trace: crate::telemetry::CallTrace,
    /// For an approved run: the approval it carries out (call id and
    /// approvers), recorded with it.
    pub approved: Option<Value>,
    /// The request's headers a later step may read (none for an approved
    /// run): the bearer a delegated credential is exchanged from, the
    /// `Host` of a connect link.
    pub headers: RequestHeaders,
}

/// Headers of the HTTP request a call came in, kept as their values (cheap
/// clones) and read only by a step that needs them: most calls never do.
#[derive(Clone, Default)]
pub struct RequestHeaders {
    host: Option<http::HeaderValue>,
    /// Marked sensitive: never shown by `Debug`.
    authorization: Option<http::HeaderValue>,
}

impl RequestHeaders {
    /// The values of `headers` a call may need.
    pub fn of(headers: &http::HeaderMap) -> Self {
        let authorization = headers.get(http::header::AUTHORIZATION).cloned().map(|mut value| {
            value.set_sensitive(true);
            value
        });
        Self { host: headers.get(http::header::HOST).cloned(), authorization }
    }

    /// The bearer token the caller authenticated with (never logged or
    /// recorded).
    pub(crate) fn bearer(&self) -> Option<crate::broker::providers::Secret> {
        crate::auth::presented_token(self.authorization.as_ref())
    }

    /// The `Host` the caller reached the host at.
    pub(crate) fn host(&self) -> Option<&http::HeaderValue> {
        self.host.as_ref()
    }
}

/// Run a call through every step, record it durably, and return what the
/// transport must answer.
pub async fn call(state: &AppState, request: CallRequest) -> CallOutcome {
    let CallRequest {
        correlation_id,
        transport,
        endpoint,
        caller,
        peer,
        tool,
        args,
        cancel,
        trace,
        approved,
        headers,
    } = request;
    let mut record = CallRecord::new(&correlation_id, transport, endpoint, &tool, peer, trace);
    record.approved = approved;
    record.headers = headers;
    let result = run(state, &mut record, caller, args, cancel.as_ref()).await;
    let rate_limit = record.rate;
    let result = record.commit(state, result).await;
    CallOutcome { result, rate_limit }
}

async fn run(
    state: &AppState,
    record: &mut CallRecord,
    caller: Result<Arc<Principal>, ApiError>,
    args: ArgsSource,
    cancel: Option<&tokio_util::sync::CancellationToken>,
) -> Result<Reply, ApiError> {
    let trace = record.trace.clone();
    let caller = traced(trace.step("authenticate"), || steps::authenticate(record, caller))?;
    let authorized = traced(trace.step("authorize"), || {
        steps::check_shape(record)?;
        steps::authorize_id(state, record, caller)
    })?;
    let steps::Arguments { args, args_sha256, presented } =
        traced_async(trace.step("arguments"), steps::take_args(record, args)).await?;
    let resolved = traced(trace.step("resolve"), || steps::resolve(state, record, authorized))?;
    let validated = traced(trace.step("validate"), || steps::validate(record, resolved, args, args_sha256))?;
    let call = traced(trace.step("rules"), || steps::evaluate_rules(state, validated))?;
    if record.endpoint != Endpoint::Approved {
        traced_async(trace.step("rate_limit"), steps::rate_limit(state, record, &call)).await?;
    }
    // Only a tool that names a credential can need the caller's connection
    // (no step, and no span, for the others).
    if call.tool.def.credential.is_some() && !matches!(record.endpoint, Endpoint::Decline(_)) {
        traced_async(trace.step("connection"), connection::connection(state, record, &call)).await?;
    }
    let begun =
        traced_async(trace.step("idempotency"), replay::begin(state, record.endpoint, &call, &presented))
            .await?;
    let reservation = match begun {
        replay::Begun::Replay(reply) => return Ok(*reply),
        replay::Begun::Proceed(reservation) => reservation,
    };
    let gated = async {
        match (record.endpoint, presented.action_token.as_deref()) {
            (Endpoint::Invoke, _) => gate::invoke(state, record, &call, cancel).await,
            (Endpoint::Approved, _) => gate::approved(state, record, &call, cancel).await,
            (Endpoint::Confirm, Some(token)) => gate::confirm(state, record, &call, token, cancel).await,
            (Endpoint::Decline(reason), Some(token)) => gate::decline(state, &call, token, reason).await,
            (Endpoint::Confirm | Endpoint::Decline(_), None) => {
                Err(ApiError::BadRequest("an action token is required".into()))
            }
        }
    };
    let outcome = traced_async(trace.step("gate"), gated).await;
    replay::settle(state, record, reservation, &outcome).await;
    outcome
}

/// Run a step inside its span, marking the span with the error's code.
fn traced<T>(span: tracing::Span, step: impl FnOnce() -> Result<T, ApiError>) -> Result<T, ApiError> {
    let result = span.in_scope(step);
    if let Err(e) = &result {
        crate::telemetry::context::fail(&span, e.code());
    }
    result
}

/// [`traced`] for a step that awaits.
async fn traced_async<T>(
    span: tracing::Span,
    step: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    use tracing::Instrument as _;
    let result = step.instrument(span.clone()).await;
    if let Err(e) = &result {
        crate::telemetry::context::fail(&span, e.code());
    }
    result
}

#[cfg(test)]
mod pipeline_tests;
