//! Account statements both backends run as they are.

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
