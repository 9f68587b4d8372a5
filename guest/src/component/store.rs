//! Access to the host's configuration (`wasi:config/store`) and shared cache
//! (`wasi:keyvalue/store`). Every cache failure is treated as a miss: the
//! cache only saves round trips.

use super::bindings::wasi::config::store as config;
use super::bindings::wasi::keyvalue::store as keyvalue;

/// Bucket for data every caller may share.
pub const SHARED: &str = "shared";
/// Bucket with one namespace per caller.
pub const USER: &str = "user";

/// Returns a configuration value set by the host.
pub fn config_value(key: &str) -> Option<String> {
    config::get(key).ok().flatten()
}

pub fn get(bucket: &str, key: &str) -> Option<Vec<u8>> {
    let bucket = keyvalue::open(bucket).ok()?;
    bucket.get(key).ok().flatten()
}

pub fn set(bucket: &str, key: &str, value: &[u8]) {
    if let Ok(bucket) = keyvalue::open(bucket) {
        // A value over the host's limit is not stored; the next request
        // fetches it again.
        let _ = bucket.set(key, value);
    }
}
