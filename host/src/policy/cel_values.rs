//! The variables a CEL rule sees: `principal`, `tool`, `args`, `request`,
//! `credential`.

use super::condition::Variables;
use crate::manifest::ToolDef;
use crate::principal::Principal;
use cel::{Context, Env, Value as Cel};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// What rules may know about one call.
pub struct Call<'a> {
    pub principal: &'a Principal,
    pub tool: &'a ToolDef,
    pub args: &'a Value,
    pub now_unix_ms: i64,
    pub credential_kind: &'a str,
}

/// A context for evaluating rules about `call` that holds the variables in
/// `reads` (the others are never built).
pub fn context<'a>(env: &Arc<Env>, call: &Call, reads: Variables) -> Context<'a, 'a> {
    let mut context = Context::with_env(env.clone());
    if reads.contains("credential") {
        context.add_variable_from_value("credential", map([("kind", call.credential_kind.into())]));
    }
    if reads.contains("principal") {
        let principal = call.principal;
        context.add_variable_from_value(
            "principal",
            map([
                ("sub", principal.sub.as_str().into()),
                ("tenant", principal.tenant.as_str().into()),
                ("roles", strings(&principal.roles)),
                ("scopes", strings(&principal.scopes)),
            ]),
        );
    }
    if reads.contains("tool") {
        context.add_variable_from_value("tool", tool(call.tool));
    }
    if reads.contains("args") {
        context.add_variable_from_value("args", json(call.args));
    }
    if reads.contains("request") {
        let time =
            chrono::DateTime::from_timestamp_millis(call.now_unix_ms).unwrap_or_default().fixed_offset();
        context.add_variable_from_value("request", map([("time", Cel::Timestamp(time))]));
    }
    context
}

fn tool(tool: &ToolDef) -> Cel {
    let (plugin, name) = tool.id.split_once(':').unwrap_or(("", &tool.id));
    let a = tool.annotations;
    map([
        ("id", tool.id.as_str().into()),
        ("plugin", plugin.into()),
        ("name", name.into()),
        (
            "annotations",
            map([
                ("read_only", Cel::Bool(a.read_only)),
                ("destructive", Cel::Bool(a.destructive)),
                ("idempotent", Cel::Bool(a.idempotent)),
                ("open_world", Cel::Bool(a.open_world)),
            ]),
        ),
    ])
}

fn map<const N: usize>(entries: [(&str, Cel); N]) -> Cel {
    let map: HashMap<String, Cel> = entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    map.into()
}

fn strings(items: &[String]) -> Cel {
    Cel::List(Arc::new(items.iter().map(|s| Cel::from(s.as_str())).collect()))
}

/// JSON → CEL: integers become `int` (or `uint` beyond `i64`), other numbers
/// `double`.
pub fn json(value: &Value) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Cel::Int(i),
            (None, Some(u)) => Cel::UInt(u),
            _ => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(items) => Cel::List(Arc::new(items.iter().map(json).collect())),
        Value::Object(fields) => {
            let map: HashMap<String, Cel> = fields.iter().map(|(k, v)| (k.clone(), json(v))).collect();
            map.into()
        }
    }
}
