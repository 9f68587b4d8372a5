//! The bounded cache that guests share across requests through
//! `wasi:keyvalue/store`.
//!
//! Policy: a guest opens one of two buckets. `shared` is one namespace for
//! every caller, for data that the backend checks per request anyway (a
//! `$metadata` document is revalidated with `If-None-Match` under the
//! caller's own credentials). `user` is a namespace per caller (tenant and
//! user, or tenant and client for technical callers), for session state such
//! as CSRF tokens and backend cookies, so one user's session never serves
//! another's request. Any other bucket name is `no-such-store`.
//!
//! The cache lives in the memory of one host process. It is bounded in
//! bytes: when a write would exceed the budget, the least recently used
//! entries go first. A value larger than the per-value limit is rejected
//! with an error the guest can handle, so a guest cannot evict the cache
//! with one write.

mod keyvalue;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

pub use keyvalue::{KeyValueView, add_to_linker};

use crate::metrics::METRICS;

/// The two bucket names a guest may open.
pub const SHARED_BUCKET: &str = "shared";
pub const USER_BUCKET: &str = "user";

/// Limits of the cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    /// Bytes of keys and values held at most, over all buckets.
    pub max_bytes: usize,
    /// The largest single value.
    pub max_value_bytes: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            max_value_bytes: 16 * 1024 * 1024,
        }
    }
}

/// One namespace of the cache: the bucket and, for `user`, the caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope(String);

impl Scope {
    /// Returns the namespace every caller shares.
    pub fn shared() -> Self {
        Self(SHARED_BUCKET.to_owned())
    }

    /// Returns the namespace of one caller. `caller` identifies the tenant and the
    /// user (or client); `None` is the anonymous caller of a host without
    /// inbound authentication.
    pub fn user(caller: Option<&str>) -> Self {
        Self(format!("{USER_BUCKET}\n{}", caller.unwrap_or("")))
    }
}

/// The reason a write was not stored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CacheError {
    #[error("the value has {size} bytes, more than the cache's limit of {limit} bytes per value")]
    ValueTooLarge { size: usize, limit: usize },
}

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    last_used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<(Scope, String), Entry>,
    bytes: usize,
    clock: u64,
}

/// The cache shared by every instance of the host process.
#[derive(Debug)]
pub struct SharedCache {
    limits: CacheLimits,
    inner: Mutex<Inner>,
}

impl SharedCache {
    pub fn new(limits: CacheLimits) -> Self {
        Self {
            limits,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Returns a copy of the value, and marks it as recently used.
    pub fn get(&self, scope: &Scope, key: &str) -> Option<Vec<u8>> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let entry = inner.entries.get_mut(&(scope.clone(), key.to_owned()));
        METRICS.component_cache_lookup(entry.is_some());
        let entry = entry?;
        entry.last_used = now;
        Some(entry.value.clone())
    }

    /// Stores a value, evicting the least recently used entries while the
    /// cache would exceed its byte budget.
    pub fn set(&self, scope: &Scope, key: &str, value: Vec<u8>) -> Result<(), CacheError> {
        if value.len() > self.limits.max_value_bytes {
            return Err(CacheError::ValueTooLarge {
                size: value.len(),
                limit: self.limits.max_value_bytes,
            });
        }

        let mut inner = self.lock();
        let id = (scope.clone(), key.to_owned());
        if let Some(old) = inner.entries.remove(&id) {
            inner.bytes -= entry_size(&id, &old.value);
        }
        let size = entry_size(&id, &value);
        while inner.bytes + size > self.limits.max_bytes && evict_oldest(&mut inner) {}

        inner.clock += 1;
        let last_used = inner.clock;
        inner.bytes += size;
        inner.entries.insert(id, Entry { value, last_used });
        Ok(())
    }

    pub fn delete(&self, scope: &Scope, key: &str) {
        let mut inner = self.lock();
        let id = (scope.clone(), key.to_owned());
        if let Some(old) = inner.entries.remove(&id) {
            inner.bytes -= entry_size(&id, &old.value);
        }
    }

    pub fn exists(&self, scope: &Scope, key: &str) -> bool {
        self.lock()
            .entries
            .contains_key(&(scope.clone(), key.to_owned()))
    }

    /// Returns the keys of one scope, sorted.
    pub fn keys(&self, scope: &Scope) -> Vec<String> {
        let mut keys: Vec<String> = self
            .lock()
            .entries
            .keys()
            .filter(|(entry_scope, _)| entry_scope == scope)
            .map(|(_, key)| key.clone())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Returns the bytes held, keys included.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update leaves the map and the byte count consistent before
        // it can panic, so a poisoned lock still guards valid data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn entry_size((scope, key): &(Scope, String), value: &[u8]) -> usize {
    scope.0.len() + key.len() + value.len()
}

/// Removes the least recently used entry; returns false when empty.
// NOTE: eviction scans every entry. The cache contains at most a few thousand
// entries (tokens, cookies, metadata documents), so a linear scan per
// eviction is cheaper than maintaining an ordered index on every read.
fn evict_oldest(inner: &mut Inner) -> bool {
    let oldest = inner
        .entries
        .iter()
        .min_by_key(|(_, entry)| entry.last_used)
        .map(|(id, _)| id.clone());
    let Some(id) = oldest else {
        return false;
    };
    if let Some(entry) = inner.entries.remove(&id) {
        inner.bytes -= entry_size(&id, &entry.value);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(max_bytes: usize) -> SharedCache {
        SharedCache::new(CacheLimits {
            max_bytes,
            max_value_bytes: 100,
        })
    }

    #[test]
    fn user_scopes_are_separate() {
        let cache = cache(1000);
        let alice = Scope::user(Some("t1/alice"));
        let bob = Scope::user(Some("t1/bob"));
        assert_eq!(cache.set(&alice, "csrf", b"a".to_vec()), Ok(()));
        assert_eq!(cache.get(&alice, "csrf"), Some(b"a".to_vec()));
        assert_eq!(cache.get(&bob, "csrf"), None);
        assert_eq!(cache.get(&Scope::shared(), "csrf"), None);
        assert_eq!(cache.keys(&alice), vec!["csrf".to_owned()]);
        assert!(cache.keys(&bob).is_empty());
    }

    #[test]
    fn evicts_least_recently_used() {
        let scope = Scope::shared();
        let entry = entry_size(&(scope.clone(), "k1".to_owned()), &[0; 40]);
        let cache = cache(entry * 2);
        assert_eq!(cache.set(&scope, "k1", vec![1; 40]), Ok(()));
        assert_eq!(cache.set(&scope, "k2", vec![2; 40]), Ok(()));
        assert!(cache.get(&scope, "k1").is_some());

        assert_eq!(cache.set(&scope, "k3", vec![3; 40]), Ok(()));
        assert!(cache.exists(&scope, "k1"), "k1 was used last");
        assert!(!cache.exists(&scope, "k2"), "k2 was the oldest");
        assert!(cache.exists(&scope, "k3"));
        assert!(cache.bytes() <= entry * 2);
    }

    #[test]
    fn rejects_oversized_value() {
        let cache = cache(1000);
        let error = cache.set(&Scope::shared(), "big", vec![0; 101]);
        assert_eq!(
            error,
            Err(CacheError::ValueTooLarge {
                size: 101,
                limit: 100
            })
        );
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn overwrite_and_delete_keep_byte_count() {
        let cache = cache(1000);
        let scope = Scope::shared();
        assert_eq!(cache.set(&scope, "k", vec![0; 50]), Ok(()));
        assert_eq!(cache.set(&scope, "k", vec![0; 10]), Ok(()));
        assert_eq!(cache.bytes(), scope.0.len() + 1 + 10);
        cache.delete(&scope, "k");
        assert_eq!(cache.bytes(), 0);
    }
}
