//! Digests of a call's arguments: what the audit trail, action tokens and
//! idempotency keys bind to.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// SHA-256 of the canonical arguments: keys sorted (serde_json's default
/// `Map`), no whitespace, and numbers with an integral value written as
/// integers (`1200.0` and `1200` are the same argument, as in RFC 8785).
/// Written straight into the hash: nothing is copied or rebuilt.
pub fn args_digest(args: &Map<String, Value>) -> String {
    let mut hasher = Sha256::new();
    write_object(&mut hasher, args);
    hex::encode(hasher.finalize())
}

fn write_object(out: &mut Sha256, fields: &Map<String, Value>) {
    out.update(b"{");
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.update(b",");
        }
        serde_json::to_writer(&mut *out, key).expect("a hash takes every byte");
        out.update(b":");
        write_value(out, value);
    }
    out.update(b"}");
}

fn write_value(out: &mut Sha256, value: &Value) {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match value {
        Value::Object(fields) => write_object(out, fields),
        Value::Array(items) => {
            out.update(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.update(b",");
                }
                write_value(out, item);
            }
            out.update(b"]");
        }
        // Integral floats (within the exactly representable range) as integers.
        Value::Number(n) if n.as_f64().is_some_and(|f| n.is_f64() && f.fract() == 0.0 && f.abs() < EXACT) => {
            let integral = n.as_f64().expect("checked") as i64;
            serde_json::to_writer(&mut *out, &integral).expect("a hash takes every byte");
        }
        other => serde_json::to_writer(&mut *out, other).expect("a hash takes every byte"),
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
    fn the_digest_is_the_hash_of_the_canonical_serialisation() {
        let text = r#"{"b":[1,2.5,"x\u0001"],"a":{"z":null,"y":true},"c":-3.0}"#;
        let canonical = r#"{"a":{"y":true,"z":null},"b":[1,2.5,"x\u0001"],"c":-3}"#;
        use sha2::{Digest, Sha256};
        assert_eq!(digest(text), hex::encode(Sha256::digest(canonical.as_bytes())));
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
