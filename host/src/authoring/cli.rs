//! The `fastmcp plugin` command line: arguments and what each command
//! prints. The commands block (they run build tools and load components),
//! so the binary runs them off its async threads.

use super::check::Checker;
use super::{Lang, PluginSource, Project, build, dev, scaffold};
use crate::config::flags::ConfigLocation;
use anyhow::{Context, bail};
use std::path::PathBuf;

/// `fastmcp plugin …`
#[derive(clap::Subcommand)]
pub enum PluginCommand {
    /// Create a plugin: sources that build as they are, `wit/`, and
    /// `manifests/NAME.yaml` with one example tool.
    New(NewArgs),
    /// Build plugins into their components with the language's tool
    /// (installed on first use into the project's tools directory).
    Build(BuildArgs),
    /// Load manifests and their components exactly as the host does — with
    /// the host's configuration (config file, environment, these flags) —
    /// and report what does not match; exits 1 if any is rejected.
    Check(CheckArgs),
    /// Watch a plugin's sources; rebuild, check and put it in place on
    /// every change, for the running host to hot-reload.
    Dev(DevArgs),
}

/// Where the project and its tools are.
#[derive(clap::Args)]
pub struct ProjectArgs {
    /// Project root (manifests/, plugins/, policies/).
    #[arg(long, env = "FASTMCP_ROOT", default_value = ".")]
    root: PathBuf,
    /// Where language toolchains are installed (default ROOT/.fastmcp/tools).
    #[arg(long, env = "FASTMCP_TOOLS_DIR")]
    tools_dir: Option<PathBuf>,
}

impl ProjectArgs {
    fn project(&self) -> Project {
        Project::new(self.root.clone(), self.tools_dir.clone())
    }
}

/// `fastmcp plugin new`
#[derive(clap::Args)]
pub struct NewArgs {
    /// The plugin's name: [a-z][a-z0-9_-]{0,63}.
    name: String,
    /// The language.
    #[arg(long, value_enum)]
    lang: Lang,
    /// Where the sources go (default plugins/NAME).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[command(flatten)]
    project: ProjectArgs,
}

/// `fastmcp plugin build`
#[derive(clap::Args)]
pub struct BuildArgs {
    /// Plugins to build, by name or source directory.
    #[arg(required = true)]
    plugins: Vec<String>,
    #[command(flatten)]
    project: ProjectArgs,
}

/// `fastmcp plugin check`
#[derive(clap::Args)]
pub struct CheckArgs {
    /// Manifests to check (default: every one in ROOT/manifests).
    manifests: Vec<PathBuf>,
    #[command(flatten)]
    host: HostArgs,
    #[command(flatten)]
    project: ProjectArgs,
}

/// What the host that will load the plugin is served with: its config file
/// and environment (read as `serve` reads them), and these flags of `serve`.
#[derive(clap::Args)]
pub struct HostArgs {
    /// The host's config file (default: ROOT/fastmcp.yaml when it exists).
    #[arg(long = "config", env = crate::config::CONFIG_ENV)]
    config_file: Option<PathBuf>,
    /// The providers file (`broker.providers_file`; default
    /// ROOT/.runtime/providers.yml when it exists).
    #[arg(long)]
    providers: Option<PathBuf>,
    /// The compile cache (`runtime.compile_cache_dir`; default
    /// ROOT/.runtime/cache): components checked here are then already
    /// compiled for the host.
    #[arg(long)]
    compile_cache_dir: Option<PathBuf>,
}

impl HostArgs {
    fn checker(self, project: &Project) -> anyhow::Result<Checker> {
        let location = ConfigLocation { root: project.root.clone(), config_file: self.config_file };
        let flags: Vec<(String, String)> = [
            ("broker.providers_file", self.providers),
            ("runtime.compile_cache_dir", self.compile_cache_dir),
        ]
        .into_iter()
        .filter_map(|(key, path)| Some((key.to_owned(), path?.display().to_string())))
        .collect();
        let loaded = location.load(&flags)?;
        for warning in &loaded.warnings {
            eprintln!("warning: {warning}");
        }
        Checker::new(loaded.config)
    }
}

/// `fastmcp plugin dev`
#[derive(clap::Args)]
pub struct DevArgs {
    /// The plugin, by name or source directory.
    plugin: String,
    #[command(flatten)]
    host: HostArgs,
    /// Stop after this many rounds (the first build counts); for scripts.
    #[arg(long)]
    rounds: Option<usize>,
    #[command(flatten)]
    project: ProjectArgs,
}

/// Run a `fastmcp plugin` command. Blocking.
pub fn run(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::New(args) => {
            let project = args.project.project();
            let made = scaffold::new_plugin(&project, &args.name, args.lang, args.dir.as_deref())?;
            let name = &args.name;
            println!("created {} ({}) and {}", made.dir.display(), args.lang.name(), made.manifest.display());
            println!();
            println!("next:");
            println!("  fastmcp plugin build {name}");
            println!("  grant it: add this line under `roles:` in policies/policies.yml");
            println!("    {}", made.grant);
            println!("  call it with a token for that role:");
            println!("    fastmcp token --sub me --role {name}-user --scope tools.invoke:write");
            println!("    POST /tools/{name}:hello/invoke {{\"name\": \"you\"}}");
            Ok(())
        }
        PluginCommand::Build(args) => {
            let project = args.project.project();
            for which in &args.plugins {
                let plugin = PluginSource::locate(&project, which)?;
                let built = build::build(&project, &plugin)?;
                println!(
                    "built {} ({}) in {:.1} s: {} ({} KiB)",
                    plugin.name,
                    plugin.lang.name(),
                    built.took.as_secs_f64(),
                    plugin.component.display(),
                    built.bytes / 1024
                );
            }
            Ok(())
        }
        PluginCommand::Check(args) => {
            let project = args.project.project();
            let manifests = if args.manifests.is_empty() {
                let dir = project.root.join("manifests");
                crate::registry::manifest_files(&dir).with_context(|| format!("reading {}", dir.display()))?
            } else {
                args.manifests.iter().map(|m| project.resolve(m)).collect()
            };
            let checker = args.host.checker(&project)?;
            let mut rejected = 0;
            for manifest in &manifests {
                let verdict = checker.check(manifest);
                rejected += usize::from(verdict.outcome.is_err());
                println!("{verdict}");
            }
            if rejected > 0 {
                bail!("{rejected} of {} manifests rejected", manifests.len());
            }
            Ok(())
        }
        PluginCommand::Dev(args) => {
            let project = args.project.project();
            let plugin = PluginSource::locate(&project, &args.plugin)?;
            let checker = args.host.checker(&project)?;
            dev::run(&project, &plugin, &checker, args.rounds)
        }
    }
}
