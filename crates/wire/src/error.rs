//! The body of every refusal: `{"error":{"code","message"}}`.

use serde::{Deserialize, Serialize};

/// A refusal's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// A refusal's stable code and its explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// The stable code (`InvalidSubscriptionKey`, `FlagNotHeld`, …).
    pub code: String,
    /// What the caller is told.
    pub message: String,
}
