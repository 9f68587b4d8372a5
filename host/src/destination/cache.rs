//! Destinations from the Destination service, cached by name.
//!
//! An entry lives for five minutes, as in the SAP Cloud SDK, or until its
//! auth token is about to expire, whichever comes first. Failed lookups are
//! not cached, so a destination fixed in the cockpit works on the next
//! request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::ResolvedDestination;

/// The longest time a destination is reused without a new lookup.
pub const MAX_AGE: Duration = Duration::from_secs(5 * 60);

/// An entry is dropped this long before its auth token expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// A map of destination name to resolved destination with expiry.
#[derive(Debug, Default)]
pub struct DestinationCache {
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    destination: Arc<ResolvedDestination>,
    expires_at: Instant,
}

impl DestinationCache {
    pub fn get(&self, name: &str) -> Option<Arc<ResolvedDestination>> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match entries.get(name) {
            Some(entry) if Instant::now() < entry.expires_at => Some(entry.destination.clone()),
            Some(_) => {
                entries.remove(name);
                None
            }
            None => None,
        }
    }

    /// Stores a destination whose auth token lives `token_lifetime`, if
    /// known. A token too short-lived to cache is not stored.
    pub fn insert(
        &self,
        name: &str,
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
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.insert(
            name.to_owned(),
            Entry {
                destination,
                expires_at: Instant::now() + lifetime,
            },
        );
    }
}
