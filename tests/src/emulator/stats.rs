//! Request counters that tests read to check how often a client called the
//! emulator, for example whether it caches tokens.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Snapshot of the request counters, also served as JSON at
/// `GET /_emulator/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EmulatorStats {
    /// Requests to `/oauth/token`, successful or not. Token requests that the
    /// emulator sends to itself for `OAuth2ClientCredentials` destinations
    /// count too.
    pub token_requests: u64,
    /// Requests to `/destination-configuration/v1/destinations/{name}`,
    /// including rejected and not-found ones.
    pub destination_lookups: u64,
}

/// Live counters shared by all connections.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    token_requests: AtomicU64,
    destination_lookups: AtomicU64,
}

impl Counters {
    pub(crate) fn count_token_request(&self) {
        self.token_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_destination_lookup(&self) {
        self.destination_lookups.fetch_add(1, Ordering::Relaxed);
    }

    /// Returns the current values. Each counter is read separately, so a
    /// snapshot taken while requests are in flight may mix two moments.
    pub(crate) fn snapshot(&self) -> EmulatorStats {
        EmulatorStats {
            token_requests: self.token_requests.load(Ordering::Relaxed),
            destination_lookups: self.destination_lookups.load(Ordering::Relaxed),
        }
    }
}
