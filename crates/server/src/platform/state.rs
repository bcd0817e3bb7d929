//! Shared state of one node: the store, the audit writer, the keys, the clock, the configuration and the
//! limiters. What only one area holds (chat's event hub, the face engine) is in that area's state.

use crate::platform::clock::Clock;
use crate::platform::config::Config;
use crate::platform::flood::{Admission, Denials, OverLimit, Typing};
use crate::platform::keyring::Keys;
use crate::platform::ratelimit::AuthFailures;
use axum::http::StatusCode;
use metrics_exporter_prometheus::PrometheusHandle;
use std::ops::Deref;
use std::sync::Arc;
use tessera_core::audit::{NewEvent, Outcome};
use tessera_core::secret::KeyHash;
use tessera_store::Store;
use tessera_store::audit::AuditWriter;

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The contents of [`AppState`].
pub struct Inner {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Group-commit audit writer.
    pub audit: AuditWriter,
    /// Signing keys.
    pub keys: Keys,
    /// The clock.
    pub clock: Clock,
    /// Configuration.
    pub config: Config,
    /// Hash of the operator's admin key.
    pub admin_key: KeyHash,
    /// Failed-authentication counters.
    pub auth_failures: AuthFailures,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// This node's folding and limiting of refusals.
    pub denials: Denials,
    /// This node's typing limit.
    pub typing: Typing,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Wraps the parts.
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// Starts an audit event at the current time.
    pub fn event(&self, actor: &str, action: &str, subject: &str) -> EventBuilder<'_> {
        EventBuilder {
            state: self,
            event: NewEvent {
                at: self.clock.now(),
                actor: actor.to_owned(),
                action: action.to_owned(),
                subject: subject.to_owned(),
                outcome: Outcome::Success,
                details: String::from("{}"),
                isv: None,
            },
        }
    }
}

impl AppState {
    /// Starts the audit event of a refused request (counted in `tessera_refusals_total`): denied, with the
    /// answer's code and status as details.
    pub fn refusal(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        code: &str,
        status: StatusCode,
    ) -> EventBuilder<'_> {
        metrics::counter!("tessera_refusals_total", "action" => action.to_owned(), "reason" => code.to_owned())
            .increment(1);
        self.event(actor, action, subject)
            .denied()
            .details(serde_json::json!({"code": code, "status": status.as_u16()}))
    }
}

/// Why an event was not recorded; the operation it records must not go ahead.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store did not take it.
    #[error("the operation is refused because its audit event was not recorded: {0}")]
    NotRecorded(tessera_store::StoreError),
    /// A refusal past its actor's limit.
    #[error("{}", .0.message())]
    OverLimit(OverLimit),
}

/// An audit event being built; [`EventBuilder::record`] waits until it is durable.
pub struct EventBuilder<'a> {
    state: &'a AppState,
    event: NewEvent,
}

impl EventBuilder<'_> {
    /// Marks the event as a refusal.
    pub fn denied(mut self) -> Self {
        self.event.outcome = Outcome::Denied;
        self
    }
    /// Sets the details.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.event.details = details.to_string();
        self
    }
    /// Files the event under an ISV, so that the ISV can read it.
    pub fn isv(mut self, isv: Option<&str>) -> Self {
        self.event.isv = isv.map(str::to_owned);
        self
    }
    /// Appends the event and waits until it is durable. A refusal goes through `crate::platform::flood::Denials` first:
    /// repeated, it is folded into its first occurrence (nothing is written now); past its actor's limit, the
    /// answer becomes 429 `TooManyRefusals`.
    pub async fn record(self) -> Result<(), AuditError> {
        let failed = AuditError::NotRecorded;
        if self.event.outcome != Outcome::Denied {
            self.state.audit.record(self.event).await.map_err(failed)?;
            return Ok(());
        }
        let (admission, due) = self.state.denials.admit(&self.event);
        for event in due {
            self.state.audit.record(event).await.map_err(failed)?;
        }
        if let Ok(Admission::Write) = &admission {
            self.state.audit.record(self.event).await.map_err(failed)?;
        }
        admission.map(|_| ()).map_err(AuditError::OverLimit)
    }
}
