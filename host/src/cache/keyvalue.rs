//! The host side of `wasi:keyvalue/store@0.2.0-draft` on the [`SharedCache`].

use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable, ResourceTableError};

use super::{SHARED_BUCKET, Scope, SharedCache, USER_BUCKET};

mod generated {
    wasmtime::component::bindgen!({
        inline: "
            package btp-gateway:host-cache;
            world cache {
                import wasi:keyvalue/store@0.2.0-draft;
            }
        ",
        path: "../wit/deps/keyvalue",
        imports: { default: trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
        },
        trappable_error_type: {
            "wasi:keyvalue/store.error" => super::StoreError,
        },
    });
}

use generated::wasi::keyvalue::store;

/// An open bucket: the scope its keys live in.
#[derive(Debug)]
pub struct Bucket {
    scope: Scope,
}

/// A `wasi:keyvalue/store.error`, or a host fault that traps the guest.
#[derive(Debug)]
pub enum StoreError {
    NoSuchStore,
    Other(String),
    Trap(wasmtime::Error),
}

impl From<ResourceTableError> for StoreError {
    fn from(error: ResourceTableError) -> Self {
        Self::Trap(error.into())
    }
}

/// The view of one instance's store data that the bindings work on.
#[derive(Debug)]
pub struct KeyValueView<'a> {
    pub cache: &'a Arc<SharedCache>,
    /// The caller's identity for the `user` bucket.
    pub caller: Option<&'a str>,
    pub table: &'a mut ResourceTable,
}

impl store::Host for KeyValueView<'_> {
    fn open(&mut self, identifier: String) -> Result<Resource<Bucket>, StoreError> {
        let scope = match identifier.as_str() {
            SHARED_BUCKET => Scope::shared(),
            USER_BUCKET => Scope::user(self.caller),
            _ => return Err(StoreError::NoSuchStore),
        };
        Ok(self.table.push(Bucket { scope })?)
    }

    fn convert_error(&mut self, error: StoreError) -> wasmtime::Result<store::Error> {
        match error {
            StoreError::NoSuchStore => Ok(store::Error::NoSuchStore),
            StoreError::Other(message) => Ok(store::Error::Other(message)),
            StoreError::Trap(error) => Err(error),
        }
    }
}

impl store::HostBucket for KeyValueView<'_> {
    fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let scope = &self.table.get(&bucket)?.scope;
        Ok(self.cache.get(scope, &key))
    }

    fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), StoreError> {
        let scope = &self.table.get(&bucket)?.scope;
        self.cache
            .set(scope, &key, value)
            .map_err(|error| StoreError::Other(error.to_string()))
    }

    fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<(), StoreError> {
        let scope = &self.table.get(&bucket)?.scope;
        self.cache.delete(scope, &key);
        Ok(())
    }

    fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Result<bool, StoreError> {
        let scope = &self.table.get(&bucket)?.scope;
        Ok(self.cache.exists(scope, &key))
    }

    fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Result<store::KeyResponse, StoreError> {
        let scope = &self.table.get(&bucket)?.scope;
        let keys = self.cache.keys(scope);
        // The cursor comes from the guest: clamp it instead of trusting it.
        let start = usize::try_from(cursor.unwrap_or(0))
            .unwrap_or(usize::MAX)
            .min(keys.len());
        Ok(store::KeyResponse {
            keys: keys[start..].to_vec(),
            cursor: None,
        })
    }

    fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

struct HasKeyValue;

impl HasData for HasKeyValue {
    type Data<'a> = KeyValueView<'a>;
}

/// Adds `wasi:keyvalue/store` to the linker.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> KeyValueView<'_>,
) -> wasmtime::Result<()> {
    store::add_to_linker::<T, HasKeyValue>(linker, view)
}
