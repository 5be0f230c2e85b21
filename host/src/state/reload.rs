//! Reloads: the registry (file changes, SIGHUP) and the policy, each built
//! aside and swapped in whole, keeping the last good one on error, recorded
//! in `/health` and the audit trail.

use super::{AppState, Plugins, PolicySnapshot};
use crate::audit::record::AuditEvent;
use crate::broker::{Broker, providers};
use crate::policy::{PolicyError, PolicySet};
use crate::registry::RegistrySnapshot;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// How the last reloads went, one rebuild at a time, and who hears of
/// changes.
pub(super) struct Reloads {
    /// The last registry reload.
    pub last_registry: Mutex<Option<ReloadOutcome>>,
    /// The last policy reload.
    pub last_policy: Mutex<Option<ReloadOutcome>>,
    /// Serialises registry rebuilds (a watcher event and a SIGHUP at once).
    pub registry_rebuild: tokio::sync::Mutex<()>,
    /// Bumped whenever a reload may change which tools a caller sees.
    pub tools_changed: tokio::sync::watch::Sender<u64>,
}

impl Default for Reloads {
    fn default() -> Self {
        Self {
            last_registry: Mutex::default(),
            last_policy: Mutex::default(),
            registry_rebuild: tokio::sync::Mutex::default(),
            tools_changed: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// The result of the last reload attempt.
#[derive(Debug, Clone)]
pub struct ReloadOutcome {
    /// Whether it succeeded.
    pub ok: bool,
    /// When it happened.
    pub at: SystemTime,
    /// The error, when it failed.
    pub error: Option<String>,
    /// The changed files that triggered it (empty for a full reload).
    pub files: Vec<String>,
}

impl AppState {
    /// Tell listeners the tool set may have changed.
    fn announce_tools_changed(&self) {
        self.inner.reloads.tools_changed.send_modify(|generation| *generation += 1);
    }

    /// Rebuild the registry aside from every manifest and component (reusing
    /// unchanged components) and swap it in whole; on failure keep serving
    /// the current one. Recorded in `/health` and the audit trail.
    pub async fn reload_registry(&self, files: Vec<String>) -> Result<u64, String> {
        self.rebuild_registry(files, None).await
    }

    /// Rebuild the registry, against `new_broker` when given (new providers
    /// are adopted only together with a registry that validates against
    /// them), else against the current broker.
    async fn rebuild_registry(
        &self,
        files: Vec<String>,
        new_broker: Option<Arc<Broker>>,
    ) -> Result<u64, String> {
        let _one_at_a_time = self.inner.reloads.registry_rebuild.lock().await;
        let current = self.registry();
        let state = self.clone();
        let next = current.version + 1;
        let broker = new_broker.clone().unwrap_or_else(|| self.broker());
        // New providers are adopted only with a registry that validates
        // against them whole; otherwise each plugin reloads on its own.
        let per_plugin = new_broker.is_none();
        let built = tokio::task::spawn_blocking(move || {
            RegistrySnapshot::load(state.config(), state.runtime(), &broker, next, Some(&current), per_plugin)
        })
        .await
        .expect("registry build task panicked");
        // The version now served, and what did not load (if anything).
        let outcome: Result<(u64, Option<String>), String> = match built {
            Ok(snapshot) => {
                let broker = new_broker.unwrap_or_else(|| self.broker());
                tracing::info!(
                    version = next,
                    plugins = snapshot.plugins().count(),
                    tools = snapshot.tools().count(),
                    failed = snapshot.failures.len(),
                    ?files,
                    "registry reloaded"
                );
                let failures = describe_failures(&snapshot);
                self.inner.plugins.store(Arc::new(Plugins { registry: Arc::new(snapshot), broker }));
                self.announce_tools_changed();
                Ok((next, failures))
            }
            Err(e) => {
                tracing::error!(error = %e, ?files, "registry reload rejected; the previous registry keeps serving");
                Err(e.to_string())
            }
        };
        // `/health` shows a reload that left a plugin out as failed, naming it.
        let error = match &outcome {
            Ok((_, failures)) => failures.clone(),
            Err(e) => Some(e.clone()),
        };
        *self.inner.reloads.last_registry.lock().expect("reload lock") =
            Some(ReloadOutcome { ok: error.is_none(), at: SystemTime::now(), error, files: files.clone() });
        let registry = self.registry();
        let (decision, detail) = match &outcome {
            Ok((version, None)) => (
                "reloaded",
                serde_json::json!({"version": version, "tools": registry.tools().count(), "files": files}),
            ),
            Ok((version, Some(failures))) => (
                "partial",
                serde_json::json!({"version": version, "tools": registry.tools().count(), "files": files, "failed": failures}),
            ),
            Err(error) => (
                "rejected",
                serde_json::json!({"error": error, "files": files, "serving_version": registry.version}),
            ),
        };
        self.audit_host_event(AuditEvent::host("registry.reload", decision, detail)).await;
        outcome.map(|(version, _)| version)
    }

    /// Record an event of the host; a failure is logged (the trail then
    /// reports itself failed in `/health`, and calls fail closed).
    async fn audit_host_event(&self, event: AuditEvent) {
        let name = event.event.clone();
        if let Err(e) = self.audit().append(event).await {
            tracing::error!(event = %name, error = %e, "could not audit a host event");
        }
    }

    /// Reload the providers file, manifests, components and policies
    /// (`SIGHUP`).
    pub async fn reload_all(&self) {
        let providers = self.load_providers().await;
        let _ = self.rebuild_registry(Vec::new(), providers).await;
        let _ = self.reload_policies().await;
    }

    /// Read the providers file again into a new broker (with an empty token
    /// cache), for the registry rebuild to adopt. `None` when there is no
    /// file (development upstream or no providers) or it is broken — then
    /// the current providers stay in force.
    async fn load_providers(&self) -> Option<Arc<Broker>> {
        let file = self.config().providers_file()?;
        let shown = file.display().to_string();
        let loaded = tokio::task::spawn_blocking(move || providers::load(&file))
            .await
            .expect("providers load task panicked");
        let (decision, detail, broker) = match loaded {
            Ok(providers) => {
                let names: Vec<String> = providers.keys().cloned().collect();
                tracing::info!(file = %shown, providers = ?names, "providers reloaded");
                let config = &self.inner.config;
                let broker = Broker::new(providers, config.broker.clone(), config.clock.clone())
                    .trusting(self.inner.outbound.roots())
                    .sharing_metrics_of(&self.broker());
                ("loaded", serde_json::json!({"file": shown, "providers": names}), Some(Arc::new(broker)))
            }
            Err(e) => {
                tracing::error!(error = %e, "providers reload rejected; the current providers stay in force");
                ("rejected", serde_json::json!({"file": shown, "error": e.to_string()}), None)
            }
        };
        self.audit_host_event(AuditEvent::host("providers.reload", decision, detail)).await;
        broker
    }

    /// The result of the last registry reload, if any happened.
    pub fn last_reload(&self) -> Option<ReloadOutcome> {
        self.inner.reloads.last_registry.lock().expect("reload lock").clone()
    }

    /// The result of the last policy reload, if any happened.
    pub fn last_policy_reload(&self) -> Option<ReloadOutcome> {
        self.inner.reloads.last_policy.lock().expect("reload lock").clone()
    }

    /// Reload `policies/policies.yml`: build the new policy aside and swap it
    /// in whole; on error keep the current one and report why.
    pub async fn reload_policies(&self) -> Result<u64, PolicyError> {
        let file = self.config().policy_file();
        let loaded = tokio::task::spawn_blocking(move || PolicySet::load(&file))
            .await
            .expect("policy load task panicked");
        let outcome = {
            let mut last = self.inner.reloads.last_policy.lock().expect("reload lock");
            match loaded {
                Ok(policy) => {
                    let version = self.inner.policy.load().version + 1;
                    log_policy(&policy, version);
                    self.inner.policy.store(Arc::new(PolicySnapshot { version, policy }));
                    self.announce_tools_changed();
                    *last = Some(ReloadOutcome {
                        ok: true,
                        at: SystemTime::now(),
                        error: None,
                        files: Vec::new(),
                    });
                    Ok(version)
                }
                Err(e) => {
                    tracing::error!(error = %e, "policy reload rejected; the previous policy stays in force");
                    *last = Some(ReloadOutcome {
                        ok: false,
                        at: SystemTime::now(),
                        error: Some(e.to_string()),
                        files: Vec::new(),
                    });
                    Err(e)
                }
            }
        };
        let (decision, detail) = match &outcome {
            Ok(version) => ("reloaded", serde_json::json!({"version": version})),
            Err(e) => ("rejected", serde_json::json!({"error": e.to_string()})),
        };
        self.audit_host_event(AuditEvent::host("policy.reload", decision, detail)).await;
        outcome
    }
}

pub(super) fn log_policy(policy: &PolicySet, version: u64) {
    match &policy.file {
        Some(file) => tracing::info!(
            file = %file.display(), version, roles = policy.role_count(), rules = policy.rule_count(), "policy loaded"
        ),
        None => tracing::warn!(version, "no policy file: every call is denied"),
    }
}

/// The manifests of `snapshot` that did not load, as one text: each file,
/// why, and whether its last good version still serves.
fn describe_failures(snapshot: &RegistrySnapshot) -> Option<String> {
    if snapshot.failures.is_empty() {
        return None;
    }
    let lines: Vec<String> = snapshot
        .failures
        .iter()
        .map(|f| match &f.kept {
            Some(plugin) => format!("{} (plugin `{plugin}` keeps serving its last good version)", f.error),
            None => format!("{} (not served)", f.error),
        })
        .collect();
    Some(lines.join("; "))
}
