//! Reading a configuration from its three sources — the config file, the
//! environment, the flags — over the defaults, remembering where each value
//! came from; and the two renderings of the table, `config print`'s and the
//! README's.

use super::{HostConfig, Setting, settings};
use anyhow::{Context, bail};
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The config file read when none is named: `fastmcp.yaml` under the root.
pub const DEFAULT_CONFIG_FILE: &str = "fastmcp.yaml";
/// The environment variable naming the config file (like `--config`).
pub const CONFIG_ENV: &str = "FASTMCP_CONFIG";
/// Largest config file read, in bytes.
const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Environment variables still read under an old name: (old, setting key).
const DEPRECATED_ENV: &[(&str, &str)] = &[("FASTMCP_PROVIDERS", "broker.providers_file")];

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The stated default.
    Default,
    /// The config file.
    File,
    /// An environment variable.
    Env(String),
    /// A flag.
    Flag(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File => f.write_str("file"),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Flag(flag) => write!(f, "flag --{flag}"),
        }
    }
}

/// A configuration read from its sources, validated.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: HostConfig,
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    /// Where each setting's value came from, by key.
    pub sources: BTreeMap<String, Source>,
    /// What the operator should hear about (deprecated names).
    pub warnings: Vec<String>,
}

/// Read the configuration for `root`: defaults, then the config file
/// (`file`, else `$FASTMCP_CONFIG`, else `ROOT/fastmcp.yaml` when it
/// exists), then the environment (`env` looks a variable up), then `flags`
/// (setting key and value as written). Then [`HostConfig::validate`].
pub fn load(
    root: &Path,
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    flags: &[(String, String)],
) -> anyhow::Result<Loaded> {
    let table = settings();
    let mut config = HostConfig::for_root(root);
    let mut sources: BTreeMap<String, Source> =
        table.iter().map(|s| (s.key.clone(), Source::Default)).collect();
    let mut warnings = Vec::new();

    let file = match file.map(Path::to_path_buf).or_else(|| env(CONFIG_ENV).map(PathBuf::from)) {
        Some(named) => Some(named),
        None => Some(root.join(DEFAULT_CONFIG_FILE)).filter(|f| f.is_file()),
    };
    if let Some(path) = &file {
        for (key, raw) in read_file(path, &table)? {
            let setting = table.iter().find(|s| s.key == key).expect("read_file returns known keys");
            setting.set(&mut config, &raw).map_err(|e| anyhow::anyhow!("{}: {key}: {e}", path.display()))?;
            sources.insert(key, Source::File);
        }
    }

    for (old, key) in DEPRECATED_ENV {
        let setting = table.iter().find(|s| s.key == *key).expect("deprecated names name settings");
        if let Some(raw) = env(old).filter(|_| env(&setting.env).is_none()) {
            warnings.push(format!("{old} is deprecated: use {}", setting.env));
            setting.set(&mut config, &raw).map_err(|e| anyhow::anyhow!("{old}: {e}"))?;
            sources.insert(key.to_string(), Source::Env((*old).to_owned()));
        }
    }
    for setting in &table {
        let Some(raw) = env(&setting.env) else { continue };
        let raw = if setting.negated {
            negate(&raw).map_err(|e| anyhow::anyhow!("{}: {e}", setting.env))?
        } else {
            raw
        };
        setting.set(&mut config, &raw).map_err(|e| anyhow::anyhow!("{}: {e}", setting.env))?;
        sources.insert(setting.key.clone(), Source::Env(setting.env.clone()));
    }

    for (key, raw) in flags {
        let setting = table.iter().find(|s| &s.key == key).with_context(|| format!("no setting {key}"))?;
        setting.set(&mut config, raw).map_err(|e| anyhow::anyhow!("--{}: {e}", setting.flag))?;
        sources.insert(key.clone(), Source::Flag(setting.flag.clone()));
    }

    config.validate()?;
    Ok(Loaded { config, file, sources, warnings })
}

/// A negated flag's or variable's value as the setting's (`--no-watch`).
fn negate(raw: &str) -> Result<String, String> {
    use super::codec::{Codec, Flag};
    <Flag as Codec<bool>>::parse(raw).map(|on| (!on).to_string())
}

/// The settings a config file sets, as (key, value as written); unknown
/// sections and keys are errors naming the file and the key path.
fn read_file(path: &Path, table: &[Setting]) -> anyhow::Result<Vec<(String, String)>> {
    let size =
        std::fs::metadata(path).with_context(|| format!("reading the config file {}", path.display()))?.len();
    if size > MAX_CONFIG_BYTES {
        bail!("{}: {size} bytes; a config file may have at most {MAX_CONFIG_BYTES}", path.display());
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    let document: Value =
        serde_yaml_ng::from_str(&text).with_context(|| format!("{}: not valid YAML", path.display()))?;
    let at = |key: &str, what: &str| anyhow::anyhow!("{}: {key}: {what}", path.display());
    let sections = match document {
        Value::Null => return Ok(Vec::new()),
        Value::Mapping(sections) => sections,
        _ => bail!("{}: expected a mapping of sections (server:, runtime:, …)", path.display()),
    };
    let mut values = Vec::new();
    for (section, entries) in sections {
        let section = section.as_str().ok_or_else(|| at("(top level)", "section names are text"))?.to_owned();
        let entries = match entries {
            Value::Mapping(entries) => entries,
            Value::Null => continue,
            _ => return Err(at(&section, "expected a mapping of settings")),
        };
        if !table.iter().any(|s| s.key.starts_with(&format!("{section}."))) {
            return Err(at(&section, &format!("unknown section (known: {})", section_names(table))));
        }
        for (name, value) in entries {
            let name = name.as_str().ok_or_else(|| at(&section, "setting names are text"))?;
            let key = format!("{section}.{name}");
            if !table.iter().any(|s| s.key == key) {
                return Err(at(
                    &key,
                    &format!("unknown setting (known in {section}: {})", names_in(table, &section)),
                ));
            }
            values.push((key.clone(), scalar(value).map_err(|e| at(&key, &e))?));
        }
    }
    Ok(values)
}

/// A YAML value as written on a command line (lists comma-separated).
fn scalar(value: Value) -> Result<String, String> {
    match value {
        Value::Null => Ok(String::new()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) => Ok(s),
        Value::Sequence(items) => {
            let items = items.into_iter().map(scalar).collect::<Result<Vec<_>, _>>()?;
            if items.iter().any(|i| i.contains(',')) {
                return Err("list items may not contain commas".into());
            }
            Ok(items.join(","))
        }
        Value::Mapping(_) | Value::Tagged(_) => Err("expected a value, not a mapping".into()),
    }
}

fn section_names(table: &[Setting]) -> String {
    let mut names: Vec<&str> = table.iter().map(|s| s.key.split('.').next().unwrap_or("")).collect();
    names.dedup();
    names.join(", ")
}

fn names_in(table: &[Setting], section: &str) -> String {
    let prefix = format!("{section}.");
    table.iter().filter_map(|s| s.key.strip_prefix(&prefix)).collect::<Vec<_>>().join(", ")
}

impl Loaded {
    /// The effective configuration as a config file: every setting, its
    /// value (secrets redacted) and its source.
    pub fn print(&self) -> String {
        let mut out = String::new();
        let file = self.file.as_ref().map_or("none".to_owned(), |f| f.display().to_string());
        let _ = writeln!(
            out,
            "# effective configuration of {} (config file: {file})",
            self.config.root.display()
        );
        write_by_section(&mut out, "", |out, name, setting| {
            let value = serde_json::to_string(&setting.show(&self.config)).expect("strings serialise");
            let source = self.sources.get(&setting.key).unwrap_or(&Source::Default);
            let _ = writeln!(out, "  {name}: {value}  # {source}");
        });
        out
    }
}

/// The table of every setting as the README shows it.
pub fn markdown_table() -> String {
    let mut out = String::from("| key | flag | env | default | range | what |\n|---|---|---|---|---|---|\n");
    for s in settings() {
        let flag = if s.negated { format!("`--{}` (off)", s.flag) } else { format!("`--{}`", s.flag) };
        let default = if s.default.is_empty() { "—".to_owned() } else { format!("`{}`", s.default) };
        let range = s.range_text();
        let _ = writeln!(
            out,
            "| `{}` | {flag} | `{}` | {default} | {range} | {} |",
            s.key,
            s.env,
            s.doc.replace('|', "\\|")
        );
    }
    out
}

/// `fastmcp.example.yaml`: every setting, commented out at its default,
/// under its documentation.
pub fn example_file() -> String {
    let mut out = String::from(
        "# fastmcp.yaml: the host's configuration (every setting, at its default).\n\
         # Read from ROOT/fastmcp.yaml, or --config FILE / FASTMCP_CONFIG; environment\n\
         # variables override it and `serve` flags override both. Uncomment to change;\n\
         # `fastmcp config check` validates, `fastmcp config print` shows the result.\n",
    );
    write_by_section(&mut out, "\n", |out, name, setting| {
        let mut line = String::new();
        for word in setting.doc.split(' ') {
            if !line.is_empty() && line.len() + word.len() > 72 {
                let _ = writeln!(out, "  #   {line}");
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        let _ = writeln!(out, "  #   {line}");
        let range = setting.range.map(|(min, max)| format!("  # {min}..={max}")).unwrap_or_default();
        let value = serde_json::to_string(setting.default).expect("strings serialise");
        let _ = writeln!(out, "  # {name}: {value}{range}");
    });
    out
}

/// Every setting under its section's header (`section:`, after
/// `before_section`), written by `entry` with its name in the section.
fn write_by_section(
    out: &mut String,
    before_section: &str,
    mut entry: impl FnMut(&mut String, &str, &Setting),
) {
    let table = settings();
    let mut section = "";
    for setting in &table {
        let (this_section, name) = setting.key.split_once('.').expect("keys are section.name");
        if this_section != section {
            let _ = writeln!(out, "{before_section}{this_section}:");
            section = this_section;
        }
        entry(out, name, setting);
    }
}
