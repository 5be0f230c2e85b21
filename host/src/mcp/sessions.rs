//! The legacy (2025-11-25) MCP sessions: rmcp's local session manager,
//! wrapped so that the host knows which sessions are open and who owns each
//! — for the global cap, each principal's share, and answering another
//! caller's session as unknown — through rmcp's `SessionManager` trait
//! alone, never its fields. A session's share is held in the map and
//! released when rmcp closes the session.

use crate::share::{Owner, Share};
use futures_core::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, SessionConfig,
};
use rmcp::transport::streamable_http_server::session::{ServerSseMessage, SessionId, SessionManager};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

/// rmcp's local sessions, and those this host opened with their owner's
/// share (`None` between creation and [`Sessions::admit`]).
pub struct Sessions {
    inner: LocalSessionManager,
    opened: Mutex<HashMap<SessionId, Option<Share<Owner>>>>,
}

impl Sessions {
    /// Sessions that close after `idle` without a request.
    pub fn new(idle: Duration) -> Self {
        let mut inner = LocalSessionManager::default();
        let mut config = SessionConfig::default();
        config.keep_alive = Some(idle);
        inner.session_config = config;
        Self { inner, opened: Mutex::default() }
    }

    /// How many sessions are open now. Exact without asking rmcp: rmcp
    /// closes every session through [`SessionManager::close_session`] — on
    /// DELETE, and when its worker ends (idle, or the client went away) — and
    /// a session that somehow ended without it stays counted (the cap errs
    /// closed).
    pub fn open_count(&self) -> usize {
        self.opened.lock().expect("sessions lock").len()
    }

    /// Record that `share`'s owner opened the session `id` (false if the
    /// session is gone already).
    pub fn admit(&self, id: &str, share: Share<Owner>) -> bool {
        match self.opened.lock().expect("sessions lock").get_mut(id) {
            Some(owner) => {
                *owner = Some(share);
                true
            }
            None => false,
        }
    }

    /// Whether the session `id` is open and `owner`'s.
    pub fn is_owned_by(&self, id: &str, owner: &Owner) -> bool {
        self.opened
            .lock()
            .expect("sessions lock")
            .get(id)
            .is_some_and(|share| share.as_ref().is_some_and(|share| share.owner() == owner))
    }
}

impl SessionManager for Sessions {
    type Error = LocalSessionManagerError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let (id, transport) = self.inner.create_session().await?;
        self.opened.lock().expect("sessions lock").insert(id.clone(), None);
        Ok((id, transport))
    }

    fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<ServerJsonRpcMessage, Self::Error>> + Send {
        self.inner.initialize_session(id, message)
    }

    fn has_session(&self, id: &SessionId) -> impl Future<Output = Result<bool, Self::Error>> + Send {
        self.inner.has_session(id)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let share = self.opened.lock().expect("sessions lock").remove(id);
        drop(share);
        self.inner.close_session(id).await
    }

    fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> impl Future<
        Output = Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>,
    > + Send {
        self.inner.create_stream(id, message)
    }

    fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.accept_message(id, message)
    }

    fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> impl Future<
        Output = Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>,
    > + Send {
        self.inner.create_standalone_stream(id)
    }

    fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> impl Future<
        Output = Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>,
    > + Send {
        self.inner.resume(id, last_event_id)
    }
}
