//! Communication identities and user access tokens, for the account's trusted service ([`TrustedService`]).
//!
//! The same handlers serve two dialects ([`Dialect`]):
//! - **ACS** at `/identities…`, wire-compatible with Azure Communication Services so that the official SDKs work
//!   unmodified: `api-version` is required (one of [`ACS_API_VERSIONS`]), tokens live 24 hours by default;
//! - **Tessera** at `/v1/identities…`: `api-version` is not needed, tokens live 12 hours by default.
//!
//! ACS operations: `POST /identities` (201), `DELETE /identities/{id}` (204), `POST /identities/{id}/:issueAccessToken`
//! (200), `POST /identities/{id}/:revokeAccessTokens` (204). Tessera's additions, on both: `name` and `kind` when
//! creating (a live name is unique per account: 409 `IdentityAlreadyExists`), `GET /identities/{id}`,
//! `GET /identities?name=…` (lookup), `GET /identities?maxPageSize=&continuationToken=` (paging, with `nextLink`),
//! `POST /identities/:issueAccessToken` with a `name` (creates the identity if it has none yet), and, on every
//! issuance, `sessionMinutes` (a device refresh session, see `tessera_core::session`) and `actor` (RFC 8693 `act`).
//!
//! Every creation, issuance, revocation and deletion, and every refusal of one, is in the audit chain before the
//! answer leaves. An identity of another account is answered as if it did not exist.

use crate::communication::grant::{self, Grant};
use crate::communication::trusted::TrustedService;
use crate::http::api_version::api_version;
use crate::http::error::{ApiError, NotFoundAs};
use crate::http::extract::ApiQuery;
use crate::platform::secrets::new_secret;
use crate::platform::state::AppState;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_core::audit::action;
use tessera_core::identity::{
    ACS_DEFAULT_LIFETIME_MINUTES, Identity, IdentityId, IdentityKind, IdentityName,
    NATIVE_DEFAULT_LIFETIME_MINUTES, token_lifetime_minutes,
};
use tessera_core::scope::ScopeSet;
use tessera_core::secret::KeyHash;
use tessera_core::session::{self, Session};
use tessera_core::{Account, Timestamp};
use tessera_store::StoreError;
use tessera_wire::identity::{self as wire, AccessToken, CreatedIdentity, IdentityWithToken};

/// The `api-version`s of the ACS Identity API that Tessera speaks (the SDKs send the newest).
pub const ACS_API_VERSIONS: [&str; 4] = ["2021-03-07", "2022-06-01", "2022-10-01", "2023-10-01"];
/// Default page size of identity listings.
const DEFAULT_PAGE: u32 = 100;
/// Largest page size of identity listings.
const MAX_PAGE: u32 = 1000;

/// Which API a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Azure Communication Services' wire, at the root.
    Acs,
    /// Tessera's own, under `/v1`.
    Native,
}

impl Dialect {
    fn prefix(self) -> &'static str {
        match self {
            Self::Acs => "",
            Self::Native => "/v1",
        }
    }

    fn default_lifetime_minutes(self) -> i64 {
        match self {
            Self::Acs => ACS_DEFAULT_LIFETIME_MINUTES,
            Self::Native => NATIVE_DEFAULT_LIFETIME_MINUTES,
        }
    }
}

/// The identity routes of one dialect.
pub fn routes(dialect: Dialect) -> Router<AppState> {
    let p = dialect.prefix();
    Router::new()
        .without_v07_checks()
        .route(&format!("{p}/identities"), post(create).get(list))
        .route(&format!("{p}/identities/:issueAccessToken"), post(issue_by_name))
        .route(&format!("{p}/identities/{{id}}"), get(read).delete(delete))
        .route(&format!("{p}/identities/{{id}}/:issueAccessToken"), post(issue))
        .route(
            &format!("{p}/identities/{{id}}/:revokeAccessTokens"),
            post(revoke),
        )
        .layer(Extension(dialect))
}

/// The dialect of a request, with its `api-version` checked.
#[derive(Debug, Clone, Copy)]
pub struct Wire {
    dialect: Dialect,
    api_version: Option<&'static str>,
}

impl<S: Send + Sync> FromRequestParts<S> for Wire {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let dialect = parts
            .extensions
            .get::<Dialect>()
            .copied()
            .ok_or_else(|| ApiError::internal(&"identity route without a dialect"))?;
        let api_version = match dialect {
            Dialect::Native => None,
            Dialect::Acs => Some(api_version(&parts.uri, &ACS_API_VERSIONS)?),
        };
        Ok(Self { dialect, api_version })
    }
}

/// An identity as answered.
pub fn view(identity: &Identity) -> wire::Identity {
    wire::Identity {
        id: identity.id.as_str().to_owned(),
        name: identity.name.as_ref().map(|n| n.as_str().to_owned()),
        kind: identity.kind,
        created_at: identity.created_at.to_rfc3339(),
    }
}

/// A new refresh secret.
pub fn new_refresh_secret() -> Result<String, ApiError> {
    new_secret("tessera_rt_").map_err(|e| ApiError::internal(&e))
}

/// What a token request asks for, validated.
struct TokenRequest {
    scopes: ScopeSet,
    lifetime_minutes: i64,
    session_minutes: Option<i64>,
    actor: Option<IdentityId>,
}

impl TokenRequest {
    fn parse(
        wire: Wire,
        scopes: &[String],
        expires_in_minutes: Option<i64>,
        session_minutes: Option<i64>,
        actor: Option<&str>,
    ) -> Result<Self, ApiError> {
        let scopes = ScopeSet::parse(scopes)?;
        let lifetime_minutes =
            token_lifetime_minutes(expires_in_minutes, wire.dialect.default_lifetime_minutes())?;
        let session_minutes = session_minutes
            .map(|m| session::session_minutes(m, lifetime_minutes))
            .transpose()?;
        let actor = actor.map(IdentityId::parse).transpose()?;
        Ok(Self {
            scopes,
            lifetime_minutes,
            session_minutes,
            actor,
        })
    }
}

fn not_found(id: &impl std::fmt::Display) -> ApiError {
    ApiError::not_found("IdentityNotFound", format!("identity {id} not found"))
}

/// The id in a path, if it names an identity of `account`.
fn own_id(account: &Account, raw: &str) -> Result<IdentityId, ApiError> {
    let id = IdentityId::parse(raw)?;
    if id.account() != account.id {
        return Err(not_found(&id));
    }
    Ok(id)
}

/// A live identity of `account`.
async fn live(state: &AppState, account: &Account, id: &IdentityId) -> Result<Identity, ApiError> {
    state
        .store
        .identity(id)
        .await?
        .filter(|i| i.deleted_at.is_none() && i.id.account() == account.id)
        .ok_or_else(|| not_found(id))
}

/// Runs a state-changing operation; a refusal is audited under the caller before it is answered.
async fn audited(
    state: &AppState,
    service: &crate::http::auth::Caller,
    act: &str,
    subject: &str,
    result: Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    if let Err(e) = &result
        && e.status() != StatusCode::INTERNAL_SERVER_ERROR
    {
        state
            .refusal(&service.actor(), act, subject, e.code(), e.status())
            .record()
            .await?;
    }
    result
}

/// The live acting identity a request names, if any, read before anything is written so that a bad actor
/// changes nothing.
async fn acting(
    state: &AppState,
    account: &Account,
    request: &TokenRequest,
) -> Result<Option<Identity>, ApiError> {
    match &request.actor {
        Some(actor_id) => Ok(Some(live(state, account, actor_id).await.map_err(|_| {
            ApiError::not_found("ActorNotFound", format!("acting identity {actor_id} not found"))
        })?)),
        None => Ok(None),
    }
}

/// Issues a token to the live identity `id` of `account` (with `actor` from [`acting`]), opening a refresh
/// session if asked, and audits it.
async fn issue_to(
    state: &AppState,
    service: &crate::http::auth::Caller,
    id: &IdentityId,
    request: &TokenRequest,
    actor: Option<&Identity>,
) -> Result<(Identity, AccessToken), ApiError> {
    let account = &service.account;
    if actor.is_some_and(|a| &a.id == id) {
        return Err(ApiError::bad_request(
            "ActorIsSubject",
            "an identity cannot act on its own behalf; omit actor",
        ));
    }
    // The identity as stored now: its revocation generation goes into the token, so a revocation that lands
    // after this read still ends the token.
    let identity = live(state, account, id).await?;
    let now = state.clock.now();
    let mut exp = now.secs() + request.lifetime_minutes * 60;
    let mut refresh_token = None;
    let session = match request.session_minutes {
        Some(minutes) => {
            let session = Session {
                id: uuid::Uuid::new_v4().simple().to_string(),
                identity: identity.id.clone(),
                created_at: now,
                expires_at: now.plus_secs(minutes * 60),
                token_lifetime_minutes: request.lifetime_minutes,
                generation: 0,
                ended: None,
            };
            let secret = new_refresh_secret()?;
            state
                .store
                .create_session(&session, &KeyHash::of(&secret))
                .await?;
            exp = exp.min(session.expires_at.secs());
            refresh_token = Some(secret);
            Some(session)
        }
        None => None,
    };
    let grant = Grant {
        account,
        identity: &identity,
        scopes: request.scopes,
        exp,
        actor,
        session: session.as_ref().map(|s| s.id.as_str()),
    };
    let (token, claims) = grant::mint(state, grant, now)?;
    let mut details = json!({"jti": claims.jti, "scopes": claims.scp, "exp": claims.exp});
    if let Some(actor) = &claims.act {
        details["actor"] = actor.sub.as_str().into();
    }
    if let Some(session) = &session {
        details["sid"] = session.id.clone().into();
        details["sessionExpiresAt"] = session.expires_at.to_rfc3339().into();
    }
    state
        .event(&service.actor(), action::USER_TOKEN_ISSUE, id.as_str())
        .details(details)
        .record()
        .await?;
    let view = AccessToken {
        token,
        expires_on: Timestamp::from_secs(claims.exp).to_rfc3339(),
        refresh_token,
    };
    Ok((identity, view))
}

/// Creates an identity, audited. `IdentityAlreadyExists` if its name is taken.
async fn create_identity(
    state: &AppState,
    service: &crate::http::auth::Caller,
    name: Option<IdentityName>,
    kind: IdentityKind,
) -> Result<Identity, ApiError> {
    let identity = Identity {
        id: IdentityId::new(service.account.id, uuid::Uuid::new_v4()),
        name,
        kind,
        created_at: state.clock.now(),
        revocation: 0,
        deleted_at: None,
    };
    state
        .store
        .create_identity(&identity)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                "IdentityAlreadyExists",
                format!(
                    "an identity named {:?} exists in this account",
                    identity.name.as_ref().map_or("", IdentityName::as_str)
                ),
            ),
            other => other.into(),
        })?;
    state
        .event(&service.actor(), action::IDENTITY_CREATE, identity.id.as_str())
        .details(json!({"name": identity.name, "kind": identity.kind}))
        .record()
        .await?;
    Ok(identity)
}

/// Body of `POST /identities`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateBody {
    create_token_with_scopes: Option<Vec<String>>,
    expires_in_minutes: Option<i64>,
    session_minutes: Option<i64>,
    actor: Option<String>,
    name: Option<String>,
    kind: Option<IdentityKind>,
}

/// `POST /identities`: 201 `{"identity":{…}}`, plus `"accessToken"` when `createTokenWithScopes` is given.
pub async fn create(
    State(state): State<AppState>,
    wire: Wire,
    TrustedService { caller, body }: TrustedService<CreateBody>,
) -> Result<Response, ApiError> {
    let result = async {
        let body = body?;
        let kind = body.kind.unwrap_or_default();
        let name = body
            .name
            .as_deref()
            .map(|n| IdentityName::parse(n, kind))
            .transpose()?;
        let request = match &body.create_token_with_scopes {
            Some(scopes) => Some(TokenRequest::parse(
                wire,
                scopes,
                body.expires_in_minutes,
                body.session_minutes,
                body.actor.as_deref(),
            )?),
            None if body.expires_in_minutes.is_some()
                || body.session_minutes.is_some()
                || body.actor.is_some() =>
            {
                return Err(ApiError::bad_request(
                    "NoScopes",
                    "expiresInMinutes, sessionMinutes and actor need createTokenWithScopes",
                ));
            }
            None => None,
        };
        let actor = match &request {
            Some(request) => acting(&state, &caller.account, request).await?,
            None => None,
        };
        let identity = create_identity(&state, &caller, name, kind).await?;
        let answer = match &request {
            Some(request) => {
                let (identity, token) =
                    issue_to(&state, &caller, &identity.id, request, actor.as_ref()).await?;
                CreatedIdentity {
                    identity: view(&identity),
                    access_token: Some(token),
                }
            }
            None => CreatedIdentity {
                identity: view(&identity),
                access_token: None,
            },
        };
        Ok((StatusCode::CREATED, Json(answer)).into_response())
    }
    .await;
    audited(&state, &caller, action::IDENTITY_CREATE, "", result).await
}

/// Body of `POST /identities/{id}/:issueAccessToken`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IssueBody {
    scopes: Vec<String>,
    expires_in_minutes: Option<i64>,
    session_minutes: Option<i64>,
    actor: Option<String>,
}

/// `POST /identities/{id}/:issueAccessToken`: 200 `{"token","expiresOn"}`.
pub async fn issue(
    State(state): State<AppState>,
    wire: Wire,
    Path(raw_id): Path<String>,
    TrustedService { caller, body }: TrustedService<IssueBody>,
) -> Result<Response, ApiError> {
    let result = async {
        let id = own_id(&caller.account, &raw_id)?;
        let body = body?;
        let request = TokenRequest::parse(
            wire,
            &body.scopes,
            body.expires_in_minutes,
            body.session_minutes,
            body.actor.as_deref(),
        )?;
        let actor = acting(&state, &caller.account, &request).await?;
        let (_, token) = issue_to(&state, &caller, &id, &request, actor.as_ref()).await?;
        Ok(Json(token).into_response())
    }
    .await;
    audited(&state, &caller, action::USER_TOKEN_ISSUE, &raw_id, result).await
}

/// Body of `POST /identities/:issueAccessToken`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IssueByNameBody {
    name: String,
    kind: Option<IdentityKind>,
    scopes: Vec<String>,
    expires_in_minutes: Option<i64>,
    session_minutes: Option<i64>,
    actor: Option<String>,
}

/// `POST /identities/:issueAccessToken` (Tessera): a token for the identity with this name, created first if
/// there is none (201), else 200; `{"identity":{…},"accessToken":{…}}`.
pub async fn issue_by_name(
    State(state): State<AppState>,
    wire: Wire,
    TrustedService { caller, body }: TrustedService<IssueByNameBody>,
) -> Result<Response, ApiError> {
    let result = async {
        let body = body?;
        let kind = body.kind.unwrap_or_default();
        let name = IdentityName::parse(&body.name, kind)?;
        let request = TokenRequest::parse(
            wire,
            &body.scopes,
            body.expires_in_minutes,
            body.session_minutes,
            body.actor.as_deref(),
        )?;
        let actor = acting(&state, &caller.account, &request).await?;
        let (identity, created) = match state.store.identity_by_name(caller.account.id, &name).await? {
            Some(existing) => (existing, false),
            None => match create_identity(&state, &caller, Some(name.clone()), kind).await {
                Ok(identity) => (identity, true),
                // Another request created it meanwhile.
                Err(e) if e.status() == StatusCode::CONFLICT => (
                    state
                        .store
                        .identity_by_name(caller.account.id, &name)
                        .await?
                        .ok_or(e)?,
                    false,
                ),
                Err(e) => return Err(e),
            },
        };
        if body.kind.is_some_and(|k| k != identity.kind) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "IdentityKindMismatch",
                format!("the identity named {:?} is of another kind", name.as_str()),
            ));
        }
        let (identity, token) = issue_to(&state, &caller, &identity.id, &request, actor.as_ref()).await?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok((
            status,
            Json(IdentityWithToken {
                identity: view(&identity),
                access_token: token,
            }),
        )
            .into_response())
    }
    .await;
    audited(&state, &caller, action::USER_TOKEN_ISSUE, "", result).await
}

/// `POST /identities/{id}/:revokeAccessTokens`: 204; every token issued to the identity so far is dead.
pub async fn revoke(
    State(state): State<AppState>,
    _: Wire,
    Path(raw_id): Path<String>,
    TrustedService { caller, .. }: TrustedService<Value>,
) -> Result<Response, ApiError> {
    let result = async {
        let id = own_id(&caller.account, &raw_id)?;
        let identity = state
            .store
            .revoke_identity_tokens(&id)
            .await
            .not_found_as(|| not_found(&id))?;
        state
            .event(&caller.actor(), action::IDENTITY_REVOKE, id.as_str())
            .details(json!({"revocation": identity.revocation}))
            .record()
            .await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    audited(&state, &caller, action::IDENTITY_REVOKE, &raw_id, result).await
}

/// `DELETE /identities/{id}`: 204; the identity's tokens die with it and its name is free again.
pub async fn delete(
    State(state): State<AppState>,
    _: Wire,
    Path(raw_id): Path<String>,
    TrustedService { caller, .. }: TrustedService<Value>,
) -> Result<Response, ApiError> {
    let result = async {
        let id = own_id(&caller.account, &raw_id)?;
        state
            .store
            .delete_identity(&id, state.clock.now())
            .await
            .not_found_as(|| not_found(&id))?;
        state
            .event(&caller.actor(), action::IDENTITY_DELETE, id.as_str())
            .record()
            .await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    audited(&state, &caller, action::IDENTITY_DELETE, &raw_id, result).await
}

/// `GET /identities/{id}` (Tessera): the identity.
pub async fn read(
    State(state): State<AppState>,
    _: Wire,
    Path(raw_id): Path<String>,
    TrustedService { caller, .. }: TrustedService<Value>,
) -> Result<Response, ApiError> {
    let id = own_id(&caller.account, &raw_id)?;
    Ok(Json(view(&live(&state, &caller.account, &id).await?)).into_response())
}

/// Query of `GET /identities`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    name: Option<String>,
    kind: Option<IdentityKind>,
    max_page_size: Option<u32>,
    continuation_token: Option<String>,
}

/// `GET /identities` (Tessera): `?name=` looks one identity up; otherwise a page of the account's identities in
/// id order, `{"value":[…],"nextLink":…}` (no `nextLink` on the last page).
pub async fn list(
    State(state): State<AppState>,
    wire: Wire,
    ApiQuery(query): ApiQuery<ListQuery>,
    TrustedService { caller, .. }: TrustedService<Value>,
) -> Result<Response, ApiError> {
    let account = &caller.account;
    if let Some(name) = &query.name {
        let name = IdentityName::parse(name, query.kind.unwrap_or_default())?;
        let found = state.store.identity_by_name(account.id, &name).await?;
        return Ok(Json(json!({"value": found.iter().map(view).collect::<Vec<_>>()})).into_response());
    }
    let limit = query.max_page_size.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let after = query
        .continuation_token
        .as_deref()
        .map(|t| own_id(account, t))
        .transpose()
        .map_err(|_| ApiError::bad_request("InvalidContinuationToken", "continuationToken is not valid"))?;
    let page = state
        .store
        .list_identities(account.id, after.as_ref(), limit)
        .await?;
    let mut answer = json!({"value": page.iter().map(view).collect::<Vec<_>>()});
    if let Some(last) = page.last().filter(|_| page.len() == limit as usize) {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(v) = wire.api_version {
            query.append_pair("api-version", v);
        }
        query
            .append_pair("maxPageSize", &limit.to_string())
            .append_pair("continuationToken", last.id.as_str());
        answer["nextLink"] = format!("{}/identities?{}", wire.dialect.prefix(), query.finish()).into();
    }
    Ok(Json(answer).into_response())
}
