//! The variables a CEL rule sees: `principal`, `tool`, `args`, `request`,
//! `credential` — built as the `cel` crate's own values, borrowing the
//! call's strings (no copy, no intermediate `cel::Value` to convert).

use super::condition::Variables;
use crate::manifest::ToolDef;
use crate::principal::Principal;
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelTimestamp, CelUInt,
};
use cel::common::value::Val;
use cel::{Context, Env};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// A CEL value that may borrow from the call for `'a`.
type Cel<'a> = Box<dyn Val + 'a>;

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
pub fn context<'a>(env: &Arc<Env>, call: &Call<'a>, reads: Variables) -> Context<'a, 'a> {
    let mut context = Context::with_env(env.clone());
    if reads.contains("credential") {
        context.add_variable_as_val("credential", map([("kind", string(call.credential_kind))]));
    }
    if reads.contains("principal") {
        let principal = call.principal;
        context.add_variable_as_val(
            "principal",
            map([
                ("sub", string(&principal.sub)),
                ("tenant", string(&principal.tenant)),
                ("roles", strings(&principal.roles)),
                ("scopes", strings(&principal.scopes)),
            ]),
        );
    }
    if reads.contains("tool") {
        context.add_variable_as_val("tool", tool(call.tool));
    }
    if reads.contains("args") {
        context.add_variable_as_val("args", json(call.args));
    }
    if reads.contains("request") {
        let time =
            chrono::DateTime::from_timestamp_millis(call.now_unix_ms).unwrap_or_default().fixed_offset();
        context.add_variable_as_val("request", map([("time", Box::new(CelTimestamp::from(time)))]));
    }
    context
}

fn tool(tool: &ToolDef) -> Cel<'_> {
    let (plugin, name) = tool.id.split_once(':').unwrap_or(("", &tool.id));
    let a = tool.annotations;
    map([
        ("id", string(&tool.id)),
        ("plugin", string(plugin)),
        ("name", string(name)),
        (
            "annotations",
            map([
                ("read_only", boolean(a.read_only)),
                ("destructive", boolean(a.destructive)),
                ("idempotent", boolean(a.idempotent)),
                ("open_world", boolean(a.open_world)),
            ]),
        ),
    ])
}

fn map<'a, const N: usize>(entries: [(&'a str, Cel<'a>); N]) -> Cel<'a> {
    let map: HashMap<CelMapKey<'a>, Cel<'a>> =
        entries.into_iter().map(|(key, value)| (CelMapKey::from(key), value)).collect();
    Box::new(CelMap::from(map))
}

fn string(s: &str) -> Cel<'_> {
    Box::new(CelString::from(s))
}

fn boolean(b: bool) -> Cel<'static> {
    Box::new(CelBool::from(b))
}

fn strings(items: &[String]) -> Cel<'_> {
    Box::new(CelList::from(items.iter().map(|s| string(s)).collect::<Vec<_>>()))
}

/// JSON → CEL: integers become `int` (or `uint` beyond `i64`), other numbers
/// `double`.
fn json(value: &Value) -> Cel<'_> {
    match value {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Box::new(CelInt::from(i)),
            (None, Some(u)) => Box::new(CelUInt::from(u)),
            _ => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(s) => string(s),
        Value::Array(items) => Box::new(CelList::from(items.iter().map(json).collect::<Vec<_>>())),
        Value::Object(fields) => {
            let map: HashMap<CelMapKey<'_>, Cel<'_>> =
                fields.iter().map(|(key, value)| (CelMapKey::from(key.as_str()), json(value))).collect();
            Box::new(CelMap::from(map))
        }
    }
}
