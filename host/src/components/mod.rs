//! The component store: each route's active component, its earlier
//! versions, and the swaps between them.
//!
//! Policy: a swap is atomic. A request takes the route's active version
//! when it starts and keeps it to its end, response body included, so
//! requests in flight finish on the version they started on. Swaps of one
//! route are serialised. A candidate is validated (see [`validate`]) before
//! it can become active, and a rejected candidate leaves the active version
//! serving. Each route keeps up to [`MAX_VERSIONS`] versions for rollback,
//! compiled and ready.

pub mod digest;
pub mod follow;
pub mod oci;
pub mod routes;
pub mod validate;
mod watch;

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::Serialize;

use crate::logging::format_system_time;
use crate::metrics::METRICS;
use digest::Digest;
pub use follow::{FollowSettings, spawn_followers};
use routes::{RouteConfig, segment_prefix};
use validate::{Rejection, Validator, Version};

/// The versions one route keeps, the active one included.
pub const MAX_VERSIONS: usize = 6;

/// One route: its configuration, active version and earlier versions.
#[derive(Debug)]
pub struct Route {
    pub config: RouteConfig,
    state: RwLock<RouteState>,
    /// Serialises validation and activation on this route.
    swap: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct RouteState {
    /// Known versions, the most recently loaded first.
    versions: Vec<Entry>,
    /// The digest of the active version; `None` until the first version
    /// passed validation.
    active: Option<Digest>,
}

#[derive(Debug)]
struct Entry {
    version: Arc<Version>,
    /// The last time this version became active.
    activated_at: Option<SystemTime>,
}

/// The outcome for a candidate that passes validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Validate, keep, and make active.
    Activate,
    /// Validate and keep, without serving it yet.
    KeepOnly,
}

/// The reason an activation by digest or a rollback failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SwapError {
    #[error(
        "the route '{route}' has no version {digest}: list its versions with GET /admin/components/{route}"
    )]
    UnknownVersion { route: String, digest: Digest },
    #[error("the route '{0}' has no earlier version to roll back to")]
    NothingToRollBack(String),
}

impl Route {
    pub fn new(config: RouteConfig) -> Self {
        Self {
            config,
            state: RwLock::new(RouteState::default()),
            swap: tokio::sync::Mutex::new(()),
        }
    }

    /// Returns the version that new requests use.
    pub fn active(&self) -> Option<Arc<Version>> {
        let state = self.read();
        let digest = state.active?;
        state
            .versions
            .iter()
            .find(|entry| entry.version.digest == digest)
            .map(|entry| entry.version.clone())
    }

    /// Validates `bytes` and, for [`Activation::Activate`], makes them the
    /// active version. A digest the route already has is not validated
    /// again.
    pub async fn offer(
        &self,
        validator: &Validator,
        bytes: Arc<[u8]>,
        origin: String,
        activation: Activation,
    ) -> Result<Arc<Version>, Rejection> {
        let _swap = self.swap.lock().await;
        let digest = Digest::of(&bytes);
        let known = self.find(digest);
        let version = match known {
            Some(version) => version,
            None => match validator
                .validate(&self.config, bytes, origin.clone())
                .await
            {
                Ok(version) => {
                    let version = Arc::new(version);
                    self.insert(version.clone());
                    version
                }
                Err(rejection) => {
                    METRICS.component_rejected();
                    tracing::warn!(
                        route = self.config.name,
                        origin,
                        %digest,
                        reason = rejection.code(),
                        error = %rejection,
                        "rejected a component: the active version keeps serving"
                    );
                    return Err(rejection);
                }
            },
        };
        if activation == Activation::Activate {
            self.make_active(&version);
        }
        Ok(version)
    }

    /// Makes a kept version active again.
    pub async fn activate(&self, digest: Digest) -> Result<Arc<Version>, SwapError> {
        let _swap = self.swap.lock().await;
        let version = self.find(digest).ok_or_else(|| SwapError::UnknownVersion {
            route: self.config.name.clone(),
            digest,
        })?;
        self.make_active(&version);
        Ok(version)
    }

    /// Makes the version that was active before the current one active
    /// again. Rolling back twice returns to where it started.
    pub async fn roll_back(&self) -> Result<Arc<Version>, SwapError> {
        let _swap = self.swap.lock().await;
        let previous = {
            let state = self.read();
            state
                .versions
                .iter()
                .filter(|entry| Some(entry.version.digest) != state.active)
                .filter_map(|entry| entry.activated_at.map(|at| (at, entry.version.clone())))
                .max_by_key(|(at, _)| *at)
                .map(|(_, version)| version)
        };
        let previous =
            previous.ok_or_else(|| SwapError::NothingToRollBack(self.config.name.clone()))?;
        self.make_active(&previous);
        Ok(previous)
    }

    /// Returns the route's configuration, versions and active digest.
    pub fn status(&self) -> RouteStatus {
        let state = self.read();
        let versions = state
            .versions
            .iter()
            .map(|entry| VersionStatus {
                digest: entry.version.digest,
                origin: entry.version.origin.clone(),
                size: entry.version.size,
                loaded_at: format_system_time(entry.version.loaded_at),
                activated_at: entry.activated_at.map(format_system_time),
                active: state.active == Some(entry.version.digest),
            })
            .collect::<Vec<_>>();
        let active = versions.iter().find(|version| version.active).cloned();
        RouteStatus {
            name: self.config.name.clone(),
            path: self.config.path.clone(),
            source: self.config.source.to_string(),
            pinned_digest: self.config.digest,
            active,
            versions,
        }
    }

    fn find(&self, digest: Digest) -> Option<Arc<Version>> {
        self.read()
            .versions
            .iter()
            .find(|entry| entry.version.digest == digest)
            .map(|entry| entry.version.clone())
    }

    /// Keeps a new version, dropping the oldest inactive ones beyond
    /// [`MAX_VERSIONS`]. A request that still runs on a dropped version
    /// keeps it alive until it ends.
    fn insert(&self, version: Arc<Version>) {
        let mut state = self.write();
        state.versions.insert(
            0,
            Entry {
                version,
                activated_at: None,
            },
        );
        while state.versions.len() > MAX_VERSIONS {
            let active = state.active;
            let Some(oldest) = state
                .versions
                .iter()
                .rposition(|entry| Some(entry.version.digest) != active)
            else {
                break;
            };
            state.versions.remove(oldest);
        }
    }

    fn make_active(&self, version: &Arc<Version>) {
        let previous = {
            let mut state = self.write();
            let previous = state.active.replace(version.digest);
            if let Some(entry) = state
                .versions
                .iter_mut()
                .find(|entry| entry.version.digest == version.digest)
            {
                entry.activated_at = Some(SystemTime::now());
            }
            previous
        };
        if previous == Some(version.digest) {
            return;
        }
        if previous.is_some() {
            METRICS.component_swapped();
        }
        tracing::info!(
            route = self.config.name,
            path = self.config.path,
            digest = %version.digest,
            origin = version.origin,
            previous = previous.map(|digest| digest.to_string()).unwrap_or_else(|| "none".to_owned()),
            "activated a component"
        );
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, RouteState> {
        // A panic while the lock was held cannot leave the state half
        // written: every write replaces whole fields.
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, RouteState> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A route as `/health` and the admin API show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    pub name: String,
    pub path: String,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_digest: Option<Digest>,
    /// `None` until a version passed validation.
    pub active: Option<VersionStatus>,
    pub versions: Vec<VersionStatus>,
}

/// One version as `/health` and the admin API show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionStatus {
    pub digest: Digest,
    pub origin: String,
    pub size: u64,
    pub loaded_at: String,
    pub activated_at: Option<String>,
    pub active: bool,
}

/// Every route of the host, and the validator for their candidates.
#[derive(Debug)]
pub struct ComponentStore {
    /// Sorted by path length, longest first, so the first match wins.
    routes: Vec<Arc<Route>>,
    pub validator: Validator,
}

impl ComponentStore {
    pub fn new(configs: Vec<RouteConfig>, validator: Validator) -> Self {
        let mut routes: Vec<Arc<Route>> = configs
            .into_iter()
            .map(|c| Arc::new(Route::new(c)))
            .collect();
        routes.sort_by_key(|route| std::cmp::Reverse(route.config.path.len()));
        Self { routes, validator }
    }

    /// Returns the route that serves `path`: the longest matching prefix.
    pub fn route_for(&self, path: &str) -> Option<&Arc<Route>> {
        self.routes
            .iter()
            .find(|route| segment_prefix(path, &route.config.path))
    }

    /// Returns the route named `name`.
    pub fn route(&self, name: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|route| route.config.name == name)
    }

    /// Returns every route, ordered by path.
    pub fn routes(&self) -> Vec<&Arc<Route>> {
        let mut routes: Vec<&Arc<Route>> = self.routes.iter().collect();
        routes.sort_by(|a, b| a.config.path.cmp(&b.config.path));
        routes
    }

    /// Returns whether every route has an active version.
    pub fn all_active(&self) -> bool {
        self.routes.iter().all(|route| route.active().is_some())
    }

    /// Returns the limits each instance runs with.
    pub fn limits(&self) -> crate::engine::Limits {
        self.validator.limits
    }

    /// Returns the bytes held in the cache components share.
    pub fn cache_bytes(&self) -> usize {
        self.validator.services.cache.bytes()
    }
}
