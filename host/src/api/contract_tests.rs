//! The contract stated once: the error table in `docs/api.md`, the OpenAPI
//! document and [`ApiError::class`] must list the same codes (and statuses).

use super::openapi::ApiDoc;
use crate::error::{MCP_ONLY_CODES, every_code, every_variant};
use std::collections::BTreeSet;
use utoipa::OpenApi;

const API_DOC: &str = include_str!("../../../docs/api.md");
const README: &str = include_str!("../../../README.md");

/// Backticked `snake_case` words in `text`.
fn backticked_codes(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .map(str::to_owned)
        .collect()
}

/// `(status, code)` rows of the Errors table of `docs/api.md`.
fn documented() -> BTreeSet<(u16, String)> {
    let errors = API_DOC.split("## Errors").nth(1).expect("docs/api.md has an Errors section");
    errors
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let status = cells.get(1)?.parse::<u16>().ok()?;
            let code = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((status, code.to_owned()))
        })
        .collect()
}

#[test]
fn the_error_table_lists_every_code_with_its_status_and_nothing_else() {
    let implemented: BTreeSet<(u16, String)> =
        every_variant().iter().map(|e| (e.status().as_u16(), e.code().to_owned())).collect();
    let documented = documented();
    let missing: Vec<_> = implemented.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&implemented).collect();
    assert!(missing.is_empty(), "codes missing from docs/api.md: {missing:?}");
    assert!(stale.is_empty(), "docs/api.md lists codes the host does not have: {stale:?}");
}

#[test]
fn the_openapi_document_names_every_code_and_no_other() {
    let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
    let mut described = BTreeSet::new();
    for path in document["paths"].as_object().unwrap().values() {
        for operation in path.as_object().unwrap().values() {
            for response in operation["responses"].as_object().into_iter().flat_map(|r| r.values()) {
                described.extend(backticked_codes(response["description"].as_str().unwrap_or("")));
            }
        }
    }
    let codes: BTreeSet<String> =
        every_code().into_iter().filter(|c| !MCP_ONLY_CODES.contains(c)).map(str::to_owned).collect();
    let missing: Vec<_> = codes.difference(&described).collect();
    // Each code is described under the status the host answers it with.
    for path in document["paths"].as_object().unwrap().values() {
        for operation in path.as_object().unwrap().values() {
            for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                for code in backticked_codes(response["description"].as_str().unwrap_or("")) {
                    let answered = every_variant().into_iter().find(|e| e.code() == code).map(|e| e.status());
                    if let Some(answered) = answered {
                        assert_eq!(answered.as_u16().to_string(), *status, "`{code}` under {status}");
                    }
                }
            }
        }
    }
    let unknown: Vec<_> = described.difference(&codes).collect();
    assert!(missing.is_empty(), "codes the OpenAPI document does not name: {missing:?}");
    assert!(unknown.is_empty(), "the OpenAPI document names codes the host does not have: {unknown:?}");
}

#[test]
fn the_readme_links_only_to_files_in_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for (i, link) in README.split("](").skip(1).enumerate() {
        let target = link.split(')').next().unwrap();
        if target.starts_with('#') || target.starts_with("http") {
            assert!(!target.starts_with("http"), "link {i} leaves the repository: {target}");
            continue;
        }
        let file = target.split('#').next().unwrap();
        assert!(!file.starts_with(".."), "link {i} leaves the repository: {target}");
        assert!(root.join(file).exists(), "link {i} names a missing file: {target}");
    }
}
