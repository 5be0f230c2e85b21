//! The command-line side of the configuration: `--root` and `--config`,
//! which say where the configuration is, and one flag per setting (made
//! from the table, so a flag cannot drift from its setting). Used by
//! `serve`, `token`, `config check|print` and `plugin check|dev`, so every
//! command reads the same file and environment the host does.

use super::{CONFIG_ENV, Loaded, Setting, load, settings};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::path::PathBuf;

/// Where the configuration is.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigLocation {
    /// Project root (manifests/, policies/, plugins/, .runtime/).
    #[arg(long, env = "FASTMCP_ROOT", default_value = ".")]
    pub root: PathBuf,
    /// The config file (default: ROOT/fastmcp.yaml when it exists).
    #[arg(long = "config", env = CONFIG_ENV)]
    pub config_file: Option<PathBuf>,
}

impl ConfigLocation {
    /// Read the configuration from the file and the process environment,
    /// then `flags` (setting key, value). The root is made absolute, so
    /// watched paths and manifest paths compare equal.
    pub fn load(&self, flags: &[(String, String)]) -> anyhow::Result<Loaded> {
        let root = std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        // `FASTMCP_CONFIG` is clap's to read (into `config_file`).
        let env = |name: &str| (name != CONFIG_ENV).then(|| std::env::var(name).ok()).flatten();
        load(&root, self.config_file.as_deref(), &env, flags)
    }
}

/// One flag per setting; what was given on the command line.
#[derive(Debug, Clone, Default)]
pub struct SettingFlags {
    /// (setting key, value as written), in table order.
    pub given: Vec<(String, String)>,
}

fn arg(setting: &Setting) -> Arg {
    let mut help = format!("{} [{}; env {}", setting.doc, setting.key, setting.env);
    if !setting.default.is_empty() && !setting.negated {
        help.push_str(&format!("; default {}", setting.default));
    }
    if let Some((min, max)) = setting.range {
        help.push_str(&format!("; {min}..={max}"));
    }
    help.push(']');
    let arg = Arg::new(setting.key.clone()).long(setting.flag.clone()).help(help).help_heading("Settings");
    if setting.boolean {
        arg.action(ArgAction::SetTrue)
    } else if setting.list {
        arg.action(ArgAction::Append).value_delimiter(',').value_name("LIST")
    } else {
        arg.action(ArgAction::Set).value_name("VALUE")
    }
}

impl clap::Args for SettingFlags {
    fn augment_args(command: Command) -> Command {
        command.args(settings().iter().map(arg))
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl clap::FromArgMatches for SettingFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut given = Vec::new();
        for setting in settings() {
            let id = setting.key.as_str();
            if matches.value_source(id) != Some(ValueSource::CommandLine) {
                continue;
            }
            let raw = match matches.get_raw(id) {
                _ if setting.boolean => (!setting.negated).to_string(),
                Some(values) => values.map(|v| v.to_string_lossy()).collect::<Vec<_>>().join(","),
                None => String::new(),
            };
            given.push((setting.key, raw));
        }
        Ok(Self { given })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}
