//! An exact, write-through cache of accounts for a store that is the only writer of its database (SQLite, whose
//! file [`crate::sqlite::SqliteStore`] locks against other processes).
//!
//! Only hits are cached (a flood of unknown keys cannot fill it). Every account write invalidates the whole
//! cache when it finishes, through [`AccountCache::invalidate_on_drop`], so a caller that saw the write return
//! never reads the old value. A generation number closes the race with reads in flight: a read records the
//! generation before it goes to the database and its result is cached only if no write finished meanwhile.

use std::collections::HashMap;
use std::sync::Mutex;
use tessera_core::secret::KeyHash;
use tessera_core::{Account, KeySlot};

/// Most entries per map; past it the map is cleared (accounts are few, keys two per account).
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Default)]
struct Maps {
    generation: u64,
    by_resource_id: HashMap<String, Account>,
    by_key: HashMap<[u8; 32], (Account, KeySlot)>,
}

/// The cache.
#[derive(Debug, Default)]
pub(crate) struct AccountCache(Mutex<Maps>);

/// Invalidates the cache when dropped.
pub(crate) struct Invalidate<'a>(&'a AccountCache);

impl Drop for Invalidate<'_> {
    fn drop(&mut self) {
        let mut maps = self.0.lock();
        maps.generation += 1;
        maps.by_resource_id.clear();
        maps.by_key.clear();
    }
}

impl AccountCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The generation to pass to the `put_*` calls that follow a database read.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Guard to hold across an account write.
    pub(crate) fn invalidate_on_drop(&self) -> Invalidate<'_> {
        Invalidate(self)
    }

    pub(crate) fn by_resource_id(&self, resource_id: &str) -> Option<Account> {
        self.lock().by_resource_id.get(resource_id).cloned()
    }

    pub(crate) fn by_key(&self, key: &KeyHash) -> Option<(Account, KeySlot)> {
        self.lock().by_key.get(&key.0).cloned()
    }

    pub(crate) fn put_resource_id(&self, generation: u64, account: &Account) {
        let mut maps = self.lock();
        if maps.generation == generation {
            if maps.by_resource_id.len() >= MAX_ENTRIES {
                maps.by_resource_id.clear();
            }
            maps.by_resource_id
                .insert(account.resource_id.to_string(), account.clone());
        }
    }

    pub(crate) fn put_key(&self, generation: u64, key: &KeyHash, found: &(Account, KeySlot)) {
        let mut maps = self.lock();
        if maps.generation == generation {
            if maps.by_key.len() >= MAX_ENTRIES {
                maps.by_key.clear();
            }
            maps.by_key.insert(key.0, found.clone());
        }
    }
}
