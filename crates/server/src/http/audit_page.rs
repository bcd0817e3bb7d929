//! One page of audit events as an answer, with the cursor of the next: the operator's `GET /admin/audit` and an
//! ISV's `GET /sts/v1.0/limitedAccess/audit` serve the same page over different filters.

use crate::http::error::ApiError;
use crate::platform::state::AppState;
use tessera_store::AuditQuery;
use tessera_wire::admin::AuditPage;

/// Runs an audit query.
pub(crate) async fn audit_page(state: &AppState, query: &AuditQuery) -> Result<AuditPage, ApiError> {
    let limit = query.limit.clamp(1, tessera_store::MAX_AUDIT_PAGE);
    let value = state
        .store
        .audit_events(&AuditQuery {
            limit,
            ..query.clone()
        })
        .await?;
    let next_after = (value.len() == limit as usize)
        .then(|| value.last().map(|e| e.seq))
        .flatten();
    Ok(AuditPage { value, next_after })
}
