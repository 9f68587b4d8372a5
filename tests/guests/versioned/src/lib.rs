//! A gateway component that names its build label in every response, so
//! that swap tests can tell versions apart. The label is set at build time
//! with the variable `VERSIONED_GUEST_LABEL`; each label gives a component
//! with its own digest.
//!
//! | path | behaviour |
//! |---|---|
//! | `/` | `200` with the label, or a trap when the label starts with `trap-on-smoke` |
//! | `/version` | `200` with 64 chunks of 1 KiB, each made of the label, sent 2 ms apart |
//! | anything else | `404` with the label |
//!
//! Built only for tests; the logic compiles natively so the workspace
//! builds, but it runs only as a component.

#[cfg(target_arch = "wasm32")]
mod component;

/// The label this build answers with.
pub const LABEL: &str = match option_env!("VERSIONED_GUEST_LABEL") {
    Some(label) => label,
    None => "unlabelled",
};

/// Returns one chunk of the `/version` body: the label and a newline,
/// repeated to `size` bytes.
pub fn chunk(label: &str, size: usize) -> Vec<u8> {
    let line = format!("{label}\n");
    line.bytes().cycle().take(size).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_repeats_label() {
        assert_eq!(chunk("v1", 7), b"v1\nv1\nv".to_vec());
    }
}
