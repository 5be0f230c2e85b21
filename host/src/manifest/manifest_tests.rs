//! Manifest validation: each rejection names the file, the field and why.

use super::*;

const BOUNDS: ManifestBounds = ManifestBounds { max_memory_mb: 1024, max_timeout_ms: 60_000 };

const GOOD: &str = r#"
plugin: demo
version: 1.0.0
component: plugins/demo/demo.wasm
limits: { memory_mb: 32, timeout_ms: 1500 }
tools:
  - name: greet
    description: Say hello
    input_schema:
      type: object
      required: [name]
      properties: { name: { type: string, minLength: 1 } }
      additionalProperties: false
    annotations: { read_only: true }
"#;

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(Path::new("manifests/demo.yaml"), text, BOUNDS)
}

#[test]
fn accepts_a_good_manifest() {
    let m = parse(GOOD).unwrap();
    assert_eq!(m.plugin, "demo");
    assert_eq!(m.memory_bytes, 32 << 20);
    assert_eq!(m.timeout_ms, 1500);
    assert_eq!(m.tools[0].id, "demo:greet");
    assert!(m.tools[0].annotations.read_only);
}

#[test]
fn defaults_limits() {
    let m = parse(&GOOD.replace("limits: { memory_mb: 32, timeout_ms: 1500 }\n", "")).unwrap();
    assert_eq!(m.memory_bytes, 64 << 20);
    assert_eq!(m.timeout_ms, 5000);
}

#[test]
fn validates_arguments_with_paths() {
    let m = parse(GOOD).unwrap();
    let tool = &m.tools[0];
    assert!(tool.validate(&serde_json::json!({"name": "Ada"})).is_ok());
    let errors = tool.validate(&serde_json::json!({"name": "", "extra": 1})).unwrap_err();
    assert!(errors.iter().any(|e| e.path == "/name"), "{errors:?}");
    assert!(errors.iter().any(|e| e.path.is_empty()), "{errors:?}");
}

fn rejected(text: &str, field: &str, reason_part: &str) {
    let err = parse(text).unwrap_err();
    assert_eq!(err.file, Path::new("manifests/demo.yaml"));
    assert_eq!(err.field, field, "{err}");
    assert!(err.reason.contains(reason_part), "{err}");
}

#[test]
fn rejects_unknown_top_level_field_with_line() {
    rejected(&format!("{GOOD}colour: blue\n"), "colour", "unknown field `colour`");
    assert!(parse(&format!("{GOOD}colour: blue\n")).unwrap_err().reason.contains("line"));
}

#[test]
fn rejects_unknown_nested_field() {
    rejected(
        &GOOD.replace("read_only: true", "readonly: true"),
        "tools[0].annotations.readonly",
        "unknown field",
    );
}

#[test]
fn rejects_bad_yaml() {
    assert!(parse("plugin: [unclosed").is_err());
}

#[test]
fn rejects_bad_names_and_limits() {
    rejected(&GOOD.replace("plugin: demo", "plugin: Demo!"), "plugin", "Demo!");
    rejected(&GOOD.replace("name: greet", "name: 'has space'"), "tools[0].name", "has space");
    rejected(&GOOD.replace("memory_mb: 32", "memory_mb: 4096"), "limits.memory_mb", "4096");
    rejected(&GOOD.replace("timeout_ms: 1500", "timeout_ms: 0"), "limits.timeout_ms", "0");
}

#[test]
fn plugin_names_are_safe_as_paths_and_namespaces() {
    // `fastmcp plugin new` uses the same rule before making `plugins/NAME/`.
    assert!(super::is_plugin_name("hello") && super::is_plugin_name("a1_b-c"));
    for bad in ["Hello", "1a", "", "../x", "a/b", "a.b", &"a".repeat(65)] {
        assert!(!super::is_plugin_name(bad), "{bad}");
    }
}

#[test]
fn rejects_duplicate_tools() {
    let dup = format!("{GOOD}  - name: greet\n    input_schema: {{ type: object }}\n");
    rejected(&dup, "tools[1].name", "duplicate");
}

#[test]
fn rejects_bad_schemas() {
    rejected(
        &GOOD.replace("type: object\n      required", "type: array\n      required"),
        "tools[0].input_schema",
        "object",
    );
    rejected(
        &GOOD.replace("type: string, minLength", "type: strng, minLength"),
        "tools[0].input_schema/properties/name/type",
        "\"strng\" is not valid under any of the schemas listed in the 'anyOf' keyword",
    );
    // Named at the pointer of the offending keyword inside the schema.
    rejected(
        &GOOD.replace("minLength: 1", "minLength: -3"),
        "tools[0].input_schema/properties/name/minLength",
        "invalid JSON Schema",
    );
}

#[test]
fn rejects_missing_required_field() {
    rejected(&GOOD.replace("version: 1.0.0\n", ""), "-", "missing field `version`");
}

/// GOOD with network, credentials and config sections inserted before `tools:`.
fn with_egress(sections: &str) -> String {
    GOOD.replace("tools:\n", &format!("{sections}tools:\n"))
}

#[test]
fn accepts_network_grants_and_config() {
    let m = parse(&with_egress(
        "config: { api_url: \"https://ads.example.com\" }\nnetwork: { allow: [\"https://ads.example.com\", \"http://127.0.0.1:*\"] }\ncredentials:\n  - provider: ads-api\n    scopes: [b.write, a.read, a.read]\n    inject: { host: ads.example.com, header: Authorization }\n  - provider: maps\n",
    ))
    .unwrap();
    assert_eq!(m.allow.len(), 2);
    assert_eq!(m.grants[0].scopes, ["a.read", "b.write"], "sorted and unique");
    let inject = m.grants[0].inject.as_ref().unwrap();
    assert_eq!(inject.header, http::header::AUTHORIZATION);
    assert!(inject.port.is_none());
    assert!(m.grants[1].inject.is_none());
    assert_eq!(m.config["api_url"], "https://ads.example.com");
}

#[test]
fn rejects_bad_network_grants_and_config() {
    for (sections, field, reason) in [
        ("network: { allow: [\"ads.example.com\"] }\n", "network.allow[0]", "scheme://host"),
        ("network: { allow: [\"https://ads.example.com/v1\"] }\n", "network.allow[0]", "no path"),
        ("network: { allow: [\"gopher://x.example.com\"] }\n", "network.allow[0]", "http or https"),
        (
            "credentials:\n  - provider: a\n    inject: { host: api.example.com, header: authorization }\n",
            "credentials[0].inject.host",
            "not reachable under network.allow",
        ),
        (
            "network: { allow: [\"https://api.example.com\"] }\ncredentials:\n  - provider: a\n    inject: { host: \"api.example.com:8443\", header: authorization }\n",
            "credentials[0].inject.host",
            "not reachable",
        ),
        (
            "network: { allow: [\"https://api.example.com\"] }\ncredentials:\n  - provider: a\n    inject: { host: api.example.com, header: host }\n",
            "credentials[0].inject.header",
            "cannot carry a credential",
        ),
        ("credentials:\n  - provider: a\n  - provider: a\n", "credentials[1].provider", "granted twice"),
        (
            "credentials:\n  - provider: a\n    scopes: [\"two words\"]\n",
            "credentials[0].scopes",
            "not a scope",
        ),
        ("credentials:\n  - provider: a\n    token: secret\n", "credentials[0]", "unknown field"),
        ("config: { \"bad key\": x }\n", "config.bad key", "keys are"),
    ] {
        let error = parse(&with_egress(sections)).unwrap_err();
        assert!(error.field.starts_with(field), "{sections}: {error}");
        assert!(error.reason.contains(reason), "{sections}: {error}");
    }
    let long = format!("config: {{ big: \"{}\" }}\n", "x".repeat(5000));
    assert_eq!(parse(&with_egress(&long)).unwrap_err().field, "config.big");
}
