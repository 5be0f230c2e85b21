//! `fastmcp plugin new`: a plugin's source tree (which builds as is), its
//! `wit/`, and `manifests/NAME.yaml` with one example tool, plus the policy
//! line that grants it.

use super::{Lang, Project, templates};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// What `new` created.
#[derive(Debug)]
pub struct Scaffolded {
    /// The source directory.
    pub dir: PathBuf,
    /// The manifest.
    pub manifest: PathBuf,
    /// The role line to add under `roles:` in the policy file.
    pub grant: String,
}

/// Memory a first call needs, per language runtime (the interpreters carry
/// their heaps).
fn memory_mb(lang: Lang) -> u32 {
    match lang {
        Lang::Rust => 16,
        Lang::Python | Lang::Js => 64,
    }
}

/// Create plugin `name` in `dir` (default `plugins/NAME`) and its manifest.
/// Refuses to overwrite anything.
pub fn new_plugin(
    project: &Project,
    name: &str,
    lang: Lang,
    dir: Option<&Path>,
) -> anyhow::Result<Scaffolded> {
    if !crate::manifest::is_plugin_name(name) {
        bail!("`{name}` is not a plugin name: [a-z][a-z0-9_-]{{0,63}}");
    }
    let dir = project.resolve(dir.unwrap_or(&Path::new("plugins").join(name)));
    let manifest = project.root.join("manifests").join(format!("{name}.yaml"));
    if manifest.exists() {
        bail!("{} exists already", manifest.display());
    }
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} exists and is not empty", dir.display());
    }
    let component = dir.join(format!("{name}.wasm"));
    let component_in_manifest =
        component.strip_prefix(&project.root).map(Path::to_path_buf).unwrap_or_else(|_| component.clone());
    for (path, text) in templates::sources(lang) {
        write_new(&dir.join(path), &text.replace("{{name}}", name))?;
    }
    for (path, text) in templates::WIT {
        write_new(&dir.join("wit").join(path), text)?;
    }
    let text = templates::MANIFEST
        .replace("{{name}}", name)
        .replace("{{lang}}", lang.name())
        .replace("{{component}}", &component_in_manifest.display().to_string())
        .replace("{{memory_mb}}", &memory_mb(lang).to_string());
    write_new(&manifest, &text)?;
    Ok(Scaffolded { dir, manifest, grant: format!("{name}-user: {{ tools: [\"{name}:*\"] }}") })
}

fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
