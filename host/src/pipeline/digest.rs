//! Digests of a call's arguments: what the audit trail, action tokens and
//! idempotency keys bind to.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// SHA-256 of the canonical arguments: keys sorted (serde_json's default
/// `Map`), no whitespace, and numbers with an integral value written as
/// integers (`1200.0` and `1200` are the same argument, as in RFC 8785).
pub fn args_digest(args: &Map<String, Value>) -> String {
    let canonical: Map<String, Value> = args.iter().map(|(k, v)| (k.clone(), canonical_numbers(v))).collect();
    let canonical = serde_json::to_vec(&canonical).expect("a JSON map always serialises");
    hex::encode(Sha256::digest(&canonical))
}

/// Integral floats (within the exactly representable range) as integers.
fn canonical_numbers(value: &Value) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match value {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < EXACT => Value::from(f as i64),
            _ => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(canonical_numbers).collect()),
        Value::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), canonical_numbers(v))).collect())
        }
        other => other.clone(),
    }
}

/// What identifies a request under an idempotency key: its arguments and,
/// on confirm, its action token.
pub(super) fn request_fingerprint(args_sha256: &str, action_token: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(args_sha256.as_bytes());
    hasher.update([0]);
    hasher.update(action_token.unwrap_or("").as_bytes());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::args_digest;
    use serde_json::{Map, Value};

    fn digest(text: &str) -> String {
        args_digest(&serde_json::from_str::<Map<String, Value>>(text).unwrap())
    }

    #[test]
    fn the_digest_ignores_key_order_whitespace_and_integral_float_spelling() {
        let base = digest(r#"{"name":"X","budget":1200,"nested":{"b":[1,2.0],"a":null}}"#);
        assert_eq!(
            base,
            digest(r#"{ "nested": {"a": null, "b": [1.0, 2]}, "budget": 1200.0, "name": "X" }"#)
        );
        assert_ne!(base, digest(r#"{"name":"X","budget":1200.5,"nested":{"b":[1,2],"a":null}}"#));
        assert_ne!(base, digest(r#"{"name":"X","budget":"1200","nested":{"b":[1,2],"a":null}}"#));
    }
}
