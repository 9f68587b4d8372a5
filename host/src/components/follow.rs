//! Loading each route's first version, and following the sources that
//! change: an OCI tag polled for its digest, and a watched folder.
//!
//! Every Cloud Foundry instance polls the same tag, so all instances
//! converge on the digest the tag points at, each within one poll interval.
//! A version an operator rolled back from is not activated again by the
//! poller: it acts only when the tag moves to another manifest.

use std::sync::Arc;
use std::time::Duration;

use super::oci::{Reference, RegistryClient};
use super::routes::Source;
use super::{Activation, ComponentStore, Route};

/// Settings for following the sources that change.
#[derive(Debug, Clone)]
pub struct FollowSettings {
    /// How often a followed OCI tag is checked.
    pub registry_poll: Duration,
    /// How often a watched folder is checked.
    pub folder_poll: Duration,
    pub registry: RegistryClient,
}

/// The reason a route's first version could not be loaded at start.
#[derive(Debug, thiserror::Error)]
#[error("route '{route}' ({source_text}): {reason}")]
pub struct StartError {
    pub route: String,
    pub source_text: String,
    pub reason: String,
}

impl ComponentStore {
    /// Loads the first version of every route whose source is the bundled
    /// component or a file. These must pass validation, or the host does
    /// not start. Routes that follow a registry or a folder load in the
    /// tasks of [`spawn_followers`] and answer 503 until then.
    pub async fn load_fixed_sources(&self) -> Result<(), StartError> {
        for route in &self.routes {
            let (bytes, origin): (Arc<[u8]>, String) = match &route.config.source {
                Source::Bundled => (Arc::from(crate::DEFAULT_COMPONENT), "bundled".to_owned()),
                Source::File(path) => match tokio::fs::read(path).await {
                    Ok(bytes) => (Arc::from(bytes), route.config.source.to_string()),
                    Err(error) => {
                        return Err(StartError {
                            route: route.config.name.clone(),
                            source_text: route.config.source.to_string(),
                            reason: format!("cannot read {}: {error}", path.display()),
                        });
                    }
                },
                Source::Folder(_) | Source::Registry(_) => continue,
            };
            route
                .offer(&self.validator, bytes, origin, Activation::Activate)
                .await
                .map_err(|rejection| StartError {
                    route: route.config.name.clone(),
                    source_text: route.config.source.to_string(),
                    reason: rejection.to_string(),
                })?;
        }
        Ok(())
    }
}

/// Starts one task per route that follows a registry tag or a folder. The
/// tasks run until the process ends.
pub fn spawn_followers(store: &Arc<ComponentStore>, settings: &FollowSettings) {
    for route in &store.routes {
        match &route.config.source {
            Source::Registry(reference) => {
                tokio::spawn(follow_registry(
                    store.clone(),
                    route.clone(),
                    reference.clone(),
                    settings.clone(),
                ));
            }
            Source::Folder(folder) => {
                tokio::spawn(super::watch::watch_folder(
                    store.clone(),
                    route.clone(),
                    folder.clone(),
                    settings.folder_poll,
                ));
            }
            Source::Bundled | Source::File(_) => {}
        }
    }
}

/// Pulls the reference, then, for a tag, polls its manifest digest and
/// pulls again whenever it changes.
async fn follow_registry(
    store: Arc<ComponentStore>,
    route: Arc<Route>,
    reference: Reference,
    settings: FollowSettings,
) {
    let max_bytes = store.validator.max_component_bytes;
    let mut seen = None;
    let mut last_error: Option<String> = None;
    loop {
        let outcome = async {
            if seen.is_some() {
                let current = settings.registry.resolve(&reference).await?;
                if Some(current) == seen {
                    return Ok(None);
                }
            }
            settings
                .registry
                .pull(&reference, max_bytes)
                .await
                .map(Some)
        }
        .await;

        match outcome {
            Ok(None) => last_error = None,
            Ok(Some(pulled)) => {
                last_error = None;
                seen = Some(pulled.manifest_digest);
                let origin = format!("{reference}@{}", pulled.manifest_digest);
                tracing::info!(route = route.config.name, origin, "pulled a component");
                // A rejection is logged by `offer`; the manifest counts as
                // seen, so the same broken artifact is not pulled again.
                let _ = route
                    .offer(
                        &store.validator,
                        Arc::from(pulled.component),
                        origin,
                        Activation::Activate,
                    )
                    .await;
            }
            Err(error) => {
                let message = error.to_string();
                // The same failure on every poll is logged once, at warn,
                // and then at debug until it changes.
                if last_error.as_deref() == Some(message.as_str()) {
                    tracing::debug!(route = route.config.name, reference = %reference, error = message, "polling the registry failed again");
                } else {
                    let outcome = if route.active().is_some() {
                        "the active version keeps serving"
                    } else {
                        "the route answers 503 until a pull succeeds"
                    };
                    tracing::warn!(
                        route = route.config.name,
                        reference = %reference,
                        error = message,
                        outcome,
                        "polling the registry failed"
                    );
                    last_error = Some(message);
                }
            }
        }

        if !reference.follows_tag() && seen.is_some() {
            return;
        }
        tokio::time::sleep(settings.registry_poll).await;
    }
}
