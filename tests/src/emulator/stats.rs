//! Request counters that tests read to check how often a client called the
//! emulator, for example whether it caches tokens.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Snapshot of the request counters, also served as JSON at
/// `GET /_emulator/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EmulatorStats {
    /// Requests to `/oauth/token` on the HTTP and the mutual-TLS listener,
    /// successful or not. Token requests that the emulator sends to itself
    /// for OAuth2 destinations count too.
    pub token_requests: u64,
    /// Requests to `/destination-configuration/v1/destinations/{name}`,
    /// including rejected and not-found ones.
    pub destination_lookups: u64,
    /// Requests to `/token_keys`.
    #[serde(default)]
    pub token_key_requests: u64,
    /// Requests to the v1 read APIs `instanceDestinations` and
    /// `subaccountDestinations`, with or without a name.
    #[serde(default)]
    pub destination_reads: u64,
    /// Requests to the v1 read APIs `instanceCertificates` and
    /// `subaccountCertificates`, with or without a name.
    #[serde(default)]
    pub certificate_reads: u64,
    /// Token requests with `grant_type=client_credentials` from an
    /// authenticated client, successful or not.
    #[serde(default)]
    pub client_credentials_grants: u64,
    /// Token requests with `grant_type=password` from an authenticated client.
    #[serde(default)]
    pub password_grants: u64,
    /// Token requests with the JWT bearer grant from an authenticated client.
    #[serde(default)]
    pub jwt_bearer_grants: u64,
    /// Token requests with `grant_type=refresh_token` from an authenticated client.
    #[serde(default)]
    pub refresh_token_grants: u64,
    /// Token requests with the SAML 2.0 bearer grant from an authenticated client.
    #[serde(default)]
    pub saml2_bearer_grants: u64,
    /// Token requests on the mutual-TLS listener (`certurl`), also counted
    /// in `token_requests`.
    #[serde(default)]
    pub certurl_token_requests: u64,
    /// Requests to the connectivity proxy, accepted or not.
    #[serde(default)]
    pub proxy_requests: u64,
    /// Proxy requests forwarded to a backend.
    #[serde(default)]
    pub proxy_forwarded: u64,
}

/// One counter of [`EmulatorStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    TokenRequests,
    DestinationLookups,
    TokenKeyRequests,
    DestinationReads,
    CertificateReads,
    ClientCredentialsGrants,
    PasswordGrants,
    JwtBearerGrants,
    RefreshTokenGrants,
    Saml2BearerGrants,
    CertUrlTokenRequests,
    ProxyRequests,
    ProxyForwarded,
}

/// Number of [`Counter`] values.
const COUNTER_COUNT: usize = 13;

/// Live counters shared by all connections.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    values: [AtomicU64; COUNTER_COUNT],
}

impl Counters {
    /// Adds one to `counter`.
    pub(crate) fn count(&self, counter: Counter) {
        self.values[counter as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_token_request(&self) {
        self.count(Counter::TokenRequests);
    }

    pub(crate) fn count_destination_lookup(&self) {
        self.count(Counter::DestinationLookups);
    }

    /// Returns the current values. Each counter is read separately, so a
    /// snapshot taken while requests are in flight may mix two moments.
    pub(crate) fn snapshot(&self) -> EmulatorStats {
        let value = |counter: Counter| self.values[counter as usize].load(Ordering::Relaxed);
        EmulatorStats {
            token_requests: value(Counter::TokenRequests),
            destination_lookups: value(Counter::DestinationLookups),
            token_key_requests: value(Counter::TokenKeyRequests),
            destination_reads: value(Counter::DestinationReads),
            certificate_reads: value(Counter::CertificateReads),
            client_credentials_grants: value(Counter::ClientCredentialsGrants),
            password_grants: value(Counter::PasswordGrants),
            jwt_bearer_grants: value(Counter::JwtBearerGrants),
            refresh_token_grants: value(Counter::RefreshTokenGrants),
            saml2_bearer_grants: value(Counter::Saml2BearerGrants),
            certurl_token_requests: value(Counter::CertUrlTokenRequests),
            proxy_requests: value(Counter::ProxyRequests),
            proxy_forwarded: value(Counter::ProxyForwarded),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_count_matches_variants() {
        // The counters are indexed by discriminant, so the last variant must
        // be the last index of the array.
        assert_eq!(Counter::ProxyForwarded as usize + 1, COUNTER_COUNT);
    }

    #[test]
    fn every_counter_has_its_own_field() {
        let counters = Counters::default();
        counters.count(Counter::ProxyForwarded);
        counters.count(Counter::TokenRequests);
        counters.count(Counter::TokenRequests);

        let stats = counters.snapshot();
        assert_eq!(stats.proxy_forwarded, 1);
        assert_eq!(stats.token_requests, 2);
        assert_eq!(stats.destination_lookups, 0);
    }
}
