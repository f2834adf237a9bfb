//! Credentials an authentication middleware verified recently, so that a
//! slow hash (bcrypt) is not recomputed for every request of a client.
//!
//! Entries are SHA-256 digests of a per-cache random salt, the user and the
//! password: the cache never holds a password, and its digests are useless
//! to another process. It is bounded; when full, inserting evicts a random
//! entry. A cache belongs to one middleware and one user list (it lives in
//! the shared middleware state, keyed by both), so changing a password drops
//! it.

use dashmap::DashMap;
use sha2::{Digest, Sha256};

/// Entries a cache holds at most.
pub(crate) const CAPACITY: usize = 1024;

/// A bounded set of verified credentials.
#[derive(Debug)]
pub(crate) struct CredentialCache {
    salt: [u8; 32],
    entries: DashMap<[u8; 32], ()>,
    capacity: usize,
}

impl CredentialCache {
    /// An empty cache of at most `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            salt: rand::random(),
            entries: DashMap::new(),
            capacity,
        }
    }

    /// The entry of `user` with `password`.
    pub(crate) fn key(&self, user: &[u8], password: &[u8]) -> [u8; 32] {
        Sha256::new()
            .chain_update(self.salt)
            .chain_update((user.len() as u64).to_be_bytes())
            .chain_update(user)
            .chain_update(password)
            .finalize()
            .into()
    }

    /// True when `key` was verified.
    pub(crate) fn contains(&self, key: &[u8; 32]) -> bool {
        self.entries.contains_key(key)
    }

    /// Records that `key` was verified.
    pub(crate) fn insert(&self, key: [u8; 32]) {
        let len = self.entries.len();
        if len >= self.capacity && len > 0 {
            let skip = rand::random_range(0..len);
            // The iterator (and its shard lock) is gone before `remove`.
            let victim = self.entries.iter().nth(skip).map(|entry| *entry.key());
            if let Some(victim) = victim {
                self.entries.remove(&victim);
            }
        }
        self.entries.insert(key, ());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_user_password_and_salt() {
        let cache = CredentialCache::new(4);
        let key = cache.key(b"user", b"secret");
        assert_eq!(key, cache.key(b"user", b"secret"));
        assert_ne!(key, cache.key(b"user", b"secreT"));
        // The length prefix keeps `us` + `ersecret` apart from `user` + `secret`.
        assert_ne!(key, cache.key(b"us", b"ersecret"));
        assert_ne!(key, CredentialCache::new(4).key(b"user", b"secret"));
    }

    #[test]
    fn stays_bounded() {
        let cache = CredentialCache::new(4);
        for n in 0u8..20 {
            let key = cache.key(b"user", &[n]);
            cache.insert(key);
            assert!(cache.contains(&key));
            assert!(cache.entries.len() <= 4);
        }
    }
}
