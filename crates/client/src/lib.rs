//! Tessera's Rust client SDK.
//!
//! * [`Endpoint`]: a Tessera base URL and an HTTP client (rustls), shared by every typed client.
//! * [`AdminClient`]: the operator's API (accounts, keys, approvals, ISVs, signing keys, audit), by the admin key.
//! * [`StsClient`]: a subscription key for a 10-minute STS bearer token, and an ISV's limited access tokens.
//! * [`IdentityClient`]: a Communication account's trusted service (Tessera's `/v1/identities` dialect): create and
//!   find identities, issue, revoke, delete.
//! * [`ChatClient`]: a device's chat (threads, messages, participants, direct messages by name), on its
//!   credential's token.
//! * [`ChatEvents`]: the device's real-time [`ChatEvent`]s, a stream that reconnects with fresh tokens and resumes
//!   where it broke off.
//! * [`CommunicationTokenCredential`]: a device's user access token, refreshed before it expires by a
//!   [`TokenRefresher`]: the trusted service's callback ([`refresher_fn`]) or the device's own refresh session
//!   ([`DeviceRefresher`]).
//!
//! Every failure is a [`ClientError`]; a refusal by the server carries its status and its JSON error code.

mod admin;
mod chat;
mod credential;
mod events;
mod identity;
mod message;
mod sts;

pub use admin::AdminClient;
pub use chat::{CHAT_API_VERSION, ChatClient, ChatThread};
pub use credential::{
    AccessToken, CommunicationTokenCredential, CredentialEvent, DeviceRefresher, IssuedToken, RefreshOptions,
    TokenRefresher, refresher_fn,
};
pub use events::{ChatEvent, ChatEvents};
pub use identity::{Identity, IdentityClient, TokenRequest};
pub use message::ChatMessage;
pub use sts::StsClient;
pub use tessera_core::identity::IdentityKind;
pub use tessera_wire as wire;

use serde::de::DeserializeOwned;
use tessera_wire::error::ErrorBody;

/// The header a subscription key travels in.
const KEY_HEADER: &str = "Ocp-Apim-Subscription-Key";

/// What went wrong talking to Tessera.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server refused the request with a JSON error (`{"error":{"code","message"}}`).
    #[error("{status} {code}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The error's stable code.
        code: String,
        /// The server's explanation.
        message: String,
    },
    /// The request did not complete (connection, TLS, timeout).
    #[error("transport: {0}")]
    Transport(String),
    /// The server answered something this SDK does not understand.
    #[error("unexpected response: {0}")]
    UnexpectedResponse(String),
    /// The credential holds no usable token: it expired and refreshing failed (the last failure is said).
    #[error("no usable token: {0}")]
    TokenExpired(String),
    /// A refresher gave a token that had already expired.
    #[error("the refresher returned a token that expired at {0}")]
    RefreshedTokenExpired(String),
}

impl ClientError {
    /// The server's error code, when the server refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        Self::Transport(e.to_string())
    }
}

/// A Tessera server: its base URL (`https://tessera.example`, no trailing slash needed) and the HTTP client
/// requests go through. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Endpoint {
    base: String,
    http: reqwest::Client,
}

impl Endpoint {
    /// An endpoint with a default client (rustls, the platform's roots as reqwest configures them).
    pub fn new(base: impl Into<String>) -> Self {
        Self::with_client(base, reqwest::Client::new())
    }

    /// An endpoint with the caller's client (own roots, timeouts, proxy).
    pub fn with_client(base: impl Into<String>, http: reqwest::Client) -> Self {
        Self {
            base: base.into().trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// A request to `path` (which starts with `/`).
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }
}

/// Sends `request`; a 2xx answer's body as JSON, anything else as [`ClientError::Refused`].
async fn json<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<T, ClientError> {
    let response = checked(request).await?;
    let bytes = response.bytes().await?;
    serde_json::from_slice(&bytes).map_err(|e| ClientError::UnexpectedResponse(e.to_string()))
}

/// Sends `request`; the response when it is 2xx, else the server's JSON error as [`ClientError::Refused`].
async fn checked(request: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
    let response = request.send().await?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let bytes = response.bytes().await.unwrap_or_default();
    let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(ErrorBody { error }) => (error.code, error.message),
        Err(_) => (
            status.as_str().to_owned(),
            String::from_utf8_lossy(&bytes).chars().take(200).collect(),
        ),
    };
    Err(ClientError::Refused {
        status: status.as_u16(),
        code,
        message,
    })
}

/// One path segment, percent-encoded (identity ids hold `:`).
fn segment(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
