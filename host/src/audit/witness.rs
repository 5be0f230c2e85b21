//! Witnesses: every signed checkpoint also goes somewhere the trail's own
//! directory does not control, so that someone who can rewrite `.audit/`
//! (and its checkpoints file) cannot silently roll the trail back behind
//! the newest checkpoint.
//!
//! - a **directory**, ideally on another mount or host: the checkpoint line is
//!   appended to `DIR/checkpoints.jsonl` and synced, right after the local one;
//!   `fastmcp audit verify --witness DIR` checks the trail against it;
//! - an **HTTP endpoint**: the checkpoint is POSTed as JSON
//!   (`application/json`, the line itself) from a background task, retried
//!   a few times; an endpoint that is down never slows a call.
//!
//! A witness that cannot be written is logged and shown in `/health`; it
//! does not stop the trail (the local checkpoint is already durable).

use super::checkpoint::CHECKPOINTS_FILE;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Checkpoints waiting for the HTTP witness; more are dropped (and logged).
const HTTP_QUEUE: usize = 64;
/// Attempts per checkpoint for the HTTP witness.
const HTTP_ATTEMPTS: u32 = 3;

/// Where checkpoints are witnessed.
#[derive(Clone, Default)]
pub struct Witness {
    dir: Option<PathBuf>,
    http: Option<mpsc::Sender<Vec<u8>>>,
    /// The last witness failure, for `/health`.
    error: Arc<Mutex<Option<String>>>,
}

impl Witness {
    /// Witnesses in `dir` and/or at `url` (none when both are `None`). The
    /// HTTP sender runs on the current tokio runtime.
    pub fn new(dir: Option<PathBuf>, url: Option<String>) -> anyhow::Result<Self> {
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("audit witness directory {}: {e}", dir.display()))?;
        }
        let error = Arc::new(Mutex::new(None));
        let http = match url {
            None => None,
            Some(url) => {
                let (sender, receiver) = mpsc::channel(HTTP_QUEUE);
                tokio::spawn(post_checkpoints(url, receiver, error.clone()));
                Some(sender)
            }
        };
        Ok(Self { dir, http, error })
    }

    /// The witness directory, if any.
    pub fn dir(&self) -> Option<&PathBuf> {
        self.dir.as_ref()
    }

    /// Witness one checkpoint line (without its newline). Blocking (the
    /// writer thread calls it).
    pub fn record(&self, line: &[u8]) {
        if let Some(dir) = &self.dir {
            let written =
                OpenOptions::new().create(true).append(true).open(dir.join(CHECKPOINTS_FILE)).and_then(
                    |mut file| {
                        let mut bytes = line.to_vec();
                        bytes.push(b'\n');
                        file.write_all(&bytes)?;
                        file.sync_data()
                    },
                );
            match written {
                Ok(()) => self.set_error(None),
                Err(e) => {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot write the audit witness");
                    self.set_error(Some(format!("witness directory: {e}")));
                }
            }
        }
        if let Some(http) = &self.http
            && http.try_send(line.to_vec()).is_err()
        {
            tracing::error!("the HTTP audit witness is not keeping up; a checkpoint was not sent");
            self.set_error(Some("HTTP witness queue full".into()));
        }
    }

    /// The last failure, if the last attempt failed.
    pub fn error(&self) -> Option<String> {
        self.error.lock().expect("witness error lock").clone()
    }

    fn set_error(&self, error: Option<String>) {
        *self.error.lock().expect("witness error lock") = error;
    }
}

async fn post_checkpoints(
    url: String,
    mut lines: mpsc::Receiver<Vec<u8>>,
    error: Arc<Mutex<Option<String>>>,
) {
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(5)).build() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP witness client");
            return;
        }
    };
    while let Some(line) = lines.recv().await {
        let mut outcome = Err(String::new());
        for attempt in 0..HTTP_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            let sent = client
                .post(&url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(line.clone())
                .send()
                .await
                .and_then(|r| r.error_for_status());
            outcome = sent.map(drop).map_err(|e| e.without_url().to_string());
            if outcome.is_ok() {
                break;
            }
        }
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "the HTTP audit witness did not take a checkpoint");
        }
        *error.lock().expect("witness error lock") = outcome.err().map(|e| format!("HTTP witness: {e}"));
    }
}
