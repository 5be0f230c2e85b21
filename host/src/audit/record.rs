//! The audit record and its hash chain.
//!
//! `hash = sha256(prev_hash || canonical JSON of the record without hash)`,
//! hex-encoded. Canonical JSON here is serde_json's rendering of the record as
//! a key-sorted map with no whitespace; absent optional fields are `null`
//! (or omitted, for `args` and `detail`), so a record hashes the same wherever
//! it is recomputed.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPrincipal {
    /// Subject.
    pub sub: String,
    /// Tenant.
    pub tenant: String,
}

/// What happened, before it gets its place in the chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// `tools.invoke`, `tools.confirm`, `tools.denied`, `tools.failed`, `host.start`, …
    pub event: String,
    /// The request's correlation id.
    pub correlation_id: Option<String>,
    /// The caller, once known.
    pub principal: Option<AuditPrincipal>,
    /// The tool id, when the event concerns one.
    pub tool: Option<String>,
    /// The transport a call came over (`rest`), for calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// `completed`, `pending_confirmation`, `confirmed`, `replayed`, or an error code.
    pub decision: String,
    /// HTTP status, for calls.
    pub status: Option<u16>,
    /// SHA-256 of the canonical arguments.
    pub args_sha256: Option<String>,
    /// The arguments themselves, only for tools whose manifest opts in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// Event-specific details (never secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
    /// The call's trace id (W3C, hex), when it was traced or the caller
    /// sent one: from a record to its trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// Longest string field kept in a record that is over its size cap.
const MAX_FIELD_BYTES: usize = 256;

impl AuditEvent {
    /// An event of the host itself (no request, no caller, no tool).
    pub fn host(event: &str, decision: &str, detail: Value) -> Self {
        Self { event: event.into(), decision: decision.into(), detail: Some(detail), ..Default::default() }
    }

    /// The event cut to fit `max_bytes` of JSON (a record adds ~250 bytes
    /// of `seq`, `ts` and hashes). `args` and then `detail`, whichever is
    /// over, are replaced by `{"omitted": true, "bytes", "sha256"}` of
    /// their JSON; if that is not enough, string fields are cut to
    /// 256 bytes with `…`. An event that fits is returned unchanged.
    pub fn bounded(mut self, max_bytes: usize) -> Self {
        // Most events (a completed call) have neither `args` nor `detail`:
        // their size is bounded by their strings, without serialising.
        let strings =
            [Some(&self.event), Some(&self.decision), self.correlation_id.as_ref(), self.tool.as_ref()]
                .into_iter()
                .flatten()
                .map(String::len)
                .sum::<usize>()
                + self.principal.as_ref().map_or(0, |p| p.sub.len() + p.tenant.len());
        // (JSON escapes a byte into at most 6.)
        if self.args.is_none() && self.detail.is_none() && 6 * strings + 512 <= max_bytes {
            return self;
        }
        let size = |e: &Self| serde_json::to_vec(e).map_or(usize::MAX, |v| v.len());
        if size(&self) <= max_bytes {
            return self;
        }
        for field in [&mut self.args, &mut self.detail] {
            if let Some(value) = field.as_ref() {
                let json = serde_json::to_vec(value).expect("values serialise");
                if json.len() > MAX_FIELD_BYTES {
                    *field = Some(serde_json::json!({
                        "omitted": true,
                        "bytes": json.len(),
                        "sha256": hex::encode(Sha256::digest(&json)),
                    }));
                }
            }
        }
        if size(&self) <= max_bytes {
            return self;
        }
        let clip = |s: &mut String| *s = crate::text::clip(s, MAX_FIELD_BYTES).into_owned();
        for s in [&mut self.event, &mut self.decision] {
            clip(s);
        }
        for s in [&mut self.correlation_id, &mut self.tool, &mut self.args_sha256].into_iter().flatten() {
            clip(s);
        }
        if let Some(p) = &mut self.principal {
            clip(&mut p.sub);
            clip(&mut p.tenant);
        }
        self
    }
}

/// One line of `audit-YYYYMMDD.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// UTC time, RFC 3339 with milliseconds.
    pub ts: String,
    /// What happened.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// The previous record's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

impl AuditRecord {
    /// Place `event` after `prev_hash` as record `seq`, computing its hash.
    pub fn chain(seq: u64, ts: String, event: AuditEvent, prev_hash: String) -> Self {
        let mut record = Self { seq, ts, event, prev_hash, hash: String::new() };
        record.hash = record.compute_hash();
        record
    }

    /// Chain `event` after `prev_hash` as record `seq` and append its line
    /// to `out`: the bytes of `chain(..).to_line()`, from one serialisation
    /// of the record. Returns the record's hash.
    pub fn write_chained(
        seq: u64,
        ts: String,
        event: AuditEvent,
        prev_hash: String,
        out: &mut Vec<u8>,
    ) -> String {
        let record = Self { seq, ts, event, prev_hash, hash: String::new() };
        let (mut fields, hash) = record.fields_and_hash();
        fields.insert("hash".to_owned(), Value::String(hash.clone()));
        serde_json::to_writer(&mut *out, &fields).expect("values serialise");
        out.push(b'\n');
        hash
    }

    /// The hash this record should have.
    pub fn compute_hash(&self) -> String {
        self.fields_and_hash().1
    }

    /// The record's fields without `hash`, and the hash they chain to.
    fn fields_and_hash(&self) -> (serde_json::Map<String, Value>, String) {
        let Ok(Value::Object(mut fields)) = serde_json::to_value(self) else {
            unreachable!("a record serialises to an object");
        };
        fields.remove("hash");
        let hash = hash_fields(&self.prev_hash, &fields);
        (fields, hash)
    }

    /// The line written to disk (canonical JSON with the hash, and `\n`).
    pub fn to_line(&self) -> Vec<u8> {
        let value = serde_json::to_value(self).expect("records serialise");
        let mut line = serde_json::to_vec(&value).expect("values serialise");
        line.push(b'\n');
        line
    }
}

/// The chain hash of a record given as JSON: every field but `hash`, in
/// canonical form, after `prev_hash`. Verification hashes the line as read,
/// so a field added to a line changes its hash too.
pub fn hash_line_value(prev_hash: &str, record: &Value) -> String {
    let mut fields = record.as_object().cloned().unwrap_or_default();
    fields.remove("hash");
    hash_fields(prev_hash, &fields)
}

/// SHA-256 of `prev_hash` and the canonical JSON of `fields` (no `hash`).
fn hash_fields(prev_hash: &str, fields: &serde_json::Map<String, Value>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    // Serialised straight into the hash (no canonical copy of the line).
    serde_json::to_writer(&mut hasher, fields).expect("values serialise");
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_chain_and_detect_edits() {
        let event = AuditEvent { event: "host.start".into(), decision: "ok".into(), ..Default::default() };
        let first = AuditRecord::chain(1, "2026-01-01T00:00:00.000Z".into(), event.clone(), GENESIS.into());
        let second = AuditRecord::chain(2, "2026-01-01T00:00:01.000Z".into(), event, first.hash.clone());
        assert_eq!(first.compute_hash(), first.hash);
        assert_ne!(first.hash, second.hash);
        let mut edited = second.clone();
        edited.event.decision = "changed".into();
        assert_ne!(edited.compute_hash(), second.hash);

        // Written in one pass: the same bytes and hash.
        let mut written = Vec::new();
        let hash = AuditRecord::write_chained(
            second.seq,
            second.ts.clone(),
            second.event.clone(),
            second.prev_hash.clone(),
            &mut written,
        );
        assert_eq!((hash, written), (second.hash.clone(), second.to_line()));

        // The line round-trips, with sorted keys.
        let line = second.to_line();
        let parsed: AuditRecord = serde_json::from_slice(&line).unwrap();
        assert_eq!(parsed, second);
        assert!(String::from_utf8(line).unwrap().starts_with(r#"{"args_sha256":null,"correlation_id""#));
    }

    #[test]
    fn oversized_events_are_cut_to_the_cap_with_a_digest_of_what_went() {
        let small = AuditEvent { event: "tools.invoke".into(), decision: "ok".into(), ..Default::default() };
        assert_eq!(small.clone().bounded(16 * 1024), small, "an event that fits is unchanged");
        let big = AuditEvent {
            event: "tools.denied".into(),
            tool: Some("t".repeat(100_000)),
            detail: Some(serde_json::json!({ "error": "x".repeat(1 << 20) })),
            args: Some(serde_json::json!({ "a": "y".repeat(1 << 20) })),
            ..small
        };
        let bounded = big.bounded(16 * 1024);
        let json = serde_json::to_vec(&bounded).unwrap();
        assert!(json.len() < 2 * 1024, "{} bytes", json.len());
        let detail = bounded.detail.unwrap();
        assert_eq!(detail["omitted"], true);
        assert!(detail["bytes"].as_u64().unwrap() > 1 << 20);
        assert_eq!(detail["sha256"].as_str().unwrap().len(), 64);
        assert!(bounded.tool.unwrap().ends_with('…'));
    }
}
