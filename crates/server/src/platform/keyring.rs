//! The node's view of the signing keys. The database is the truth: every node reloads the keys every
//! `key_refresh` and at once when a token names a `kid` it does not know, so a rotation made on one node reaches
//! all of them without any node-local state.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tessera_core::Timestamp;
use tessera_core::claims::TokenType;
use tessera_store::{Store, StoreError};
use tessera_token::keys::bootstrap;
use tessera_token::{KeyRing, MasterKey, Rotation, TokenError};

/// Longest lifetime of any token Tessera signs, seconds: a retired key stays published this long (plus the
/// refresh period, so every node has stopped signing with it).
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 86_400;
/// Fewest milliseconds between two reloads triggered by unknown `kid`s (so forged kids cannot hammer the store).
const UNKNOWN_KID_RELOAD_GAP: Duration = Duration::from_secs(1);

/// Why keys could not be loaded or changed.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// Store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Crypto or sealing failure.
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// Signing keys shared by every request on this node.
pub struct Keys {
    ring: RwLock<Arc<KeyRing>>,
    master: MasterKey,
    issuer: String,
    store: Arc<dyn Store>,
    last_forced_reload: Mutex<Option<Instant>>,
    retire_grace_secs: i64,
}

impl Keys {
    /// Loads the keys, creating the first pair if the database has none.
    pub async fn open(
        store: Arc<dyn Store>,
        master: MasterKey,
        issuer: &str,
        refresh: Duration,
        now: Timestamp,
    ) -> Result<Self, KeysError> {
        if store.signing_keys().await?.is_empty() {
            store.bootstrap_signing_keys(&bootstrap(&master, now)?).await?;
        }
        let stored = store.signing_keys().await?;
        let ring = KeyRing::load(issuer, &master, &stored)?;
        Ok(Self {
            ring: RwLock::new(Arc::new(ring)),
            master,
            issuer: issuer.to_owned(),
            store,
            last_forced_reload: Mutex::new(None),
            retire_grace_secs: MAX_TOKEN_LIFETIME_SECS + i64::try_from(refresh.as_secs()).unwrap_or(300) + 60,
        })
    }

    /// The master key, to seal other secrets (Communication access keys) the same way as the signing keys.
    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// The current ring.
    pub fn current(&self) -> Arc<KeyRing> {
        self.ring.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Rereads the keys from the database.
    pub async fn reload(&self) -> Result<(), KeysError> {
        let stored = self.store.signing_keys().await?;
        let ring = KeyRing::load(&self.issuer, &self.master, &stored)?;
        *self.ring.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ring);
        Ok(())
    }

    /// Verifies a token, reloading once if it names a key this node has not seen yet.
    pub async fn verify<C: TokenType>(&self, token: &str, now: Timestamp) -> Result<C, TokenError> {
        match self.current().verify::<C>(token, now) {
            Err(TokenError::UnknownKey) if self.may_force_reload() => {
                if let Err(e) = self.reload().await {
                    tracing::warn!(error = %e, "signing key reload failed");
                }
                self.current().verify::<C>(token, now)
            }
            other => other,
        }
    }

    fn may_force_reload(&self) -> bool {
        let mut last = self.last_forced_reload.lock().unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= UNKNOWN_KID_RELOAD_GAP);
        if due {
            *last = Some(Instant::now());
        }
        due
    }

    /// Rotates: the published pending key starts signing, the active one retires, a new pending key is published.
    pub async fn rotate(&self, now: Timestamp) -> Result<Rotation, KeysError> {
        let stored = self.store.signing_keys().await?;
        let rotation = Rotation::plan(&stored, &self.master, now)?;
        self.store.rotate_signing_keys(&rotation, now).await?;
        self.reload().await?;
        Ok(rotation)
    }

    /// Periodic upkeep: drop retired keys whose tokens have all expired, then reload.
    pub async fn maintain(&self, now: Timestamp) -> Result<(), KeysError> {
        let stored = self.store.signing_keys().await?;
        let removable = KeyRing::removable(&stored, now, self.retire_grace_secs);
        if !removable.is_empty() {
            tracing::info!(kids = ?removable, "removing retired signing keys whose tokens have all expired");
            self.store.remove_signing_keys(&removable).await?;
        }
        self.reload().await
    }
}
