//! Account and audit statements both backends run as they are.

/// The chain's last event.
pub(crate) const AUDIT_HEAD: &str = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1";
/// Keeps a checkpoint `($1 seq, $2 head, $3 token, $4 created_at)`, once per `seq`.
pub(crate) const ADD_CHECKPOINT: &str = "INSERT INTO audit_checkpoints (seq, head, token, created_at)
     VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING";
/// The checkpoints after `$1`, at most `$2`.
pub(crate) const CHECKPOINTS: &str = "SELECT * FROM audit_checkpoints WHERE seq > $1 ORDER BY seq LIMIT $2";
/// The latest checkpoint.
pub(crate) const LATEST_CHECKPOINT: &str = "SELECT * FROM audit_checkpoints ORDER BY seq DESC LIMIT 1";

/// The sealed access keys of every enabled Communication account, ordered.
pub(crate) const ACCESS_KEYS: &str = "SELECT a.*, k.slot, k.sealed_key FROM account_keys k
     JOIN accounts a ON a.id = k.account_id
     WHERE a.kind = 'communication' AND NOT a.disabled AND k.sealed_key IS NOT NULL
     ORDER BY a.resource_id, k.slot";

/// The sealed access keys of the account `$1`, if it is an enabled Communication account.
pub(crate) const ACCESS_KEYS_OF: &str = "SELECT a.*, k.slot, k.sealed_key FROM account_keys k
     JOIN accounts a ON a.id = k.account_id
     WHERE a.id = $1 AND a.kind = 'communication' AND NOT a.disabled AND k.sealed_key IS NOT NULL
     ORDER BY k.slot";

/// Counts one more setting of the key slot `$1` of the account `$2` (an STS token minted with the slot's earlier
/// key then no longer stands: `tessera_core::Account::minted_by_current_key`).
pub(crate) const BUMP_KEY_GENERATION: &str = "UPDATE accounts
     SET key1_generation = key1_generation + CASE WHEN $1 = 'key1' THEN 1 ELSE 0 END,
         key2_generation = key2_generation + CASE WHEN $1 = 'key2' THEN 1 ELSE 0 END
     WHERE id = $2";
