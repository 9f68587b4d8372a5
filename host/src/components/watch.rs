//! A watched folder, for development: the newest `.wasm` file in it serves
//! its route, and a file copied in later replaces it.
//!
//! A file is read only after its size and modification time stayed the
//! same for one poll, so a file still being written is not validated half
//! done. A file that was rejected is not read again until it changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Activation, ComponentStore, Route};

/// A file's identity for change detection.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    path: PathBuf,
    modified: SystemTime,
    size: u64,
}

/// Polls `folder` every `interval` and offers the newest stable `.wasm`
/// file to `route`.
pub(super) async fn watch_folder(
    store: Arc<ComponentStore>,
    route: Arc<Route>,
    folder: PathBuf,
    interval: Duration,
) {
    let mut loaded: Option<Seen> = None;
    let mut candidate: Option<Seen> = None;
    let mut reported_missing = false;
    loop {
        match newest_wasm(&folder).await {
            Ok(Some(newest)) => {
                reported_missing = false;
                let stable = candidate.as_ref() == Some(&newest);
                if loaded.as_ref() != Some(&newest) && stable {
                    match tokio::fs::read(&newest.path).await {
                        Ok(bytes) => {
                            let origin = format!("folder:{}", newest.path.display());
                            // A rejection is logged by `offer`.
                            let _ = route
                                .offer(
                                    &store.validator,
                                    Arc::from(bytes),
                                    origin,
                                    Activation::Activate,
                                )
                                .await;
                            loaded = Some(newest.clone());
                        }
                        Err(error) => tracing::warn!(
                            route = route.config.name,
                            file = %newest.path.display(),
                            %error,
                            "cannot read the component file"
                        ),
                    }
                }
                candidate = Some(newest);
            }
            Ok(None) => {
                if !reported_missing {
                    tracing::info!(route = route.config.name, folder = %folder.display(), "the watched folder contains no .wasm file yet");
                    reported_missing = true;
                }
            }
            Err(error) => {
                if !reported_missing {
                    tracing::warn!(route = route.config.name, folder = %folder.display(), %error, "cannot read the watched folder");
                    reported_missing = true;
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// Returns the `.wasm` file with the latest modification time, the last
/// name in byte order among equals.
async fn newest_wasm(folder: &Path) -> std::io::Result<Option<Seen>> {
    let mut entries = tokio::fs::read_dir(folder).await?;
    let mut newest: Option<Seen> = None;
    while let Some(entry) = entries.next_entry().await? {
        let path = entry.path();
        if path.extension().is_none_or(|extension| extension != "wasm") {
            continue;
        }
        let metadata = match entry.metadata().await {
            Ok(metadata) if metadata.is_file() => metadata,
            _ => continue,
        };
        let seen = Seen {
            path,
            modified: metadata.modified()?,
            size: metadata.len(),
        };
        let newer = newest
            .as_ref()
            .is_none_or(|current| (seen.modified, &seen.path) > (current.modified, &current.path));
        if newer {
            newest = Some(seen);
        }
    }
    Ok(newest)
}
