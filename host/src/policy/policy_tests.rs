//! Policy tests: the data-driven tables in `tests/cases/policy/`, and the
//! load-time rejections.

use super::*;
use crate::manifest::{Manifest, ManifestBounds};
use approvals::Requirement;
use serde::Deserialize;
use std::collections::HashMap;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Every tool of the example manifests, by id.
fn example_tools() -> HashMap<String, ToolDef> {
    let bounds = ManifestBounds { max_memory_mb: 1024, max_timeout_ms: 60_000 };
    let mut tools = HashMap::new();
    for entry in std::fs::read_dir(workspace().join("manifests")).unwrap() {
        let manifest = Manifest::load(&entry.unwrap().path(), bounds).unwrap();
        tools.extend(manifest.tools.into_iter().map(|t| (t.id.clone(), t)));
    }
    tools
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    policy: PathBuf,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    principal: CasePrincipal,
    tool: String,
    args: Value,
    expect: String,
    rule: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasePrincipal {
    sub: String,
    tenant: String,
    roles: Vec<String>,
}

#[test]
fn decision_tables() {
    let tools = example_tools();
    let dir = workspace().join("tests/cases/policy");
    let mut tables = 0;
    let mut cases = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let table: Table = serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let policy = PolicySet::load(&workspace().join(&table.policy)).unwrap();
        tables += 1;
        for case in table.cases {
            let principal = Principal {
                sub: case.principal.sub,
                tenant: case.principal.tenant,
                roles: case.principal.roles,
                scopes: Vec::new(),
            };
            let tool = &tools[&case.tool];
            let decision = policy.evaluate(&principal, tool, &case.args, 1_700_000_000_000);
            let (expect, rule) = match &decision {
                Decision::Deny { rule, .. } => ("deny", Some(rule.clone())),
                Decision::Permit { confirm: Some(c), .. } => ("confirm", Some(c.rule.clone())),
                Decision::Permit { confirm: None, .. } => ("permit", None),
            };
            let context = format!("{}: `{}` got {decision:?}", path.display(), case.name);
            assert_eq!(expect, case.expect, "{context}");
            if case.rule.is_some() {
                assert_eq!(rule, case.rule, "{context}");
            }
            cases += 1;
        }
    }
    assert!(tables >= 2 && cases >= 15, "{tables} tables, {cases} cases");
}

#[test]
fn deny_reasons_come_from_the_rule() {
    let policy = PolicySet::load(&workspace().join("policies/policies.yml")).unwrap();
    let tools = example_tools();
    let principal = Principal {
        sub: "a".into(),
        tenant: "public".into(),
        roles: vec!["finance-write".into()],
        scopes: vec![],
    };
    let args = serde_json::json!({"name": "X", "budget": 60000, "startDate": "2025-01-01"});
    let Decision::Deny { rule, reason } = policy.evaluate(&principal, &tools["ads:createCampaign"], &args, 0)
    else {
        panic!("expected a denial")
    };
    assert_eq!(rule, "budget-cap");
    assert_eq!(reason, "budget above the per-campaign cap of 50000");
}

#[test]
fn request_time_is_a_timestamp() {
    let text = r#"
version: 1
roles: { r: { tools: ["*"] } }
rules:
  - id: office-hours
    tools: ["*"]
    when: "request.time < timestamp('2024-01-01T00:00:00Z')"
    effect: deny
"#;
    let policy = PolicySet::parse(Path::new("p.yml"), text).unwrap();
    let tools = example_tools();
    let principal =
        Principal { sub: "a".into(), tenant: "t".into(), roles: vec!["r".into()], scopes: vec![] };
    let echo = &tools["util:echo"];
    let before = policy.evaluate(&principal, echo, &serde_json::json!({}), 1_600_000_000_000);
    let after = policy.evaluate(&principal, echo, &serde_json::json!({}), 1_800_000_000_000);
    assert!(matches!(before, Decision::Deny { .. }), "{before:?}");
    assert_eq!(after, Decision::Permit { confirm: None, approval: None });
}

#[test]
fn comprehensions_may_bind_their_own_variables() {
    let text = r#"
version: 1
rules:
  - id: r
    tools: ["*"]
    when: "principal.roles.exists(role, role.startsWith('ops-'))"
    effect: confirm
"#;
    PolicySet::parse(Path::new("p.yml"), text).unwrap();
}

fn rejected(text: &str, expected: &str) {
    let error = PolicySet::parse(Path::new("policies/p.yml"), text).err().expect("rejected").to_string();
    assert!(error.contains(expected), "expected `{expected}` in `{error}`");
    assert!(error.starts_with("policies/p.yml: "), "{error}");
}

#[test]
fn bad_files_and_rules_are_rejected_naming_the_rule() {
    rejected(
        "version: 1\nrules: [{ id: r1, tools: ['*'], when: 'args.budget >', effect: deny }]",
        "rule `r1`: invalid CEL",
    );
    rejected(
        "version: 1\nrules: [{ id: r2, tools: ['*'], when: 'secrets.key == 1', effect: deny }]",
        "rule `r2`: unknown variable `secrets`",
    );
    rejected("version: 1\nrules: [{ id: r3, tools: [], effect: deny }]", "rule `r3`");
    rejected(
        "version: 1\nrules: [{ id: d, tools: ['*'], effect: deny }, { id: d, tools: ['*'], effect: deny }]",
        "rule `d`: rule ids must be unique",
    );
    rejected("version: 1\nrules: [{ id: r4, tools: ['*'], effect: maybe }]", "unknown variant `maybe`");
    rejected("version: 2\n", "version: 2 is not supported");
    rejected("version: 1\nroles: { a: { tool: ['*'] } }\n", "unknown field `tool`");
    rejected("version: [", "p.yml");
}

#[test]
fn a_missing_file_denies_everything() {
    let policy = PolicySet::load(Path::new("/nonexistent/policies.yml")).unwrap();
    let tools = example_tools();
    let principal = Principal {
        sub: "a".into(),
        tenant: "t".into(),
        roles: vec!["finance-write".into()],
        scopes: vec![],
    };
    assert!(matches!(
        policy.evaluate(&principal, &tools["util:echo"], &serde_json::json!({}), 0),
        Decision::Deny { .. }
    ));
}

#[test]
fn glob_patterns() {
    for (pattern, id, expected) in [
        ("*", "ads:createCampaign", true),
        ("ads:*", "ads:createCampaign", true),
        ("ads:*", "adsx:createCampaign", false),
        ("*:echo", "util:echo", true),
        ("util:echo", "util:echo", true),
        ("util:echo", "util:echoes", false),
        ("u*l:*h*", "util:sha256", true),
    ] {
        assert_eq!(Pattern(pattern.into()).matches(id), expected, "{pattern} vs {id}");
    }
}

fn principal(sub: &str, tenant: &str, roles: &[&str]) -> Principal {
    Principal {
        sub: sub.into(),
        tenant: tenant.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        scopes: vec![],
    }
}

const APPROVALS: &str = r#"
version: 1
roles: { buyer: { tools: ["ads:*"] } }
approvals:
  - name: large-budget
    tools: ["ads:createCampaign"]
    when: "args.budget > 10000"
    approvers: { roles: [finance-approver], subjects: [cfo] }
    quorum: 2
    ttl: 24h
    hint: "Campaigns over 10k need two finance approvers"
  - name: any-campaign
    tools: ["ads:*"]
    approvers: { scopes: [ads.approve] }
    ttl: 15m
"#;

#[test]
fn the_first_matching_approval_rule_applies() {
    let policy = PolicySet::parse(Path::new("p.yml"), APPROVALS).unwrap();
    assert_eq!(policy.approval_count(), 2);
    let tools = example_tools();
    let buyer = principal("ann", "acme", &["buyer"]);
    let create = &tools["ads:createCampaign"];
    let decide = |budget: u64| {
        let args = serde_json::json!({"name": "x", "budget": budget});
        match policy.evaluate(&buyer, create, &args, 0) {
            Decision::Permit { approval, .. } => approval,
            other => panic!("{other:?}"),
        }
    };
    let large = decide(50_000).expect("needs approval");
    assert_eq!((large.rule.as_str(), large.quorum, large.ttl_s), ("large-budget", 2, 86_400));
    let small = decide(500).expect("the catch-all rule");
    assert_eq!((small.rule.as_str(), small.quorum, small.ttl_s), ("any-campaign", 1, 900));
    // Who may decide: an approver of the requester's tenant, never the requester.
    let finance = principal("fin", "acme", &["finance-approver"]);
    assert!(large.may_decide(&finance, ("ann", "acme")));
    assert!(!large.may_decide(&principal("fin", "other", &["finance-approver"]), ("ann", "acme")));
    assert!(large.may_decide(&principal("cfo", "acme", &[]), ("ann", "acme")));
    assert!(!large.may_decide(&principal("ann", "acme", &["finance-approver"]), ("ann", "acme")));
    assert!(!large.may_decide(&buyer, ("bob", "acme")));
    let any_tenant = Requirement { any_tenant: true, ..large.clone() };
    assert!(any_tenant.may_decide(&principal("fin", "other", &["finance-approver"]), ("ann", "acme")));
}

#[test]
fn bad_approval_rules_are_rejected_naming_the_rule() {
    let rule = |fields: &str| format!("version: 1\napprovals: [{{ {fields} }}]");
    rejected(
        &rule("name: a, tools: ['*'], approvers: { roles: [x] }, ttl: 1h, quorum: 0"),
        "approvals `a`: quorum",
    );
    rejected(&rule("name: a, tools: ['*'], approvers: { roles: [x] }, ttl: 1h, quorum: 11"), "quorum");
    rejected(&rule("name: b, tools: ['*'], approvers: {}, ttl: 1h"), "approvals `b`: approvers");
    rejected(&rule("name: c, tools: [], approvers: { roles: [x] }, ttl: 1h"), "approvals `c`: tools");
    rejected(&rule("name: d, tools: ['*'], approvers: { roles: [x] }, ttl: 10s"), "approvals `d`: ttl");
    rejected(&rule("name: e, tools: ['*'], approvers: { roles: [x] }, ttl: 1y"), "approvals `e`: ttl");
    rejected(
        &rule("name: f, tools: ['*'], approvers: { roles: [x] }, ttl: 1h, when: 'secrets.x'"),
        "approvals `f`: when",
    );
    rejected(&rule("name: 'g h', tools: ['*'], approvers: { roles: [x] }, ttl: 1h"), "name:");
    rejected(&rule("name: i, tools: ['*'], approvers: { role: [x] }, ttl: 1h"), "unknown field `role`");
    rejected(
        "version: 1\napprovals: [{ name: j, tools: ['*'], approvers: { roles: [x] }, ttl: 1h }, { name: j, tools: ['*'], approvers: { roles: [x] }, ttl: 1h }]",
        "approvals `j`: name: approval rule names must be unique",
    );
}
