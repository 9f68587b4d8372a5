//! The on-disk cache of compiled component code.
//!
//! wasmtime's cache stores the machine code of each compiled component
//! under a key made from the component's bytes and every engine setting
//! that affects code generation, and it checks the wasmtime version when it
//! loads an entry. So a restart, or a component seen before, skips the
//! compilation, and an entry written by another engine configuration or
//! wasmtime version is never used.
//!
//! Policy: the cache folder must belong to the user the host runs as and
//! must not be writable by anyone else, because its files are loaded as
//! executable code. The host creates it with mode 0700 and refuses a
//! folder that fails this check.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The size the cache cleans itself down to, well under Cloud Foundry's
/// default disk quota of 1 GB. A compiled default gateway component takes
/// a few megabytes.
const MAX_CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// An open compiled-code cache.
#[derive(Debug, Clone)]
pub struct CompiledCache {
    cache: wasmtime::Cache,
    directory: PathBuf,
}

impl CompiledCache {
    /// Opens the cache in `directory`, creating it when needed.
    ///
    /// # Errors
    ///
    /// When the folder cannot be created, belongs to another user or can
    /// be written by others.
    pub fn open(directory: &Path) -> anyhow::Result<Self> {
        let directory = std::path::absolute(directory)
            .with_context(|| format!("invalid folder {}", directory.display()))?;
        create_private_dir(&directory)?;
        check_private(&directory)?;

        let mut config = wasmtime::CacheConfig::new();
        config
            .with_directory(&directory)
            .with_files_total_size_soft_limit(MAX_CACHE_BYTES);
        let cache = wasmtime::Cache::new(config)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "cannot use {} as the compiled-code cache",
                    directory.display()
                )
            })?;
        Ok(Self { cache, directory })
    }

    /// Returns the folder that contains the cache.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// Returns how many compilations were served from the cache.
    pub fn hits(&self) -> usize {
        self.cache.cache_hits()
    }

    /// Returns how many compilations found no usable entry.
    pub fn misses(&self) -> usize {
        self.cache.cache_misses()
    }

    pub(super) fn wasmtime_cache(&self) -> wasmtime::Cache {
        self.cache.clone()
    }
}

#[cfg(unix)]
fn create_private_dir(directory: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(directory)
        .with_context(|| format!("cannot create the folder {}", directory.display()))
}

#[cfg(not(unix))]
fn create_private_dir(directory: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(directory)
        .with_context(|| format!("cannot create the folder {}", directory.display()))
}

/// Checks that the folder belongs to this process's user and that no one
/// else may write to it. The user is read off a file the process creates,
/// which needs no system call outside the standard library.
#[cfg(unix)]
fn check_private(directory: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt as _;

    let metadata = std::fs::metadata(directory)
        .with_context(|| format!("cannot read {}", directory.display()))?;
    let probe = tempfile_in(directory)?;
    let own_uid = std::fs::metadata(&probe).map(|m| m.uid());
    let _ = std::fs::remove_file(&probe);
    let own_uid = own_uid.with_context(|| format!("cannot write to {}", directory.display()))?;

    if metadata.uid() != own_uid {
        anyhow::bail!(
            "{} belongs to another user (uid {}): choose a folder of your own",
            directory.display(),
            metadata.uid()
        );
    }
    if metadata.mode() & 0o022 != 0 {
        anyhow::bail!(
            "{} can be written by other users (mode {:o}): run `chmod go-w` on it or choose \
             another folder",
            directory.display(),
            metadata.mode() & 0o777
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_directory: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn tempfile_in(directory: &Path) -> anyhow::Result<PathBuf> {
    let probe = directory.join(format!(".owner-check-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .with_context(|| format!("cannot write to {}", directory.display()))?;
    Ok(probe)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn creates_a_private_folder() -> anyhow::Result<()> {
        let parent = tempfile::tempdir()?;
        let directory = parent.path().join("compiled");
        let cache = CompiledCache::open(&directory)?;
        let mode = std::fs::metadata(cache.directory())?.permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        Ok(())
    }

    #[test]
    fn rejects_a_folder_others_can_write() -> anyhow::Result<()> {
        let parent = tempfile::tempdir()?;
        std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o777))?;
        let error = CompiledCache::open(parent.path())
            .err()
            .map(|e| format!("{e:#}"));
        let message = error.unwrap_or_default();
        assert!(
            message.contains("can be written by other users"),
            "{message}"
        );
        Ok(())
    }
}
