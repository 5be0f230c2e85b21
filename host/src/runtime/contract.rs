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
    let imports: Vec<&str> = ty.imports(engine).map(|(name, _)| name).collect();
    let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
    let contract = by_names(&imports, &exports)?;
    let name = contract.tools_interface();
    let Some(ComponentItem::ComponentInstance(instance)) = ty.get_export(engine, &name).map(|e| e.ty) else {
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
    Ok(contract)
}

/// The contract a component's bytes claim by the names of what they import
/// and export, read from the top-level sections without compiling anything
/// (nested modules are skipped, so an 18 MB component takes well under a
/// millisecond): a component for another world is named before the
/// compile, which [`inspect`] then completes.
pub fn precheck(bytes: &[u8]) -> Result<Contract, Precheck> {
    let (imports, exports) = top_level_names(bytes).map_err(Precheck::Unreadable)?;
    let imports: Vec<&str> = imports.iter().map(String::as_str).collect();
    let exports: Vec<&str> = exports.iter().map(String::as_str).collect();
    by_names(&imports, &exports).map_err(Precheck::Mismatch)
}

/// Why [`precheck`] refused a component.
#[derive(Debug, PartialEq, Eq)]
pub enum Precheck {
    /// The bytes are not a component (what is wrong with them).
    Unreadable(String),
    /// A component for another world (what differs).
    Mismatch(String),
}

/// The names a component imports and exports at its top level.
fn top_level_names(mut bytes: &[u8]) -> Result<(Vec<String>, Vec<String>), String> {
    use wasmparser::{Chunk, Encoding, Parser, Payload};
    let unreadable = |e: wasmparser::BinaryReaderError| e.to_string();
    let mut parser = Parser::new(0);
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    loop {
        let Chunk::Parsed { consumed, payload } = parser.parse(bytes, true).map_err(unreadable)? else {
            return Err("it ends early".into());
        };
        bytes = &bytes[consumed..];
        match payload {
            Payload::Version { encoding: Encoding::Module, .. } => {
                return Err("it is a core module: build it for `wasm32-wasip2` (or make a component of it \
                            with `wasm-tools component new`)"
                    .into());
            }
            Payload::ComponentImportSection(section) => {
                for import in section {
                    imports.push(import.map_err(unreadable)?.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(section) => {
                for export in section {
                    exports.push(export.map_err(unreadable)?.name.name.to_owned());
                }
            }
            // What nested modules and components hold is the compile's business.
            Payload::ModuleSection { unchecked_range, .. }
            | Payload::ComponentSection { unchecked_range, .. } => {
                bytes = bytes.get(unchecked_range.len()..).ok_or("it ends early")?;
            }
            Payload::End(_) => return Ok((imports, exports)),
            _ => {}
        }
    }
}

/// The contract named by a component's imports and exports, or what differs.
fn by_names(imports: &[&str], exports: &[&str]) -> Result<Contract, String> {
    // Imports from elsewhere are wrong whatever the version.
    for import in imports.iter().filter(|i| plugin_interface(i).is_none()) {
        check_import(import, Contract::V0_2)?;
    }
    let tools: Vec<(&str, &str)> = exports
        .iter()
        .filter_map(|name| match plugin_interface(name) {
            Some(("tools", version)) => Some((*name, version)),
            _ => None,
        })
        .collect();
    let (name, version) = match tools[..] {
        [] => {
            return Err(format!(
                "it does not export `{PACKAGE}/tools` (its exports: [{}]); build it for the `plugin` \
                 world of `{PACKAGE}@0.2.0` (wit/plugin.wit)",
                exports.join(", ")
            ));
        }
        [one] => one,
        _ => {
            let names: Vec<&str> = tools.iter().map(|(n, _)| *n).collect();
            return Err(format!("it exports more than one `tools` interface: [{}]", names.join(", ")));
        }
    };
    let contract = match version {
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
    // Its own interfaces: at the version it exports.
    for import in imports.iter().filter(|i| plugin_interface(i).is_some()) {
        check_import(import, contract)?;
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

    /// A component importing `imports` (empty instances) and exporting an
    /// empty instance under each of `exports`, with a core module inside
    /// (which the precheck skips).
    fn component(imports: &[&str], exports: &[&str]) -> Vec<u8> {
        let mut text = String::from("(component (core module $m (func (export \"f\") nop))\n");
        for import in imports {
            text.push_str(&format!("(import \"{import}\" (instance))\n"));
        }
        text.push_str("(instance $empty)\n");
        for export in exports {
            text.push_str(&format!("(export \"{export}\" (instance $empty))\n"));
        }
        text.push(')');
        wat::parse_str(&text).unwrap()
    }

    #[test]
    fn the_precheck_reads_names_without_compiling() {
        let plugin = component(
            &["fastmcp:plugin/log@0.2.0", "wasi:http/outgoing-handler@0.2.12"],
            &["fastmcp:plugin/tools@0.2.0"],
        );
        assert_eq!(precheck(&plugin), Ok(Contract::V0_2));
        let mismatch = |bytes: &[u8]| match precheck(bytes) {
            Err(Precheck::Mismatch(message)) => message,
            other => panic!("{other:?}"),
        };
        let unreadable = |bytes: &[u8]| match precheck(bytes) {
            Err(Precheck::Unreadable(message)) => message,
            other => panic!("{other:?}"),
        };
        let old = mismatch(&component(&[], &["fastmcp:plugin/tools@0.3.0"]));
        assert!(old.contains("built against `fastmcp:plugin@0.3.0`"), "{old}");
        let foreign = component(&["acme:kv/store@1.0.0"], &["fastmcp:plugin/tools@0.2.0"]);
        assert!(mismatch(&foreign).contains("`acme:kv/store@1.0.0`"));
        let none = component(&[], &["wasi:http/incoming-handler@0.2.0"]);
        assert!(mismatch(&none).contains("does not export `fastmcp:plugin/tools`"));
        assert!(unreadable(&wat::parse_str("(module)").unwrap()).contains("core module"));
        assert!(!unreadable(&plugin[..plugin.len() - 3]).is_empty());
        assert!(!unreadable(b"not wasm").is_empty());
    }

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
