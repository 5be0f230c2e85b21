//! Which version of the `fastmcp:plugin` contract a component implements,
//! and, when it implements none, exactly what differs: the export it lacks,
//! the package version it was built against, an import the host does not
//! provide. Read from the component's type before anything is linked, so the
//! message names the mismatch instead of quoting a linker error.

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

/// The contract versions this host loads, oldest first.
pub const SUPPORTED_VERSIONS: [&str; 2] = ["0.1.0", "0.2.0"];

/// The package every plugin interface belongs to.
const PACKAGE: &str = "fastmcp:plugin";

/// The interfaces of the package a plugin may import.
const IMPORTABLE: [&str; 4] = ["types", "broker", "config", "log"];

/// The non-plugin packages the host links (WASI 0.2; sockets and files grant nothing).
const WASI_PACKAGES: [&str; 7] = [
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:io/",
    "wasi:random/",
    "wasi:sockets/",
    "wasi:http/",
];

/// A supported contract version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// `fastmcp:plugin@0.1.0`: `tools.invoke` only; tools cannot be checked.
    V0_1,
    /// `fastmcp:plugin@0.2.0`: `tools.declare` and `tools.invoke`.
    V0_2,
}

impl Contract {
    /// The package version, e.g. `0.2.0`.
    pub fn version(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
        }
    }

    /// The exported `tools` interface's full name.
    pub fn tools_interface(self) -> String {
        format!("{PACKAGE}/tools@{}", self.version())
    }

    /// The functions `tools` must export.
    fn tool_functions(self) -> &'static [&'static str] {
        match self {
            Contract::V0_1 => &["invoke"],
            Contract::V0_2 => &["declare", "invoke"],
        }
    }
}

/// Split `fastmcp:plugin/NAME@VERSION` into `(NAME, VERSION)`.
fn plugin_interface(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
    Some(rest.split_once('@').unwrap_or((rest, "")))
}

fn supported() -> String {
    SUPPORTED_VERSIONS.join(" and ")
}

/// The contract `component` implements, or what differs from every
/// contract the host supports.
pub fn inspect(engine: &Engine, component: &Component) -> Result<Contract, String> {
    let ty = component.component_type();
    // Imports from elsewhere are wrong whatever the version.
    for (import, _) in ty.imports(engine) {
        if plugin_interface(import).is_none() {
            check_import(import, Contract::V0_2)?;
        }
    }
    let mut tools = Vec::new();
    for (name, export) in ty.exports(engine) {
        if let Some(("tools", version)) = plugin_interface(name) {
            tools.push((name.to_owned(), version.to_owned(), export.ty));
        }
    }
    let (name, version, item) = match tools.len() {
        0 => {
            let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
            return Err(format!(
                "it does not export `{PACKAGE}/tools` (its exports: [{}]); build it for the `plugin` \
                 world of `{PACKAGE}@0.2.0` (wit/plugin.wit)",
                exports.join(", ")
            ));
        }
        1 => tools.pop().expect("one export"),
        _ => {
            let names: Vec<&str> = tools.iter().map(|(n, _, _)| n.as_str()).collect();
            return Err(format!("it exports more than one `tools` interface: [{}]", names.join(", ")));
        }
    };
    let contract = match version.as_str() {
        "0.1.0" => Contract::V0_1,
        "0.2.0" => Contract::V0_2,
        other => {
            return Err(format!(
                "it exports `{name}`: it was built against `{PACKAGE}@{other}`, and this host implements \
                 {}",
                supported()
            ));
        }
    };
    let ComponentItem::ComponentInstance(instance) = item else {
        return Err(format!("its export `{name}` is not an interface instance"));
    };
    for function in contract.tool_functions() {
        match instance.get_export(engine, function) {
            Some(e) if matches!(e.ty, ComponentItem::ComponentFunc(_)) => {}
            _ => {
                let has: Vec<&str> = instance.exports(engine).map(|(n, _)| n).collect();
                return Err(format!(
                    "its export `{name}` lacks the function `{function}` (it has: [{}])",
                    has.join(", ")
                ));
            }
        }
    }
    // Its own interfaces: at the version it exports.
    for (import, _) in ty.imports(engine) {
        if plugin_interface(import).is_some() {
            check_import(import, contract)?;
        }
    }
    Ok(contract)
}

/// An import must be one of the contract's own interfaces, at the version
/// the component exports, or a WASI 0.2 package (whose exact version the
/// linker then checks).
fn check_import(import: &str, contract: Contract) -> Result<(), String> {
    if let Some((interface, version)) = plugin_interface(import) {
        if !IMPORTABLE.contains(&interface) {
            return Err(format!(
                "it imports `{import}`, which `{PACKAGE}` does not define for plugins (importable: {})",
                IMPORTABLE.join(", ")
            ));
        }
        if version != contract.version() {
            return Err(format!(
                "it imports `{import}` but exports `{}`: build it against one version of `{PACKAGE}`",
                contract.tools_interface()
            ));
        }
        return Ok(());
    }
    if WASI_PACKAGES.iter().any(|package| import.starts_with(package)) {
        return Ok(());
    }
    Err(format!(
        "it imports `{import}`, which the host does not provide (it provides `{PACKAGE}` broker, config and \
         log, and WASI 0.2 cli, clocks, filesystem, io, random, sockets and http)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_checked_against_the_exported_version() {
        assert!(check_import("fastmcp:plugin/log@0.2.0", Contract::V0_2).is_ok());
        assert!(check_import("wasi:http/outgoing-handler@0.2.3", Contract::V0_2).is_ok());
        let mixed = check_import("fastmcp:plugin/log@0.1.0", Contract::V0_2).unwrap_err();
        assert!(mixed.contains("`fastmcp:plugin/log@0.1.0`") && mixed.contains("tools@0.2.0"), "{mixed}");
        let foreign = check_import("acme:kv/store@1.0.0", Contract::V0_1).unwrap_err();
        assert!(
            foreign.contains("`acme:kv/store@1.0.0`") && foreign.contains("does not provide"),
            "{foreign}"
        );
        let undefined = check_import("fastmcp:plugin/tools@0.2.0", Contract::V0_2).unwrap_err();
        assert!(undefined.contains("does not define"), "{undefined}");
    }
}
