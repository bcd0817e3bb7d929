//! Baselines for `cargo xtask bench`, mounted only with the hidden `--bench-routes` flag: a no-op route (the HTTP
//! floor) and a route that signs a token of the same size as a limited access token (the signing floor). The
//! signing route uses a throwaway key generated at start and never published, so it cannot mint a token that any
//! verifier would accept.

use crate::http::error::ApiError;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tessera_core::claims::{LimitedAccessClaims, TokenType};
use tessera_core::{FeatureFlag, FlagSet, ResourceId, Timestamp};
use tessera_token::keys::bootstrap;
use tessera_token::{KeyRing, MasterKey};

/// A key ring nobody trusts.
#[derive(Clone)]
pub struct BenchSigner(Arc<KeyRing>);

impl BenchSigner {
    /// Generates the throwaway key.
    pub fn new(now: Timestamp) -> Result<Self, tessera_token::TokenError> {
        let master = MasterKey::from_base64(&MasterKey::generate_base64()?)?;
        let stored = bootstrap(&master, now)?;
        Ok(Self(Arc::new(KeyRing::load(
            "urn:tessera:bench:untrusted",
            &master,
            &stored,
        )?)))
    }
}

/// `POST /bench/noop`.
pub async fn noop() -> &'static str {
    "ok"
}

/// `POST /bench/sign`.
pub async fn sign(State(signer): State<BenchSigner>) -> Result<Response, ApiError> {
    let rid = |name: &str| {
        ResourceId::parse(&format!(
            "/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/bench/providers/Microsoft.CognitiveServices/accounts/{name}"
        ))
    };
    let (Ok(sub), Ok(isv)) = (rid("bench-client"), rid("bench-isv")) else {
        return Err(ApiError::internal(&"bench resource ids"));
    };
    let claims = LimitedAccessClaims {
        iss: "urn:tessera:bench:untrusted".into(),
        aud: LimitedAccessClaims::AUDIENCE.into(),
        sub,
        flags: FlagSet::EMPTY.with(FeatureFlag::FaceIdentification),
        isv,
        iat: 0,
        nbf: 0,
        exp: 3600,
        jti: crate::platform::secrets::new_jti(),
    };
    let token = signer.0.sign(&claims).map_err(|e| ApiError::internal(&e))?;
    Ok(([(header::CONTENT_TYPE, "application/jwt")], token).into_response())
}
