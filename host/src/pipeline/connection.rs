//! Connection: a tool whose manifest names an `oauth2_authorization_code`
//! provider acts with the caller's own account there. The caller's
//! connection is read (and its access token refreshed when near expiry)
//! before anything is asked of a human or run; without one the call is
//! `connection_required`, carrying a connect flow started for the caller
//! (their pending one while it has time left; within their quota of
//! pending flows) whose authorization URL they open — except for an
//! approved call, run when nobody is there to open it.

use super::CallRecord;
use super::steps::Checked;
use crate::connections::Unconnected;
use crate::error::ApiError;
use crate::state::AppState;

/// Read the caller's connection into the record, when the tool needs one.
pub(super) async fn connection(
    state: &AppState,
    record: &mut CallRecord,
    call: &Checked,
) -> Result<(), ApiError> {
    let Some(name) = &call.tool.def.credential else {
        return Ok(());
    };
    let connections = state.connections(call.broker.clone());
    if connections.provider(name).is_none() {
        return Ok(());
    }
    match connections.access_token(&call.principal, name).await {
        Ok(token) => {
            record.connection = Some(token);
            Ok(())
        }
        Err(Unconnected::Required) => {
            // An approved call runs with nobody to open a link (and its
            // outcome is stored): it names no flow.
            let authorization_url = match record.endpoint {
                super::Endpoint::Approved => None,
                _ => {
                    let base = record.headers.host().map(|host| state.public_base_of(Some(host)));
                    let base = base.or_else(|| state.config().mcp.public_url.clone());
                    let started = connections.start(&call.principal, name, base.as_deref()).await;
                    started.ok().map(|s| s.authorization_url)
                }
            };
            Err(ApiError::ConnectionRequired { provider: name.clone(), authorization_url })
        }
        Err(Unconnected::Unavailable(_)) => Err(ApiError::CredentialUnavailable(name.clone())),
        Err(Unconnected::Store) => Err(ApiError::StateUnavailable),
    }
}
