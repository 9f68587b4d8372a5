//! Destinations from the Destination service, cached per tenant, and per
//! tenant and user for user-dependent authentication types.
//!
//! An entry lives for five minutes, as in the SAP Cloud SDK, or until its
//! auth token is about to expire, whichever comes first. Failed lookups and
//! SAML assertions are not cached. Lookups of the same name in the same
//! tenant wait for each other ([`DestinationCache::flight`]), so a burst of
//! requests makes one call to the Destination service.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::ResolvedDestination;

/// The maximum time a destination is reused without a new lookup.
pub const MAX_AGE: Duration = Duration::from_secs(5 * 60);

/// An entry is dropped this long before its auth token expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// Identifies a destination as seen by one tenant: the tenant's zone id
/// (`None` for the provider) and the name.
pub type CacheKey = (Option<String>, String);

/// Cached destinations with expiry, and the lock per key that serialises
/// lookups.
#[derive(Debug, Default)]
pub struct DestinationCache {
    entries: Mutex<HashMap<CacheKey, Entry>>,
    flights: Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Debug, Default)]
struct Entry {
    shared: Option<Timed>,
    per_user: HashMap<String, Timed>,
}

#[derive(Debug)]
struct Timed {
    destination: Arc<ResolvedDestination>,
    expires_at: Instant,
}

impl Timed {
    fn valid(&self) -> Option<Arc<ResolvedDestination>> {
        (Instant::now() < self.expires_at).then(|| self.destination.clone())
    }
}

impl DestinationCache {
    /// Returns the cached destination for the tenant, or for the user when
    /// the destination is user-dependent.
    pub fn get(&self, key: &CacheKey, user: Option<&str>) -> Option<Arc<ResolvedDestination>> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = entries.get(key)?;
        if let Some(destination) = entry.shared.as_ref().and_then(Timed::valid) {
            return Some(destination);
        }
        user.and_then(|user| entry.per_user.get(user))
            .and_then(Timed::valid)
    }

    /// Returns the lock that lookups of `key` hold, so that only one of a
    /// burst calls the Destination service.
    pub fn flight(&self, key: &CacheKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self
            .flights
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        flights.entry(key.clone()).or_default().clone()
    }

    /// Stores a destination whose auth token lives `token_lifetime`, if
    /// known: for the user when `user` is set, else for the whole tenant.
    /// A token too short-lived to cache is not stored.
    pub fn insert(
        &self,
        key: CacheKey,
        user: Option<&str>,
        destination: Arc<ResolvedDestination>,
        token_lifetime: Option<Duration>,
    ) {
        let lifetime = match token_lifetime {
            Some(lifetime) => MAX_AGE.min(lifetime.saturating_sub(TOKEN_MARGIN)),
            None => MAX_AGE,
        };
        if lifetime.is_zero() {
            return;
        }

        let timed = Timed {
            destination,
            expires_at: Instant::now() + lifetime,
        };
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = entries.entry(key).or_default();
        match user {
            Some(user) => {
                // Expired users' entries are dropped here, so the map does
                // not grow with every user ever seen.
                entry.per_user.retain(|_, timed| timed.valid().is_some());
                entry.per_user.insert(user.to_owned(), timed);
            }
            None => entry.shared = Some(timed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::DestinationConfig;

    fn destination() -> Arc<ResolvedDestination> {
        Arc::new(ResolvedDestination {
            config: DestinationConfig::new(
                "d",
                url::Url::parse("http://127.0.0.1:1").unwrap_or_else(|error| panic!("{error}")),
            ),
            auth_header: None,
            client: None,
            tenant: None,
        })
    }

    fn key(zone: Option<&str>) -> CacheKey {
        (zone.map(str::to_owned), "d".to_owned())
    }

    #[tokio::test(start_paused = true)]
    async fn shared_entry_expires_after_max_age() {
        let cache = DestinationCache::default();
        cache.insert(key(None), None, destination(), None);
        assert!(cache.get(&key(None), None).is_some());
        assert!(cache.get(&key(Some("other")), None).is_none());

        tokio::time::advance(MAX_AGE + Duration::from_secs(1)).await;
        assert!(cache.get(&key(None), None).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn token_lifetime_shortens_entry() {
        let cache = DestinationCache::default();
        cache.insert(
            key(None),
            None,
            destination(),
            Some(Duration::from_secs(120)),
        );
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(cache.get(&key(None), None).is_some());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(cache.get(&key(None), None).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn short_tokens_are_not_cached() {
        let cache = DestinationCache::default();
        cache.insert(
            key(None),
            None,
            destination(),
            Some(Duration::from_secs(30)),
        );
        assert!(cache.get(&key(None), None).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn user_entries_are_per_user() {
        let cache = DestinationCache::default();
        cache.insert(key(Some("z")), Some("alice"), destination(), None);
        assert!(cache.get(&key(Some("z")), Some("alice")).is_some());
        assert!(cache.get(&key(Some("z")), Some("bob")).is_none());
        assert!(cache.get(&key(Some("z")), None).is_none());
    }
}
