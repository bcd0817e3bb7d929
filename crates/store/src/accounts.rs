//! Account statements both backends run as they are.

/// Counts one more setting of the key slot `$1` of the account `$2` (an STS token minted with the slot's earlier
/// key then no longer stands: `tessera_core::Account::minted_by_current_key`).
pub(crate) const BUMP_KEY_GENERATION: &str = "UPDATE accounts
     SET key1_generation = key1_generation + CASE WHEN $1 = 'key1' THEN 1 ELSE 0 END,
         key2_generation = key2_generation + CASE WHEN $1 = 'key2' THEN 1 ELSE 0 END
     WHERE id = $2";
