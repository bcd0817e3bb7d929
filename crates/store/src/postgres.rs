//! The PostgreSQL backend, for any number of Tessera processes sharing one database.
//!
//! Behaviour mirrors the SQLite backend, method for method, and both pass the one store suite. Most statements
//! are the same text but for placeholders (`$N` here, `?` there); what differs is the dialect: `= ANY($1)` over an
//! array where SQLite reads `json_each`, `FOR UPDATE` row locks where SQLite's write lock already serialises,
//! `BOOLEAN` and `BYTEA` columns, typed NULLs, and the locks below. What SQLite gets from its single database-wide write lock, PostgreSQL gets from
//! transaction-scoped advisory locks: an audit append holds [`AUDIT_LOCK`] from before it reads the chain head
//! until it commits, so appends from every node are serialised and the chain never forks; signing-key bootstrap
//! and rotation hold [`SIGNING_KEYS_LOCK`], so two nodes starting (or rotating) at once do not both write keys.
//! Transactions run at PostgreSQL's default READ COMMITTED level, where each statement sees everything committed
//! before it started, so a head read after taking the lock is the real head.
//!
//! Resource ids and key ids are `COLLATE "C"` columns (byte order, as in SQLite), so that account paging does
//! not depend on the database's locale and still uses the unique index.

use crate::{
    AccountChange, Audience, AuditQuery, MAX_AUDIT_PAGE, NewKey, ReadReceipt, Result, SealedAccessKey, Store,
    StoreError, ThreadChange, accounts, chat, rows,
};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::collections::BTreeMap;
use std::time::Duration;
use tessera_core::audit::{Event, GENESIS_HASH, Head, NewEvent};
use tessera_core::chat::{ChatEvent, ChatEventKind, Message, NewMessage, Participant, Thread, ThreadId};
use tessera_core::face::{
    Detection, GroupId, LargeFaceList, LargePersonGroup, ListFace, PersistedFace, Person, Training,
};
use tessera_core::identity::{Identity, IdentityId, IdentityName};
use tessera_core::secret::KeyHash;
use tessera_core::session::{EndReason, Session};
use tessera_core::{Account, KeySlot, ResourceId, Timestamp};
use tessera_token::{Rotation, StoredKey};
use uuid::Uuid;

/// Advisory lock key held (per transaction) by every audit append: `"TSRAUDIT"` as an `i64`.
pub const AUDIT_LOCK: i64 = 0x5453_5241_5544_4954;
/// Advisory lock key held (per transaction) by signing-key bootstrap and rotation: `"TSRKEYS!"` as an `i64`.
pub const SIGNING_KEYS_LOCK: i64 = 0x5453_524B_4559_5321;

/// Most connections a store keeps open.
const MAX_CONNECTIONS: u32 = 16;

/// A PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PgStore {
    /// Connects to and migrates the database at `url` (`postgres://…`). Migrations take PostgreSQL's migration
    /// lock, so several nodes may start at once.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn setting(&self, name: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn insert_setting_if_absent(&self, name: &str, value: &str) -> Result<bool> {
        let done =
            sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(value)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn create_account(&self, account: &Account, keys: &[NewKey], now: Timestamp) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO accounts (id, resource_id, kind, approved_flags, isv_flags, isv_cut_off_at, disabled, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(account.id.to_string())
        .bind(account.resource_id.as_str())
        .bind(account.kind().as_str())
        .bind(rows::flags_to_db(account.approved_flags))
        .bind(account.isv.map(|g| rows::flags_to_db(g.flags)))
        .bind(account.isv.and_then(|g| g.cut_off_at).map(Timestamp::millis))
        .bind(account.disabled)
        .bind(account.created_at.millis())
        .bind(now.millis())
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::unique(e, "an account with this resource id exists"))?;
        for key in keys {
            sqlx::query(
                "INSERT INTO account_keys (account_id, slot, key_hash, sealed_key, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(account.id.to_string())
            .bind(key.slot.as_str())
            .bind(key.hash.to_hex())
            .bind(key.sealed.as_deref())
            .bind(now.millis())
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::unique(e, "key collision"))?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn account(&self, resource_id: &ResourceId) -> Result<Option<Account>> {
        let row = sqlx::query("SELECT * FROM accounts WHERE resource_id = $1")
            .bind(resource_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::account).transpose()
    }

    async fn account_by_key(&self, key: &KeyHash) -> Result<Option<(Account, KeySlot)>> {
        let row = sqlx::query(
            "SELECT a.*, k.slot, k.key_hash FROM account_keys k JOIN accounts a ON a.id = k.account_id WHERE k.key_hash = $1",
        )
        .bind(key.to_hex())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let stored: String = sqlx::Row::try_get(&row, "key_hash")?;
        if !KeyHash::from_hex(&stored).is_some_and(|h| h.matches(key)) {
            return Ok(None);
        }
        Ok(Some((rows::account(&row)?, rows::slot(&row)?)))
    }

    async fn list_accounts(&self, after: Option<&ResourceId>, limit: u32) -> Result<Vec<Account>> {
        let rows = sqlx::query("SELECT * FROM accounts WHERE resource_id > $1 ORDER BY resource_id LIMIT $2")
            .bind(after.map_or("", ResourceId::as_str))
            .bind(i64::from(limit.min(1000)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::account).collect()
    }

    async fn update_account(&self, id: Uuid, change: &AccountChange, now: Timestamp) -> Result<Account> {
        let id = id.to_string();
        let query = match change {
            AccountChange::ApprovedFlags(flags) => sqlx::query(
                "UPDATE accounts SET approved_flags = $1, updated_at = $2 WHERE id = $3 RETURNING *",
            )
            .bind(rows::flags_to_db(*flags)),
            AccountChange::Isv(grant) => sqlx::query(
                "UPDATE accounts SET isv_flags = $1, isv_cut_off_at = $2, \
                 isv_tokens_revoked_at = COALESCE($2, isv_tokens_revoked_at), updated_at = $3 WHERE id = $4 RETURNING *",
            )
            .bind(grant.map(|g| rows::flags_to_db(g.flags)))
            .bind(grant.and_then(|g| g.cut_off_at).map(Timestamp::millis)),
            AccountChange::Disabled(disabled) => sqlx::query(
                "UPDATE accounts SET disabled = $1, \
                 tokens_revoked_at = CASE WHEN $1 THEN $2 ELSE tokens_revoked_at END, updated_at = $2 \
                 WHERE id = $3 RETURNING *",
            )
            .bind(*disabled),
            AccountChange::RevokeUserTokens => sqlx::query(
                "UPDATE accounts SET user_tokens_revoked_at = $1, updated_at = $1 WHERE id = $2 RETURNING *",
            ),
        };
        let row = query
            .bind(now.millis())
            .bind(&id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(rows::account)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("account {id}")))
    }

    async fn set_account_key(&self, id: Uuid, key: &NewKey, now: Timestamp) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE account_keys SET key_hash = $1, sealed_key = $2, created_at = $3 WHERE account_id = $4 AND slot = $5",
        )
        .bind(key.hash.to_hex())
        .bind(key.sealed.as_deref())
        .bind(now.millis())
        .bind(id.to_string())
        .bind(key.slot.as_str())
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::unique(e, "key collision"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("account {id}")));
        }
        sqlx::query(accounts::BUMP_KEY_GENERATION)
            .bind(key.slot.as_str())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn access_keys(&self) -> Result<Vec<SealedAccessKey>> {
        let rows = sqlx::query(accounts::ACCESS_KEYS).fetch_all(&self.pool).await?;
        rows.iter().map(rows::sealed_access_key).collect()
    }

    async fn access_keys_of(&self, id: Uuid) -> Result<Vec<SealedAccessKey>> {
        let rows = sqlx::query(accounts::ACCESS_KEYS_OF)
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::sealed_access_key).collect()
    }

    async fn signing_keys(&self) -> Result<Vec<StoredKey>> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::signing_key).collect()
    }

    async fn bootstrap_signing_keys(&self, keys: &[StoredKey]) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        advisory_lock(&mut tx, SIGNING_KEYS_LOCK).await?;
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys")
            .fetch_one(&mut *tx)
            .await?;
        if existing > 0 {
            return Ok(false);
        }
        for key in keys {
            insert_key(&mut tx, key).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn rotate_signing_keys(&self, rotation: &Rotation, now: Timestamp) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        advisory_lock(&mut tx, SIGNING_KEYS_LOCK).await?;
        if let Some(kid) = &rotation.promote {
            let done = sqlx::query(
                "UPDATE signing_keys SET state = 'active', activated_at = $1 WHERE kid = $2 AND state = 'pending'",
            )
            .bind(now.millis())
            .bind(kid)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict(
                    "another rotation promoted the pending key first".into(),
                ));
            }
        }
        for kid in &rotation.retire {
            sqlx::query(
                "UPDATE signing_keys SET state = 'retired', retired_at = $1 WHERE kid = $2 AND state = 'active'",
            )
            .bind(now.millis())
            .bind(kid)
            .execute(&mut *tx)
            .await?;
        }
        insert_key(&mut tx, &rotation.new_pending).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn remove_signing_keys(&self, kids: &[String]) -> Result<()> {
        sqlx::query("DELETE FROM signing_keys WHERE kid = ANY($1) AND state = 'retired'")
            .bind(kids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_identity(&self, identity: &Identity) -> Result<()> {
        sqlx::query(
            "INSERT INTO identities (id, account_id, name, kind, created_at, revocation, deleted_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(identity.id.as_str())
        .bind(identity.id.account().to_string())
        .bind(identity.name.as_ref().map(IdentityName::as_str))
        .bind(rows::kind_to_db(identity.kind))
        .bind(identity.created_at.millis())
        .bind(identity.revocation)
        .bind(identity.deleted_at.map(Timestamp::millis))
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::unique(e, "an identity with this name exists"))?;
        Ok(())
    }

    async fn identity(&self, id: &IdentityId) -> Result<Option<Identity>> {
        let row = sqlx::query("SELECT * FROM identities WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::identity).transpose()
    }

    async fn identity_by_name(&self, account: Uuid, name: &IdentityName) -> Result<Option<Identity>> {
        let row = sqlx::query(
            "SELECT * FROM identities WHERE account_id = $1 AND name = $2 AND deleted_at IS NULL",
        )
        .bind(account.to_string())
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rows::identity).transpose()
    }

    async fn list_identities(
        &self,
        account: Uuid,
        after: Option<&IdentityId>,
        limit: u32,
    ) -> Result<Vec<Identity>> {
        let rows = sqlx::query(
            "SELECT * FROM identities WHERE account_id = $1 AND id > $2 AND deleted_at IS NULL ORDER BY id LIMIT $3",
        )
        .bind(account.to_string())
        .bind(after.map_or("", IdentityId::as_str))
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::identity).collect()
    }

    async fn revoke_identity_tokens(&self, id: &IdentityId) -> Result<Identity> {
        let row = sqlx::query(
            "UPDATE identities SET revocation = revocation + 1 WHERE id = $1 AND deleted_at IS NULL RETURNING *",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(rows::identity)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("identity {id}")))
    }

    async fn delete_identity(&self, id: &IdentityId, now: Timestamp) -> Result<()> {
        let done = sqlx::query(
            "UPDATE identities SET deleted_at = $1, revocation = revocation + 1 WHERE id = $2 AND deleted_at IS NULL",
        )
        .bind(now.millis())
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("identity {id}")));
        }
        Ok(())
    }

    async fn create_session(&self, session: &Session, secret: &KeyHash) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO refresh_sessions (id, identity_id, created_at, expires_at, token_lifetime_minutes, generation)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&session.id)
        .bind(session.identity.as_str())
        .bind(session.created_at.millis())
        .bind(session.expires_at.millis())
        .bind(session.token_lifetime_minutes)
        .bind(session.generation)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::unique(e, "a session with this id exists"))?;
        insert_secret(&mut tx, &session.id, session.generation, secret).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session(&self, id: &str) -> Result<Option<Session>> {
        let row = sqlx::query("SELECT * FROM refresh_sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::session).transpose()
    }

    async fn refresh_secret(&self, secret: &KeyHash) -> Result<Option<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT session_id, generation FROM refresh_secrets WHERE secret_hash = $1")
                .bind(secret.to_hex())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn advance_session(&self, id: &str, generation: i64, secret: &KeyHash) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE refresh_sessions SET generation = generation + 1
             WHERE id = $1 AND generation = $2 AND ended_at IS NULL",
        )
        .bind(id)
        .bind(generation)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(false);
        }
        insert_secret(&mut tx, id, generation + 1, secret).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn end_session(&self, id: &str, reason: EndReason, now: Timestamp) -> Result<()> {
        sqlx::query(
            "UPDATE refresh_sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL",
        )
        .bind(now.millis())
        .bind(reason.as_str())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn create_group(&self, group: &LargePersonGroup) -> Result<()> {
        sqlx::query(
            "INSERT INTO large_person_groups (account_id, group_id, name, user_data, recognition_model, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(group.account.to_string())
        .bind(group.id.as_str())
        .bind(&group.name)
        .bind(group.user_data.as_deref())
        .bind(&group.recognition_model)
        .bind(group.created_at.millis())
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::unique(e, "a large person group with this id exists"))?;
        Ok(())
    }

    async fn group(&self, account: Uuid, id: &GroupId) -> Result<Option<LargePersonGroup>> {
        let row = sqlx::query("SELECT * FROM large_person_groups WHERE account_id = $1 AND group_id = $2")
            .bind(account.to_string())
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::group).transpose()
    }

    async fn list_groups(
        &self,
        account: Uuid,
        after: Option<&GroupId>,
        limit: u32,
    ) -> Result<Vec<LargePersonGroup>> {
        let rows = sqlx::query(
            "SELECT * FROM large_person_groups WHERE account_id = $1 AND group_id > $2 ORDER BY group_id LIMIT $3",
        )
        .bind(account.to_string())
        .bind(after.map_or("", GroupId::as_str))
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::group).collect()
    }

    async fn update_group(
        &self,
        account: Uuid,
        id: &GroupId,
        name: &str,
        user_data: Option<&str>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE large_person_groups SET name = $1, user_data = $2 WHERE account_id = $3 AND group_id = $4",
        )
        .bind(name)
        .bind(user_data)
        .bind(account.to_string())
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "large person group {}",
                id.as_str()
            )));
        }
        Ok(())
    }

    async fn delete_group(&self, account: Uuid, id: &GroupId) -> Result<()> {
        let done = sqlx::query("DELETE FROM large_person_groups WHERE account_id = $1 AND group_id = $2")
            .bind(account.to_string())
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "large person group {}",
                id.as_str()
            )));
        }
        Ok(())
    }

    async fn create_person(&self, person: &Person) -> Result<()> {
        sqlx::query(
            "INSERT INTO face_persons (id, account_id, group_id, name, user_data, created_at)
             SELECT $1, $2, $3, $4, $5, $6
             WHERE EXISTS (SELECT 1 FROM large_person_groups WHERE account_id = $2 AND group_id = $3)",
        )
        .bind(person.id.to_string())
        .bind(person.account.to_string())
        .bind(person.group.as_str())
        .bind(&person.name)
        .bind(person.user_data.as_deref())
        .bind(person.created_at.millis())
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::unique(e, "a person with this id exists"))
        .and_then(|done| match done.rows_affected() {
            0 => Err(StoreError::NotFound(format!(
                "large person group {}",
                person.group.as_str()
            ))),
            _ => Ok(()),
        })
    }

    async fn person(&self, account: Uuid, group: &GroupId, id: Uuid) -> Result<Option<Person>> {
        let row =
            sqlx::query("SELECT * FROM face_persons WHERE id = $1 AND account_id = $2 AND group_id = $3")
                .bind(id.to_string())
                .bind(account.to_string())
                .bind(group.as_str())
                .fetch_optional(&self.pool)
                .await?;
        let person = row.as_ref().map(rows::person).transpose()?;
        Ok(
            with_face_ids(&self.pool, account, group, person.into_iter().collect())
                .await?
                .pop(),
        )
    }

    async fn list_persons(
        &self,
        account: Uuid,
        group: &GroupId,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Person>> {
        let rows = sqlx::query(
            "SELECT * FROM face_persons WHERE account_id = $1 AND group_id = $2 AND id > $3 ORDER BY id LIMIT $4",
        )
        .bind(account.to_string())
        .bind(group.as_str())
        .bind(after.map(|a| a.to_string()).unwrap_or_default())
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        let persons = rows.iter().map(rows::person).collect::<Result<_>>()?;
        with_face_ids(&self.pool, account, group, persons).await
    }

    async fn update_person(
        &self,
        account: Uuid,
        group: &GroupId,
        id: Uuid,
        name: &str,
        user_data: Option<&str>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE face_persons SET name = $1, user_data = $2 WHERE id = $3 AND account_id = $4 AND group_id = $5",
        )
        .bind(name)
        .bind(user_data)
        .bind(id.to_string())
        .bind(account.to_string())
        .bind(group.as_str())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("person {id}")));
        }
        Ok(())
    }

    async fn delete_person(&self, account: Uuid, group: &GroupId, id: Uuid) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        count_removal(&mut tx, account, group).await?;
        let done =
            sqlx::query("DELETE FROM face_persons WHERE id = $1 AND account_id = $2 AND group_id = $3")
                .bind(id.to_string())
                .bind(account.to_string())
                .bind(group.as_str())
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("person {id}")));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn train_group(&self, account: Uuid, group: &GroupId, now: Timestamp) -> Result<Training> {
        let row = sqlx::query(
            "UPDATE large_person_groups SET training_generation = training_generation + 1, trained_at = $1
             WHERE account_id = $2 AND group_id = $3 RETURNING training_generation, trained_at, removals",
        )
        .bind(now.millis())
        .bind(account.to_string())
        .bind(group.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(rows::training)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("large person group {}", group.as_str())))
    }

    async fn trained_templates(
        &self,
        account: Uuid,
        group: &GroupId,
        generation: i64,
    ) -> Result<Vec<(Uuid, Vec<f32>)>> {
        let rows = sqlx::query(
            "SELECT person_id, template FROM persisted_faces
             WHERE account_id = $1 AND group_id = $2 AND enrolled_generation < $3 ORDER BY person_id, id",
        )
        .bind(account.to_string())
        .bind(group.as_str())
        .bind(generation)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::person_template).collect()
    }

    async fn save_detection(&self, detection: &Detection) -> Result<()> {
        sqlx::query(
            "INSERT INTO face_detections (id, account_id, recognition_model, template, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(detection.id.to_string())
        .bind(detection.account.to_string())
        .bind(&detection.recognition_model)
        .bind(rows::template_to_db(&detection.template))
        .bind(detection.created_at.millis())
        .bind(detection.expires_at.millis())
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::unique(e, "a detected face with this id exists"))?;
        Ok(())
    }

    async fn detections(&self, account: Uuid, ids: &[Uuid], now: Timestamp) -> Result<Vec<Detection>> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let rows = sqlx::query(
            "SELECT * FROM face_detections WHERE id = ANY($1) AND account_id = $2 AND expires_at > $3",
        )
        .bind(&ids)
        .bind(account.to_string())
        .bind(now.millis())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::detection).collect()
    }

    async fn purge_detections(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM face_detections WHERE expires_at <= $1")
            .bind(now.millis())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn add_persisted_face(&self, face: &PersistedFace) -> Result<()> {
        // FOR SHARE: a concurrent training waits for this enrolment to commit, or this enrolment reads the
        // generation that training wrote, so a face is never recorded under a generation already trained.
        let done = sqlx::query(
            "INSERT INTO persisted_faces
                 (id, person_id, account_id, group_id, template, user_data, created_at, enrolled_generation)
             SELECT $1, $2, $3, $4, $5, $6, $7, g.training_generation
             FROM face_persons p
             JOIN large_person_groups g ON g.account_id = p.account_id AND g.group_id = p.group_id
             WHERE p.id = $2 AND p.account_id = $3 AND p.group_id = $4
             FOR SHARE OF g",
        )
        .bind(face.id.to_string())
        .bind(face.person.to_string())
        .bind(face.account.to_string())
        .bind(face.group.as_str())
        .bind(rows::template_to_db(&face.template))
        .bind(face.user_data.as_deref())
        .bind(face.created_at.millis())
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::unique(e, "a persisted face with this id exists"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("person {}", face.person)));
        }
        Ok(())
    }

    async fn delete_persisted_face(
        &self,
        account: Uuid,
        group: &GroupId,
        person: Uuid,
        id: Uuid,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        count_removal(&mut tx, account, group).await?;
        let done = sqlx::query(
            "DELETE FROM persisted_faces WHERE id = $1 AND person_id = $2 AND account_id = $3 AND group_id = $4",
        )
        .bind(id.to_string())
        .bind(person.to_string())
        .bind(account.to_string())
        .bind(group.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("persisted face {id}")));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn persisted_faces(
        &self,
        account: Uuid,
        group: &GroupId,
        person: Option<Uuid>,
    ) -> Result<Vec<PersistedFace>> {
        let rows = sqlx::query(
            "SELECT * FROM persisted_faces WHERE account_id = $1 AND group_id = $2 AND ($3 = '' OR person_id = $3)
             ORDER BY person_id, id",
        )
        .bind(account.to_string())
        .bind(group.as_str())
        .bind(person.map(|p| p.to_string()).unwrap_or_default())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::persisted_face).collect()
    }

    async fn create_face_list(&self, list: &LargeFaceList) -> Result<()> {
        sqlx::query(
            "INSERT INTO large_face_lists (account_id, list_id, name, user_data, recognition_model, created_at, trained_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(list.account.to_string())
        .bind(list.id.as_str())
        .bind(&list.name)
        .bind(list.user_data.as_deref())
        .bind(&list.recognition_model)
        .bind(list.created_at.millis())
        .bind(list.trained_at.map(Timestamp::millis))
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::unique(e, "a large face list with this id exists"))?;
        Ok(())
    }

    async fn face_list(&self, account: Uuid, id: &GroupId) -> Result<Option<LargeFaceList>> {
        let row = sqlx::query("SELECT * FROM large_face_lists WHERE account_id = $1 AND list_id = $2")
            .bind(account.to_string())
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::face_list).transpose()
    }

    async fn list_face_lists(
        &self,
        account: Uuid,
        after: Option<&GroupId>,
        limit: u32,
    ) -> Result<Vec<LargeFaceList>> {
        let rows = sqlx::query(
            "SELECT * FROM large_face_lists WHERE account_id = $1 AND list_id > $2 ORDER BY list_id LIMIT $3",
        )
        .bind(account.to_string())
        .bind(after.map_or("", GroupId::as_str))
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::face_list).collect()
    }

    async fn update_face_list(
        &self,
        account: Uuid,
        id: &GroupId,
        name: &str,
        user_data: Option<&str>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE large_face_lists SET name = $1, user_data = $2 WHERE account_id = $3 AND list_id = $4",
        )
        .bind(name)
        .bind(user_data)
        .bind(account.to_string())
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("large face list {}", id.as_str())));
        }
        Ok(())
    }

    async fn delete_face_list(&self, account: Uuid, id: &GroupId) -> Result<()> {
        let done = sqlx::query("DELETE FROM large_face_lists WHERE account_id = $1 AND list_id = $2")
            .bind(account.to_string())
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("large face list {}", id.as_str())));
        }
        Ok(())
    }

    async fn train_face_list(&self, account: Uuid, id: &GroupId, now: Timestamp) -> Result<()> {
        let done =
            sqlx::query("UPDATE large_face_lists SET trained_at = $1 WHERE account_id = $2 AND list_id = $3")
                .bind(now.millis())
                .bind(account.to_string())
                .bind(id.as_str())
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("large face list {}", id.as_str())));
        }
        Ok(())
    }

    async fn add_list_face(&self, face: &ListFace) -> Result<()> {
        // FOR KEY SHARE: a concurrent deletion of the list waits for this insert, or this insert finds no list
        // (NotFound rather than a foreign-key violation).
        let done = sqlx::query(
            "INSERT INTO large_face_list_faces (id, account_id, list_id, template, user_data, created_at)
             SELECT $1, $2, $3, $4, $5, $6 FROM large_face_lists WHERE account_id = $2 AND list_id = $3
             FOR KEY SHARE",
        )
        .bind(face.id.to_string())
        .bind(face.account.to_string())
        .bind(face.list.as_str())
        .bind(rows::template_to_db(&face.template))
        .bind(face.user_data.as_deref())
        .bind(face.created_at.millis())
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::unique(e, "a persisted face with this id exists"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "large face list {}",
                face.list.as_str()
            )));
        }
        Ok(())
    }

    async fn delete_list_face(&self, account: Uuid, list: &GroupId, id: Uuid) -> Result<()> {
        let done = sqlx::query(
            "DELETE FROM large_face_list_faces WHERE id = $1 AND account_id = $2 AND list_id = $3",
        )
        .bind(id.to_string())
        .bind(account.to_string())
        .bind(list.as_str())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("persisted face {id}")));
        }
        Ok(())
    }

    async fn list_faces(
        &self,
        account: Uuid,
        list: &GroupId,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ListFace>> {
        let rows = sqlx::query(
            "SELECT * FROM large_face_list_faces WHERE account_id = $1 AND list_id = $2 AND id > $3
             ORDER BY id LIMIT $4",
        )
        .bind(account.to_string())
        .bind(list.as_str())
        .bind(after.map(|a| a.to_string()).unwrap_or_default())
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::list_face).collect()
    }

    async fn create_thread(
        &self,
        thread: &Thread,
        participants: &[Participant],
        repeatability: Option<&str>,
    ) -> Result<Thread> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO chat_threads (id, account_id, topic, created_by, created_at, repeatability_id)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(thread.id.as_str())
        .bind(thread.account.to_string())
        .bind(&thread.topic)
        .bind(thread.created_by.as_str())
        .bind(thread.created_at.millis())
        .bind(repeatability)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            drop(tx);
            let e = StoreError::unique(e, "a chat thread with this id exists");
            // The same creation repeated (or raced): the first one's thread is the answer.
            if let (StoreError::Conflict(_), Some(key)) = (&e, repeatability) {
                let earlier = sqlx::query(
                    "SELECT * FROM chat_threads WHERE account_id = $1 AND created_by = $2 AND repeatability_id = $3",
                )
                .bind(thread.account.to_string())
                .bind(thread.created_by.as_str())
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(row) = earlier {
                    return rows::thread(&row);
                }
            }
            return Err(e);
        }
        add_participants(&mut tx, &thread.id, participants, thread.created_at).await?;
        tx.commit().await?;
        Ok(thread.clone())
    }

    async fn thread(&self, account: Uuid, id: &ThreadId) -> Result<Option<Thread>> {
        let row = sqlx::query(
            "SELECT * FROM chat_threads WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL",
        )
        .bind(id.as_str())
        .bind(account.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rows::thread).transpose()
    }

    async fn delete_thread(&self, account: Uuid, id: &ThreadId, now: Timestamp) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE chat_threads SET deleted_at = $3 WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL",
        )
        .bind(id.as_str())
        .bind(account.to_string())
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("chat thread {id}")));
        }
        insert_event(
            &mut tx,
            id,
            ChatEventKind::ChatThreadDeleted,
            None,
            None,
            None,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn threads_of(
        &self,
        identity: &IdentityId,
        after: Option<(Timestamp, &ThreadId)>,
        since: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<Thread>> {
        // Without a page position every thread is before (i64::MAX, "").
        let (after_at, after_id) = after.map_or((i64::MAX, ""), |(at, id)| (at.millis(), id.as_str()));
        let rows = sqlx::query(
            "SELECT t.* FROM chat_threads t JOIN chat_participants p ON p.thread_id = t.id
             WHERE p.identity_id = $1 AND t.deleted_at IS NULL
               AND COALESCE(t.last_message_at, t.created_at) >= $2
               AND (COALESCE(t.last_message_at, t.created_at) < $3
                    OR (COALESCE(t.last_message_at, t.created_at) = $3 AND t.id < $4))
             ORDER BY COALESCE(t.last_message_at, t.created_at) DESC, t.id DESC LIMIT $5",
        )
        .bind(identity.as_str())
        .bind(since.map_or(i64::MIN, Timestamp::millis))
        .bind(after_at)
        .bind(after_id)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::thread).collect()
    }

    async fn participant(&self, thread: &ThreadId, identity: &IdentityId) -> Result<Option<Participant>> {
        let row = sqlx::query("SELECT * FROM chat_participants WHERE thread_id = $1 AND identity_id = $2")
            .bind(thread.as_str())
            .bind(identity.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::participant).transpose()
    }

    async fn participants(&self, thread: &ThreadId, skip: u32, limit: u32) -> Result<Vec<Participant>> {
        let rows = sqlx::query(
            "SELECT * FROM chat_participants WHERE thread_id = $1 ORDER BY added_at, identity_id LIMIT $2 OFFSET $3",
        )
        .bind(thread.as_str())
        .bind(i64::from(limit.clamp(1, 1000)))
        .bind(i64::from(skip))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::participant).collect()
    }

    async fn post(
        &self,
        thread: &ThreadId,
        change: &ThreadChange,
        message: &NewMessage,
        now: Timestamp,
    ) -> Result<Message> {
        let mut tx = self.pool.begin().await?;
        let counters = sqlx::query(
            "SELECT last_message_id, last_sequence_id FROM chat_threads WHERE id = $1 AND deleted_at IS NULL
             FOR UPDATE",
        )
        .bind(thread.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("chat thread {thread}")))?;
        let posted = chat::posting(
            thread,
            counters.try_get("last_message_id")?,
            counters.try_get("last_sequence_id")?,
            message,
            now,
        )?;
        apply_change(&mut tx, thread, change, now).await?;
        insert_message(&mut tx, &posted).await?;
        insert_event(
            &mut tx,
            thread,
            ChatEventKind::MessageReceived,
            Some(posted.id),
            change.removed(),
            None,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(posted)
    }

    async fn message(&self, thread: &ThreadId, id: u64) -> Result<Option<Message>> {
        let row = sqlx::query("SELECT * FROM chat_messages WHERE thread_id = $1 AND id = $2")
            .bind(thread.as_str())
            .bind(rows::u64_to_db(id))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::message).transpose()
    }

    async fn messages(
        &self,
        thread: &ThreadId,
        before: Option<u64>,
        since: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<Message>> {
        let rows = sqlx::query(
            "SELECT * FROM chat_messages WHERE thread_id = $1 AND id < $2 AND created_at >= $3
             ORDER BY id DESC LIMIT $4",
        )
        .bind(thread.as_str())
        .bind(before.map_or(i64::MAX, rows::u64_to_db))
        .bind(since.map_or(i64::MIN, Timestamp::millis))
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::message).collect()
    }

    async fn edit_message(
        &self,
        thread: &ThreadId,
        id: u64,
        content: &str,
        metadata: Option<&BTreeMap<String, String>>,
        now: Timestamp,
    ) -> Result<Message> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT * FROM chat_messages WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE",
        )
        .bind(thread.as_str())
        .bind(rows::u64_to_db(id))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("message {id}")))?;
        let edited = chat::edited(rows::message(&row)?, content, metadata, now);
        save_edit(&mut tx, &edited).await?;
        insert_event(
            &mut tx,
            thread,
            ChatEventKind::MessageEdited,
            Some(id),
            None,
            None,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(edited)
    }

    async fn delete_message(&self, thread: &ThreadId, id: u64, now: Timestamp) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE chat_messages SET deleted_at = $3, content = '{}'
             WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(thread.as_str())
        .bind(rows::u64_to_db(id))
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("message {id}")));
        }
        insert_event(
            &mut tx,
            thread,
            ChatEventKind::MessageDeleted,
            Some(id),
            None,
            None,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn save_read_receipt(
        &self,
        thread: &ThreadId,
        identity: &IdentityId,
        message: u64,
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO chat_read_receipts (thread_id, identity_id, message_id, read_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (thread_id, identity_id) DO UPDATE SET message_id = excluded.message_id, read_at = excluded.read_at",
        )
        .bind(thread.as_str())
        .bind(identity.as_str())
        .bind(rows::u64_to_db(message))
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        let kind = ChatEventKind::ReadReceiptReceived;
        insert_event(&mut tx, thread, kind, Some(message), Some(identity), None, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn read_receipts(&self, thread: &ThreadId, skip: u32, limit: u32) -> Result<Vec<ReadReceipt>> {
        let rows = sqlx::query(
            "SELECT * FROM chat_read_receipts WHERE thread_id = $1 ORDER BY identity_id LIMIT $2 OFFSET $3",
        )
        .bind(thread.as_str())
        .bind(i64::from(limit.clamp(1, 1000)))
        .bind(i64::from(skip))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::read_receipt).collect()
    }

    async fn record_typing(
        &self,
        thread: &ThreadId,
        identity: &IdentityId,
        display_name: Option<&str>,
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let kind = ChatEventKind::TypingIndicatorReceived;
        insert_event(&mut tx, thread, kind, None, Some(identity), display_name, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn chat_events_after(&self, after: i64, limit: u32) -> Result<Vec<ChatEvent>> {
        let rows = sqlx::query("SELECT * FROM chat_events WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(i64::from(limit.clamp(1, 10_000)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::chat_event).collect()
    }

    async fn chat_events_for(&self, identity: &IdentityId, after: i64, limit: u32) -> Result<Vec<ChatEvent>> {
        let rows = sqlx::query(chat::EVENTS_FOR)
            .bind(identity.as_str())
            .bind(after)
            .bind(i64::from(limit.clamp(1, 10_000)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::chat_event).collect()
    }

    async fn chat_audience(&self, thread: &ThreadId) -> Result<Option<Audience>> {
        let rows = sqlx::query(chat::AUDIENCE)
            .bind(thread.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows::audience(&rows)
    }

    async fn last_chat_event(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM chat_events")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("seq")?)
    }

    async fn purge_chat_events(&self, before: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM chat_events WHERE created_at < $1")
            .bind(before.millis())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn append_audit(&self, events: Vec<NewEvent>) -> Result<Vec<Event>> {
        let mut tx = self.pool.begin().await?;
        advisory_lock(&mut tx, AUDIT_LOCK).await?;
        let head_row: Option<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let mut head = match head_row {
            Some((seq, hash)) => Head {
                seq,
                hash: hash
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("audit hash length".into()))?,
            },
            None => Head {
                seq: 0,
                hash: GENESIS_HASH,
            },
        };
        let sealed: Vec<Event> = events.into_iter().map(|new| head.seal(new)).collect();
        if !sealed.is_empty() {
            // One statement for the whole batch: a column-wise array per field, zipped back into rows by UNNEST.
            let n = sealed.len();
            let mut cols = AuditColumns::with_capacity(n);
            for e in &sealed {
                cols.push(e);
            }
            sqlx::query(
                "INSERT INTO audit_events (seq, at, actor, action, subject, outcome, details, isv, prev_hash, hash)
                 SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[],
                                      $7::TEXT[], $8::TEXT[], $9::BYTEA[], $10::BYTEA[])",
            )
            .bind(cols.seq)
            .bind(cols.at)
            .bind(cols.actor)
            .bind(cols.action)
            .bind(cols.subject)
            .bind(cols.outcome)
            .bind(cols.details)
            .bind(cols.isv)
            .bind(cols.prev_hash)
            .bind(cols.hash)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(sealed)
    }

    async fn audit_head(&self) -> Result<Head> {
        let row: Option<(i64, Vec<u8>)> = sqlx::query_as(accounts::AUDIT_HEAD)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(Head::EMPTY),
            Some((seq, hash)) => Ok(Head {
                seq,
                hash: hash
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("an audit hash is not 32 bytes".into()))?,
            }),
        }
    }

    async fn add_audit_checkpoint(&self, checkpoint: &crate::AuditCheckpoint) -> Result<()> {
        sqlx::query(accounts::ADD_CHECKPOINT)
            .bind(checkpoint.seq)
            .bind(&checkpoint.head)
            .bind(&checkpoint.token)
            .bind(checkpoint.created_at.millis())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn audit_checkpoints(&self, after: i64, limit: u32) -> Result<Vec<crate::AuditCheckpoint>> {
        let rows = sqlx::query(accounts::CHECKPOINTS)
            .bind(after)
            .bind(i64::from(limit.clamp(1, 1000)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::checkpoint).collect()
    }

    async fn latest_audit_checkpoint(&self) -> Result<Option<crate::AuditCheckpoint>> {
        let row = sqlx::query(accounts::LATEST_CHECKPOINT)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::checkpoint).transpose()
    }

    async fn audit_events(&self, q: &AuditQuery) -> Result<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_events
             WHERE seq > $1 AND ($2::TEXT IS NULL OR actor = $2) AND ($3::TEXT IS NULL OR action = $3)
               AND ($4::TEXT IS NULL OR subject = $4) AND ($5::TEXT IS NULL OR outcome = $5)
               AND ($6::TEXT IS NULL OR isv = $6)
               AND ($7::BIGINT IS NULL OR at >= $7) AND ($8::BIGINT IS NULL OR at < $8)
             ORDER BY seq LIMIT $9",
        )
        .bind(q.after_seq)
        .bind(&q.actor)
        .bind(&q.action)
        .bind(&q.subject)
        .bind(q.outcome.map(|o| o.as_str()))
        .bind(&q.isv)
        .bind(q.since.map(Timestamp::millis))
        .bind(q.until.map(Timestamp::millis))
        .bind(i64::from(q.limit.clamp(1, MAX_AUDIT_PAGE)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::event).collect()
    }
}

/// Takes a transaction-scoped advisory lock, released when `tx` commits or rolls back.
async fn advisory_lock(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, key: i64) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Counts a removal in a group, in the transaction that removes a face or person. It comes first so that every
/// removal locks the group's row before the face's or person's, in the order an enrolment takes them (the group's
/// row `FOR SHARE`, then the person's for the foreign key): the other order can deadlock with an enrolment.
async fn count_removal(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    account: Uuid,
    group: &GroupId,
) -> Result<()> {
    sqlx::query(
        "UPDATE large_person_groups SET removals = removals + 1 WHERE account_id = $1 AND group_id = $2",
    )
    .bind(account.to_string())
    .bind(group.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Fills in the enrolled face ids of persons of a group (in id order), with one query over their id range.
async fn with_face_ids(
    pool: &PgPool,
    account: Uuid,
    group: &GroupId,
    mut persons: Vec<Person>,
) -> Result<Vec<Person>> {
    let (Some(first), Some(last)) = (persons.first(), persons.last()) else {
        return Ok(persons);
    };
    let faces = sqlx::query(
        "SELECT person_id, id FROM persisted_faces
         WHERE account_id = $1 AND group_id = $2 AND person_id BETWEEN $3 AND $4 ORDER BY person_id, id",
    )
    .bind(account.to_string())
    .bind(group.as_str())
    .bind(first.id.to_string())
    .bind(last.id.to_string())
    .fetch_all(pool)
    .await?;
    rows::attach_face_ids(&mut persons, &faces)?;
    Ok(persons)
}

/// A batch of sealed audit events, column by column, for a multi-row insert.
struct AuditColumns {
    seq: Vec<i64>,
    at: Vec<i64>,
    actor: Vec<String>,
    action: Vec<String>,
    subject: Vec<String>,
    outcome: Vec<&'static str>,
    details: Vec<String>,
    isv: Vec<Option<String>>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}

impl AuditColumns {
    fn with_capacity(n: usize) -> Self {
        Self {
            seq: Vec::with_capacity(n),
            at: Vec::with_capacity(n),
            actor: Vec::with_capacity(n),
            action: Vec::with_capacity(n),
            subject: Vec::with_capacity(n),
            outcome: Vec::with_capacity(n),
            details: Vec::with_capacity(n),
            isv: Vec::with_capacity(n),
            prev_hash: Vec::with_capacity(n),
            hash: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, e: &Event) {
        self.seq.push(e.seq);
        self.at.push(e.at.millis());
        self.actor.push(e.actor.clone());
        self.action.push(e.action.clone());
        self.subject.push(e.subject.clone());
        self.outcome.push(e.outcome.as_str());
        self.details.push(e.details.clone());
        self.isv.push(e.isv.clone());
        self.prev_hash.push(e.prev_hash.to_vec());
        self.hash.push(e.hash.to_vec());
    }
}

async fn insert_key(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, key: &StoredKey) -> Result<()> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, state, created_at, activated_at, retired_at, public_key, sealed_private)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&key.kid)
    .bind(key.state.as_str())
    .bind(key.created_at.millis())
    .bind(key.activated_at.map(Timestamp::millis))
    .bind(key.retired_at.map(Timestamp::millis))
    .bind(&key.public_key)
    .bind(&key.sealed_private)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_secret(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    session: &str,
    generation: i64,
    secret: &KeyHash,
) -> Result<()> {
    sqlx::query("INSERT INTO refresh_secrets (secret_hash, session_id, generation) VALUES ($1, $2, $3)")
        .bind(secret.to_hex())
        .bind(session)
        .bind(generation)
        .execute(&mut **tx)
        .await
        .map_err(|e| StoreError::unique(e, "this refresh secret exists"))?;
    Ok(())
}

/// Adds `participants` to `thread`; one already in it keeps its admission (display name and history window:
/// see `tessera_core::chat::admitted_window`). `LimitReached` if the thread would pass
/// [`MAX_PARTICIPANTS`](tessera_core::chat::MAX_PARTICIPANTS).
async fn add_participants(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    thread: &ThreadId,
    participants: &[Participant],
    now: Timestamp,
) -> Result<()> {
    for p in participants {
        sqlx::query(
            "INSERT INTO chat_participants (thread_id, identity_id, display_name, share_history_from, added_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (thread_id, identity_id) DO NOTHING",
        )
        .bind(thread.as_str())
        .bind(p.identity.as_str())
        .bind(p.display_name.as_deref())
        .bind(p.share_history_from.map(Timestamp::millis))
        .bind(now.millis())
        .execute(&mut **tx)
        .await?;
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM chat_participants WHERE thread_id = $1")
        .bind(thread.as_str())
        .fetch_one(&mut **tx)
        .await?;
    crate::chat::within_participant_cap(count)
}

/// Applies what a posted message changes in its thread.
async fn apply_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    thread: &ThreadId,
    change: &ThreadChange,
    now: Timestamp,
) -> Result<()> {
    match change {
        ThreadChange::None => {}
        ThreadChange::Topic(topic) => {
            sqlx::query("UPDATE chat_threads SET topic = $2 WHERE id = $1")
                .bind(thread.as_str())
                .bind(topic)
                .execute(&mut **tx)
                .await?;
        }
        ThreadChange::AddParticipants(participants) => {
            add_participants(tx, thread, participants, now).await?;
        }
        ThreadChange::RemoveParticipant(identity) => {
            let done = sqlx::query("DELETE FROM chat_participants WHERE thread_id = $1 AND identity_id = $2")
                .bind(thread.as_str())
                .bind(identity.as_str())
                .execute(&mut **tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("participant {}", identity.as_str())));
            }
        }
    }
    Ok(())
}

/// Stores a posted message and moves its thread's counters to it.
async fn insert_message(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, m: &Message) -> Result<()> {
    sqlx::query(
        "INSERT INTO chat_messages (thread_id, id, sequence_id, version, kind, sender_id, sender_display_name,
                                    content, metadata, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(m.thread.as_str())
    .bind(rows::u64_to_db(m.id))
    .bind(rows::u64_to_db(m.sequence_id))
    .bind(rows::u64_to_db(m.version))
    .bind(m.body.kind.as_str())
    .bind(m.body.sender.as_ref().map(IdentityId::as_str))
    .bind(m.body.sender_display_name.as_deref())
    .bind(rows::content_to_db(&m.body.content))
    .bind(rows::metadata_to_db(&m.body.metadata))
    .bind(m.created_at.millis())
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE chat_threads SET last_message_id = $2, last_sequence_id = $3, last_message_at = $4 WHERE id = $1",
    )
    .bind(m.thread.as_str())
    .bind(rows::u64_to_db(m.id))
    .bind(rows::u64_to_db(m.sequence_id))
    .bind(m.created_at.millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores an edited message's content, metadata, version and edit time.
async fn save_edit(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, m: &Message) -> Result<()> {
    sqlx::query(
        "UPDATE chat_messages SET content = $3, metadata = $4, version = $5, edited_at = $6
         WHERE thread_id = $1 AND id = $2",
    )
    .bind(m.thread.as_str())
    .bind(rows::u64_to_db(m.id))
    .bind(rows::content_to_db(&m.body.content))
    .bind(rows::metadata_to_db(&m.body.metadata))
    .bind(rows::u64_to_db(m.version))
    .bind(m.edited_at.map(Timestamp::millis))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Appends a chat event in the transaction of the change it reports.
async fn insert_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    thread: &ThreadId,
    kind: ChatEventKind,
    message: Option<u64>,
    identity: Option<&IdentityId>,
    display_name: Option<&str>,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO chat_events (thread_id, kind, message_id, identity_id, display_name, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(thread.as_str())
    .bind(kind.as_str())
    .bind(message.map(rows::u64_to_db))
    .bind(identity.map(IdentityId::as_str))
    .bind(display_name)
    .bind(at.millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
