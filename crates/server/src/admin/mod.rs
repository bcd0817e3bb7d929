//! The operator's API, authenticated by the admin key. Accounts are addressed ARM-style, by their resource id
//! under `/admin`, with actions as trailing segments:
//!
//! | method | path | does |
//! |---|---|---|
//! | PUT | `/admin/subscriptions/…/accounts/{name}` | create (201, with both keys shown once) |
//! | GET | `/admin/subscriptions/…/accounts/{name}` | read |
//! | POST | `…/listKeys` | key slots and when each was set (keys are stored hashed and never shown again) |
//! | POST | `…/regenerateKey` `{"keyName":"key1"}` | new key for a slot, shown once |
//! | PUT | `…/limitedAccess` `{"featureFlags":[…]}` | replace approved flags |
//! | PUT | `…/isv` `{"featureFlags":[…]}` | make an ISV for flags it holds (re-enables a cut-off ISV) |
//! | POST | `…/isv/cutOff` | cut the ISV off: its live tokens stop working |
//! | POST | `…/disable`, `…/enable` | disable or re-enable the account |
//! | POST | `…/revokeUserTokens` | revoke every user token of the account's identities issued so far, and with them every device session |
//! | GET | `/admin/accounts?after=&limit=` | list |
//! | GET | `/admin/audit?actor=&action=&subject=&outcome=&isv=&since=&until=&after=&limit=` | audit events |
//! | GET | `/admin/audit/checkpoints?after=&limit=` | the signed checkpoints of the audit chain's head, to anchor elsewhere |
//! | GET | `/admin/keys`, POST `/admin/keys/rotate` | signing keys; rotation |

use crate::http::audit_page::audit_page;
use crate::http::auth::{Admin, access_key_aad};
use crate::http::error::ApiError;
use crate::http::extract::ApiQuery;
use crate::platform::secrets::new_secret;
use crate::platform::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tessera_core::audit::{Outcome, action};
use tessera_core::secret::KeyHash;
use tessera_core::{
    Account, AccountKind, FlagSet, IsvGrant, KeyGenerations, KeySlot, ResourceId, Timestamp, policy,
};
use tessera_store::{AccountChange, AuditQuery, NewKey};
use tessera_wire::admin::{
    AccountKeys, AccountListQuery, AccountPage, AccountView, AuditFilter, Checkpoint, CheckpointPage,
    CheckpointQuery, CreateAccount, CreatedAccount, FeatureFlags, KeyRotation, KeySlotName, KeySlots,
    RegenerateKey, RegeneratedKey, SigningKey, SigningKeys,
};

/// The operator's routes over `state`.
pub(crate) fn routes(state: AppState) -> Router {
    Router::new()
        .route(
            "/admin/subscriptions/{*rest}",
            get(account_route).put(account_route).post(account_route),
        )
        .route("/admin/accounts", get(list_accounts))
        .route("/admin/audit", get(audit))
        .route("/admin/audit/checkpoints", get(audit_checkpoints))
        .route("/admin/keys", get(keys))
        .route("/admin/keys/rotate", post(rotate_keys))
        .with_state(state)
}

const ADMIN: &str = "admin";

/// `PUT|GET|POST /admin/subscriptions/{*rest}`: an account and its actions. A refused change is audited.
pub async fn account_route(
    State(state): State<AppState>,
    _: Admin,
    method: Method,
    Path(rest): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let is_read = method == Method::GET;
    let result = account_action(&state, method, &rest, &body).await;
    if let Err(e) = &result
        && !is_read
    {
        let subject = format!("/subscriptions/{}", rest.chars().take(512).collect::<String>());
        state
            .event(ADMIN, action::ADMIN_REFUSED, &subject)
            .denied()
            .details(serde_json::json!({"code": e.code(), "status": e.status().as_u16()}))
            .record()
            .await?;
    }
    result
}

async fn account_action(
    state: &AppState,
    method: Method,
    rest: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let full = format!("/subscriptions/{rest}");
    let segments: Vec<&str> = full.trim_start_matches('/').splitn(9, '/').collect();
    let (id_part, action_part) = match segments.len() {
        9 => (segments[..8].join("/"), segments[8]),
        _ => (segments.join("/"), ""),
    };
    let resource_id = ResourceId::parse(&format!("/{id_part}"))?;
    match (method, action_part) {
        (Method::PUT, "") => create_account(state, resource_id, body).await,
        (Method::GET, "") => {
            Ok(axum::Json(AccountView::of(load(state, &resource_id).await?)).into_response())
        }
        (Method::POST, "listKeys") => list_keys(state, &resource_id).await,
        (Method::POST, "regenerateKey") => regenerate_key(state, &resource_id, body).await,
        (Method::PUT, "limitedAccess") => {
            let flags = parse_flags(body)?;
            change(
                state,
                &resource_id,
                AccountChange::ApprovedFlags(flags),
                action::ACCOUNT_APPROVE,
            )
            .await
        }
        (Method::PUT, "isv") => {
            let flags = parse_flags(body)?;
            let account = load(state, &resource_id).await?;
            policy::authorize_isv_grant(&account, flags)?;
            let grant = Some(IsvGrant {
                flags,
                cut_off_at: None,
            });
            change(state, &resource_id, AccountChange::Isv(grant), action::ISV_GRANT).await
        }
        (Method::POST, "isv/cutOff") => {
            let account = load(state, &resource_id).await?;
            let Some(grant) = account.isv else {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "NotAnIsv",
                    "this account is not an ISV",
                ));
            };
            let cut = IsvGrant {
                cut_off_at: Some(grant.cut_off_at.unwrap_or(state.clock.now())),
                ..grant
            };
            change(
                state,
                &resource_id,
                AccountChange::Isv(Some(cut)),
                action::ISV_CUT_OFF,
            )
            .await
        }
        (Method::POST, "disable") => {
            change(
                state,
                &resource_id,
                AccountChange::Disabled(true),
                action::ACCOUNT_DISABLE,
            )
            .await
        }
        (Method::POST, "revokeUserTokens") => {
            change(
                state,
                &resource_id,
                AccountChange::RevokeUserTokens,
                action::ACCOUNT_REVOKE_USER_TOKENS,
            )
            .await
        }
        (Method::POST, "enable") => {
            change(
                state,
                &resource_id,
                AccountChange::Disabled(false),
                action::ACCOUNT_ENABLE,
            )
            .await
        }
        (m, a) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "UnknownAdminOperation",
            format!(
                "no admin operation {m} {}",
                if a.is_empty() { "<account>" } else { a }
            ),
        )),
    }
}

async fn load(state: &AppState, id: &ResourceId) -> Result<Account, ApiError> {
    state
        .store
        .account(id)
        .await?
        .ok_or_else(|| ApiError::not_found("ResourceNotFound", "no account has this resource id"))
}

fn json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request("InvalidRequestBody", e.to_string()))
}

fn parse_flags(body: &[u8]) -> Result<FlagSet, ApiError> {
    Ok(FlagSet::parse(&json::<FeatureFlags>(body)?.feature_flags)?)
}

async fn create_account(
    state: &AppState,
    resource_id: ResourceId,
    body: &[u8],
) -> Result<Response, ApiError> {
    let body: CreateAccount = if body.is_empty() {
        CreateAccount::default()
    } else {
        json(body)?
    };
    let now = state.clock.now();
    let account = Account {
        id: uuid::Uuid::new_v4(),
        resource_id,
        approved_flags: FlagSet::parse(&body.approved_feature_flags)?,
        isv: None,
        disabled: false,
        tokens_revoked_at: None,
        isv_tokens_revoked_at: None,
        user_tokens_revoked_at: None,
        key_generations: KeyGenerations::default(),
        created_at: now,
    };
    let (key1, stored1) = new_key(state, &account, KeySlot::Key1)?;
    let (key2, stored2) = new_key(state, &account, KeySlot::Key2)?;
    state
        .store
        .create_account(&account, &[stored1, stored2], now)
        .await?;
    state
        .event(ADMIN, action::ACCOUNT_CREATE, account.resource_id.as_str())
        .details(serde_json::json!({"id": account.id, "kind": account.kind(), "approvedFlags": account.approved_flags}))
        .record()
        .await?;
    let answer = CreatedAccount {
        connection_string: (account.kind() == AccountKind::Communication)
            .then(|| connection_string(state, &account, &key1)),
        view: AccountView::of(account),
        keys: AccountKeys { key1, key2 },
    };
    Ok((StatusCode::CREATED, axum::Json(answer)).into_response())
}

/// A new random key for `slot`, and what the store keeps of it: its hash, and for a Communication account the
/// key itself sealed under the master key (ACS HMAC verification needs it).
fn new_key(state: &AppState, account: &Account, slot: KeySlot) -> Result<(String, NewKey), ApiError> {
    let key = new_secret("").map_err(|e| ApiError::internal(&e))?;
    let sealed = match account.kind() {
        AccountKind::Communication => Some(
            state
                .keys
                .master()
                .seal(access_key_aad(account.id, slot).as_bytes(), key.as_bytes())
                .map_err(|e| ApiError::internal(&e))?,
        ),
        AccountKind::Face => None,
    };
    let stored = NewKey {
        slot,
        hash: KeyHash::of(&key),
        sealed,
    };
    Ok((key, stored))
}

/// The ACS connection string for a Communication account's key: its own endpoint
/// ([`crate::platform::config::Config::acs_endpoint`]) and the key.
fn connection_string(state: &AppState, account: &Account, key: &str) -> String {
    let endpoint = state
        .config
        .acs_endpoint(state.keys.current().issuer(), account.id);
    format!("endpoint={endpoint}/;accesskey={key}")
}

async fn list_keys(state: &AppState, id: &ResourceId) -> Result<Response, ApiError> {
    load(state, id).await?;
    Ok(axum::Json(KeySlots {
        keys: KeySlot::ALL
            .iter()
            .map(|s| KeySlotName {
                key_name: s.as_str().to_owned(),
            })
            .collect(),
        note: "keys are stored hashed and shown only when created or regenerated; use regenerateKey to get a new one"
            .to_owned(),
    })
    .into_response())
}

async fn regenerate_key(state: &AppState, id: &ResourceId, body: &[u8]) -> Result<Response, ApiError> {
    let body: RegenerateKey = json(body)?;
    let slot = KeySlot::from_name(&body.key_name)
        .ok_or_else(|| ApiError::bad_request("InvalidKeyName", "keyName must be key1 or key2"))?;
    let account = load(state, id).await?;
    let (key, stored) = new_key(state, &account, slot)?;
    state
        .store
        .set_account_key(account.id, &stored, state.clock.now())
        .await?;
    state
        .event(ADMIN, action::ACCOUNT_REGENERATE_KEY, id.as_str())
        .details(serde_json::json!({"keyName": slot.as_str()}))
        .record()
        .await?;
    let answer = RegeneratedKey {
        key_name: slot.as_str().to_owned(),
        connection_string: (account.kind() == AccountKind::Communication)
            .then(|| connection_string(state, &account, &key)),
        key,
    };
    Ok(axum::Json(answer).into_response())
}

async fn change(
    state: &AppState,
    id: &ResourceId,
    change: AccountChange,
    act: &str,
) -> Result<Response, ApiError> {
    let account = load(state, id).await?;
    if matches!(
        change,
        AccountChange::Disabled(false) | AccountChange::Isv(Some(IsvGrant { cut_off_at: None, .. }))
    ) {
        settle_revocations(state, &account).await;
    }
    let updated = state
        .store
        .update_account(account.id, &change, state.clock.now())
        .await?;
    if matches!(change, AccountChange::RevokeUserTokens) {
        // Answered once the revocation's second is over, so that the tokens issued next live.
        settle_revocations(state, &updated).await;
    }
    let details = match &change {
        AccountChange::ApprovedFlags(f) => serde_json::json!({"approvedFlags": f}),
        AccountChange::Isv(g) => serde_json::json!({"isv": g}),
        AccountChange::Disabled(d) => serde_json::json!({"disabled": d}),
        AccountChange::RevokeUserTokens => {
            serde_json::json!({"userTokensRevokedAt": updated.user_tokens_revoked_at})
        }
    };
    let isv = matches!(change, AccountChange::Isv(_)).then_some(id.as_str());
    state
        .event(ADMIN, act, id.as_str())
        .details(details)
        .isv(isv)
        .record()
        .await?;
    Ok(axum::Json(AccountView::of(updated)).into_response())
}

/// Waits out the second of the account's latest revocation (at most a second), so that no token minted after a
/// re-enable or re-grant carries that second's `iat` and is born dead (`Account::revoked_token` fails closed).
async fn settle_revocations(state: &AppState, account: &Account) {
    if let Some(settled) = account.revocations_settle_at() {
        let wait = (settled.millis() - state.clock.now().millis()).clamp(0, 1000);
        tokio::time::sleep(std::time::Duration::from_millis(wait.unsigned_abs())).await;
    }
}

/// `GET /admin/accounts`.
pub async fn list_accounts(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(q): ApiQuery<AccountListQuery>,
) -> Result<Response, ApiError> {
    let after = q.after.as_deref().map(ResourceId::parse).transpose()?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let accounts = state.store.list_accounts(after.as_ref(), limit).await?;
    let next = (accounts.len() == limit as usize)
        .then(|| accounts.last().map(|a| a.resource_id.to_string()))
        .flatten();
    Ok(axum::Json(AccountPage {
        value: accounts.into_iter().map(AccountView::of).collect(),
        next_after: next,
    })
    .into_response())
}

fn time_filter(name: &str, v: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    v.map(|s| {
        Timestamp::parse_rfc3339(s)
            .ok_or_else(|| ApiError::bad_request("InvalidQuery", format!("{name} must be an RFC 3339 time")))
    })
    .transpose()
}

/// `GET /admin/audit`.
pub async fn audit(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(f): ApiQuery<AuditFilter>,
) -> Result<Response, ApiError> {
    let outcome = f
        .outcome
        .as_deref()
        .map(|o| {
            Outcome::from_name(o)
                .ok_or_else(|| ApiError::bad_request("InvalidQuery", "outcome must be success or denied"))
        })
        .transpose()?;
    let query = AuditQuery {
        actor: f.actor,
        action: f.action,
        subject: f.subject,
        outcome,
        isv: f.isv,
        since: time_filter("since", f.since.as_deref())?,
        until: time_filter("until", f.until.as_deref())?,
        after_seq: f.after.unwrap_or(0),
        limit: f.limit.unwrap_or(100),
    };
    Ok(axum::Json(audit_page(&state, &query).await?).into_response())
}

/// `GET /admin/keys`: published signing keys (public halves and states).
pub async fn keys(State(state): State<AppState>, _: Admin) -> Result<Response, ApiError> {
    let stored = state.store.signing_keys().await?;
    let keys: Vec<_> = stored
        .iter()
        .map(|k| SigningKey {
            kid: k.kid.clone(),
            state: k.state.as_str().to_owned(),
            created_at: k.created_at,
            activated_at: k.activated_at,
            retired_at: k.retired_at,
        })
        .collect();
    Ok(axum::Json(SigningKeys { keys }).into_response())
}

/// `POST /admin/keys/rotate`.
pub async fn rotate_keys(State(state): State<AppState>, _: Admin) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let rotation = state.keys.rotate(now).await.map_err(|e| match e {
        crate::platform::keyring::KeysError::Store(s) => ApiError::from(s),
        other => ApiError::internal(&other),
    })?;
    let rotated = KeyRotation {
        activated: rotation.promote,
        retired: rotation.retire,
        published: rotation.new_pending.kid,
    };
    state
        .event(ADMIN, action::KEYS_ROTATE, "signing-keys")
        .details(serde_json::to_value(&rotated).map_err(|e| ApiError::internal(&e))?)
        .record()
        .await?;
    Ok(axum::Json(rotated).into_response())
}

/// `GET /admin/audit/checkpoints?after=&limit=`: the signed checkpoints of the audit chain's head, oldest first
/// (`{"value": [{"seq", "head", "token", "createdAt"}], "nextAfter"}`), to be kept somewhere the database's
/// owner cannot reach; each `token` verifies with the JWKS.
pub async fn audit_checkpoints(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(q): ApiQuery<CheckpointQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let checkpoints = state.store.audit_checkpoints(q.after.unwrap_or(0), limit).await?;
    let next = (checkpoints.len() == limit as usize)
        .then(|| checkpoints.last().map(|c| c.seq))
        .flatten();
    let value = checkpoints
        .into_iter()
        .map(|c| Checkpoint {
            seq: c.seq,
            head: c.head,
            token: c.token,
            created_at: c.created_at.to_rfc3339(),
        })
        .collect();
    Ok(axum::Json(CheckpointPage {
        value,
        next_after: next,
    })
    .into_response())
}
