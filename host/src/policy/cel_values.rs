//! The variables a CEL rule sees: `principal`, `tool`, `args`, `request`,
//! `credential`.

use crate::manifest::ToolDef;
use crate::principal::Principal;
use cel::{Context, Env, Value as Cel};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// A context for evaluating rules about one call.
pub fn context<'a>(
    env: &Arc<Env>,
    principal: &Principal,
    tool: &ToolDef,
    args: &Value,
    now_unix_ms: i64,
    credential_kind: &str,
) -> Context<'a, 'a> {
    let mut context = Context::with_env(env.clone());
    context.add_variable_from_value("credential", map([("kind", credential_kind.into())]));
    context.add_variable_from_value(
        "principal",
        map([
            ("sub", principal.sub.as_str().into()),
            ("tenant", principal.tenant.as_str().into()),
            ("roles", strings(&principal.roles)),
            ("scopes", strings(&principal.scopes)),
        ]),
    );
    let (plugin, name) = tool.id.split_once(':').unwrap_or(("", &tool.id));
    let a = tool.annotations;
    context.add_variable_from_value(
        "tool",
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
        ]),
    );
    context.add_variable_from_value("args", json(args));
    let time = chrono::DateTime::from_timestamp_millis(now_unix_ms).unwrap_or_default().fixed_offset();
    context.add_variable_from_value("request", map([("time", Cel::Timestamp(time))]));
    context
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
