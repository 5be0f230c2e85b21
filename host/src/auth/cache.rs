//! Verified-token cache: a token verified once is not RSA-verified again
//! until it expires.
//!
//! Keyed by the SHA-256 of the token (the token itself is never stored),
//! bounded in entries, and an entry never outlives the token's `exp` or the
//! key-set generation it was verified against.

use crate::principal::Principal;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

struct Entry {
    principal: Arc<Principal>,
    /// Unix seconds; the entry is dead from this second on.
    expires_at: u64,
    /// Key-set generation the token was verified with.
    generation: u64,
}

/// The cache.
pub struct TokenCache {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    capacity: usize,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens (0 disables caching).
    pub fn new(capacity: usize) -> Self {
        Self { entries: Mutex::new(HashMap::new()), capacity }
    }

    /// The principal of a token verified earlier, if still valid.
    pub fn get(&self, digest: &[u8; 32], now: u64, generation: u64) -> Option<Arc<Principal>> {
        let mut entries = self.entries.lock().expect("token cache lock");
        match entries.get(digest) {
            Some(e) if e.expires_at > now && e.generation == generation => Some(e.principal.clone()),
            Some(_) => {
                entries.remove(digest);
                None
            }
            None => None,
        }
    }

    /// Remember a verified token until `expires_at`.
    pub fn insert(
        &self,
        digest: [u8; 32],
        principal: Arc<Principal>,
        expires_at: u64,
        now: u64,
        generation: u64,
    ) {
        if self.capacity == 0 || expires_at <= now {
            return;
        }
        let mut entries = self.entries.lock().expect("token cache lock");
        if entries.len() >= self.capacity && !entries.contains_key(&digest) {
            entries.retain(|_, e| e.expires_at > now && e.generation == generation);
            if entries.len() >= self.capacity {
                // Still full of live tokens: drop a tenth, arbitrary ones.
                let evict: Vec<[u8; 32]> = entries.keys().take(self.capacity / 10 + 1).copied().collect();
                for key in evict {
                    entries.remove(&key);
                }
            }
        }
        entries.insert(digest, Entry { principal, expires_at, generation });
    }

    /// Number of cached tokens.
    pub fn len(&self) -> usize {
        self.entries.lock().expect("token cache lock").len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal() -> Arc<Principal> {
        Arc::new(Principal::anonymous())
    }

    #[test]
    fn entries_die_at_exp_and_on_new_key_generations() {
        let cache = TokenCache::new(10);
        cache.insert([1; 32], principal(), 100, 50, 1);
        assert!(cache.get(&[1; 32], 99, 1).is_some());
        assert!(cache.get(&[1; 32], 99, 2).is_none(), "a new key set invalidates");
        cache.insert([1; 32], principal(), 100, 50, 1);
        assert!(cache.get(&[1; 32], 100, 1).is_none(), "dead at exp");
        assert!(cache.is_empty());
    }

    #[test]
    fn stays_within_capacity() {
        let cache = TokenCache::new(100);
        for i in 0..1000u32 {
            let mut digest = [0; 32];
            digest[..4].copy_from_slice(&i.to_le_bytes());
            cache.insert(digest, principal(), 1_000, 0, 1);
            assert!(cache.len() <= 100);
        }
    }

    #[test]
    fn never_caches_expired_tokens_or_when_disabled() {
        let cache = TokenCache::new(10);
        cache.insert([2; 32], principal(), 10, 10, 1);
        assert!(cache.is_empty());
        let disabled = TokenCache::new(0);
        disabled.insert([3; 32], principal(), 100, 0, 1);
        assert!(disabled.is_empty());
    }
}
