//! Subscriber tenants and the zone view that token and destination code
//! share for the provider and every tenant.
//!
//! In a multi-tenant application each subscriber subaccount is an XSUAA
//! identity zone with its own zone id (`zid`), subdomain (`ext_attr.zdn`)
//! and destinations. The emulator keeps the provider's data at the top level
//! of the configuration and each subscriber's data in one `tenants` entry.
//! Subscriptions, the SaaS provisioning callbacks and tenant-specific token
//! URLs (`<subdomain>.authentication...`) are not emulated: a client selects
//! a zone with the `x-zid` header instead.

use serde::{Deserialize, Serialize};

use super::config::CertificateConfig;
use super::destination::{Destination, DestinationLevel};

/// A subscriber tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Identity zone id, the `zid` of the tenant's tokens and the
    /// `owner.SubaccountId` of its destinations.
    pub zone_id: String,
    /// Subaccount subdomain, the `ext_attr.zdn` of the tenant's tokens.
    pub subdomain: String,
    /// Destinations on the Destination service instance in this tenant.
    #[serde(default)]
    pub instance_destinations: Vec<Destination>,
    /// Destinations on the tenant's subaccount.
    #[serde(default)]
    pub subaccount_destinations: Vec<Destination>,
    /// Certificates and key stores of the tenant.
    #[serde(default)]
    pub certificates: Vec<CertificateConfig>,
}

impl TenantConfig {
    /// Creates a tenant without destinations.
    pub fn new(zone_id: impl Into<String>, subdomain: impl Into<String>) -> Self {
        Self {
            zone_id: zone_id.into(),
            subdomain: subdomain.into(),
            instance_destinations: Vec::new(),
            subaccount_destinations: Vec::new(),
            certificates: Vec::new(),
        }
    }

    /// Returns the tenant as a zone.
    pub(crate) fn zone(&self) -> Zone<'_> {
        Zone {
            zone_id: &self.zone_id,
            subdomain: &self.subdomain,
            instance_destinations: &self.instance_destinations,
            subaccount_destinations: &self.subaccount_destinations,
            certificates: &self.certificates,
        }
    }
}

/// Borrowed view of the provider or one tenant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Zone<'a> {
    pub zone_id: &'a str,
    pub subdomain: &'a str,
    pub instance_destinations: &'a [Destination],
    pub subaccount_destinations: &'a [Destination],
    pub certificates: &'a [CertificateConfig],
}

impl<'a> Zone<'a> {
    /// Returns both destination lists in lookup order.
    pub(crate) fn destination_levels(&self) -> [(DestinationLevel, &'a [Destination]); 2] {
        [
            (DestinationLevel::Instance, self.instance_destinations),
            (DestinationLevel::Subaccount, self.subaccount_destinations),
        ]
    }

    /// Returns the destination list of one level.
    pub(crate) fn destinations(&self, level: DestinationLevel) -> &'a [Destination] {
        match level {
            DestinationLevel::Instance => self.instance_destinations,
            DestinationLevel::Subaccount => self.subaccount_destinations,
        }
    }

    /// Finds a destination by exact, case-sensitive name, looking at the
    /// instance level before the subaccount level as the real service does.
    pub(crate) fn find_destination(
        &self,
        name: &str,
    ) -> Option<(DestinationLevel, &'a Destination)> {
        self.destination_levels()
            .into_iter()
            .find_map(|(level, destinations)| {
                destinations
                    .iter()
                    .find(|destination| destination.name() == name)
                    .map(|destination| (level, destination))
            })
    }

    /// Finds a certificate by exact name.
    pub(crate) fn certificate(&self, name: &str) -> Option<&'a CertificateConfig> {
        self.certificates
            .iter()
            .find(|certificate| certificate.name == name)
    }
}
