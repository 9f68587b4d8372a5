//! OCI image manifests and image indexes as far as a component pull needs
//! them: parsing, choosing the WebAssembly entry of an index, and finding
//! the component layer.

use serde::Deserialize;

use crate::components::digest::Digest;

/// The `Accept` header of manifest requests.
pub(super) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.index.v1+json";

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The media type of a WebAssembly component layer, as `wkg oci push` and
/// other WebAssembly tools write it.
pub(super) const WASM_LAYER: &str = "application/wasm";

/// The layer media type of older tools (wasm-to-oci, oci-distribution
/// before the CNCF Wasm OCI artifact format), accepted as well.
const LEGACY_WASM_LAYER: &str = "application/vnd.wasm.content.layer.v1+wasm";

fn is_wasm_layer(layer: &Descriptor) -> bool {
    layer.media_type == WASM_LAYER || layer.media_type == LEGACY_WASM_LAYER
}

/// The platforms of an index entry that contains a component, most
/// preferred first, as `(os, architecture)`.
const WASM_PLATFORMS: [(&str, &str); 2] = [("wasip2", "wasm"), ("wasi", "wasm")];

/// A content descriptor: what a manifest or an index points at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(super) struct Platform {
    pub os: String,
    pub architecture: String,
}

/// A parsed manifest document.
#[derive(Debug)]
pub(super) enum Document {
    Manifest { layers: Vec<Descriptor> },
    Index { manifests: Vec<Descriptor> },
}

/// The fields of both document kinds; which kind it is follows from
/// `mediaType`, the response's `Content-Type`, or the fields present.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDocument {
    schema_version: Option<u32>,
    media_type: Option<String>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
}

/// Parses an image manifest or an image index. `content_type` is the
/// response's `Content-Type`, used when the document has no `mediaType`.
pub(super) fn parse_document(bytes: &[u8], content_type: Option<&str>) -> Result<Document, String> {
    let raw: RawDocument =
        serde_json::from_slice(bytes).map_err(|error| format!("not a valid manifest: {error}"))?;
    if raw.schema_version != Some(2) {
        return Err(format!(
            "schemaVersion is {}, expected 2",
            raw.schema_version
                .map_or_else(|| "missing".to_owned(), |version| version.to_string())
        ));
    }

    let declared = raw
        .media_type
        .as_deref()
        .or_else(|| content_type.map(|value| value.split(';').next().unwrap_or(value).trim()))
        .filter(|media_type| !media_type.is_empty() && *media_type != "application/json");
    match (declared, raw.layers, raw.manifests) {
        (Some(OCI_INDEX | DOCKER_MANIFEST_LIST), _, Some(manifests))
        | (None, None, Some(manifests)) => Ok(Document::Index { manifests }),
        (Some(OCI_MANIFEST | DOCKER_MANIFEST), Some(layers), _) | (None, Some(layers), None) => {
            Ok(Document::Manifest { layers })
        }
        (Some(OCI_INDEX | DOCKER_MANIFEST_LIST), _, None) => {
            Err("the image index has no `manifests`".to_owned())
        }
        (Some(OCI_MANIFEST | DOCKER_MANIFEST), None, _) => {
            Err("the image manifest has no `layers`".to_owned())
        }
        (Some(other), _, _) => Err(format!("unsupported manifest media type {other:?}")),
        (None, _, _) => Err("neither an image manifest nor an image index".to_owned()),
    }
}

/// Chooses the index entry to pull: the only entry, or the entry for
/// platform wasip2/wasm, else wasi/wasm. Otherwise returns a listing of the
/// entries for the error message.
pub(super) fn select_index_entry(manifests: &[Descriptor]) -> Result<&Descriptor, String> {
    if let [only] = manifests {
        return Ok(only);
    }
    for (os, architecture) in WASM_PLATFORMS {
        let matching: Vec<&Descriptor> = manifests
            .iter()
            .filter(|entry| {
                entry
                    .platform
                    .as_ref()
                    .is_some_and(|p| p.os == os && p.architecture == architecture)
            })
            .collect();
        match matching.as_slice() {
            [] => continue,
            [entry] => return Ok(entry),
            // Two entries for the preferred platform: picking one would be
            // a guess.
            _ => break,
        }
    }
    Err(describe_entries(manifests))
}

fn describe_entries(manifests: &[Descriptor]) -> String {
    if manifests.is_empty() {
        return "none".to_owned();
    }
    let entries: Vec<String> = manifests
        .iter()
        .map(|entry| {
            let platform = entry.platform.as_ref().map_or_else(
                || "no platform".to_owned(),
                |p| format!("{}/{}", p.os, p.architecture),
            );
            format!("{platform} ({}, {})", entry.media_type, entry.digest)
        })
        .collect();
    entries.join("; ")
}

/// The reason a manifest has no usable component layer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum LayerError {
    /// No `application/wasm` layer; the media types found, comma-separated.
    Missing(String),
    /// More than one `application/wasm` layer.
    Several(usize),
}

/// Returns the single `application/wasm` layer.
pub(super) fn component_layer(layers: &[Descriptor]) -> Result<&Descriptor, LayerError> {
    let mut wasm = layers.iter().filter(|layer| is_wasm_layer(layer));
    match (wasm.next(), wasm.next()) {
        (Some(layer), None) => Ok(layer),
        (Some(_), Some(_)) => Err(LayerError::Several(
            layers.iter().filter(|layer| is_wasm_layer(layer)).count(),
        )),
        (None, _) if layers.is_empty() => Err(LayerError::Missing("none (no layers)".to_owned())),
        (None, _) => {
            let found: Vec<&str> = layers.iter().map(|l| l.media_type.as_str()).collect();
            Err(LayerError::Missing(found.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::digest::InvalidDigest;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    fn wasm_manifest() -> String {
        format!(
            r#"{{
              "schemaVersion": 2,
              "mediaType": "{OCI_MANIFEST}",
              "config": {{"mediaType": "application/vnd.wasm.config.v0+json", "digest": "{D1}", "size": 10}},
              "layers": [{{"mediaType": "application/wasm", "digest": "{D2}", "size": 1234}}]
            }}"#
        )
    }

    fn entry(os: &str, architecture: &str, digest: &str) -> String {
        format!(
            r#"{{"mediaType": "{OCI_MANIFEST}", "digest": "{digest}", "size": 500,
                "platform": {{"os": "{os}", "architecture": "{architecture}"}}}}"#
        )
    }

    fn index(entries: &[String]) -> String {
        format!(
            r#"{{"schemaVersion": 2, "mediaType": "{OCI_INDEX}", "manifests": [{}]}}"#,
            entries.join(",")
        )
    }

    fn manifests_of(text: &str) -> Vec<Descriptor> {
        match parse_document(text.as_bytes(), None) {
            Ok(Document::Index { manifests }) => manifests,
            other => panic!("not an index: {other:?}"),
        }
    }

    #[test]
    fn wasm_manifest_layer() -> Result<(), String> {
        let Document::Manifest { layers } = parse_document(wasm_manifest().as_bytes(), None)?
        else {
            return Err("parsed as an index".to_owned());
        };
        let layer = component_layer(&layers).map_err(|error| format!("{error:?}"))?;
        assert_eq!(layer.digest.to_string(), D2);
        assert_eq!(layer.size, 1234);
        Ok(())
    }

    #[test]
    fn kind_from_content_type_or_fields() {
        let without_media_type = format!(
            r#"{{"schemaVersion": 2, "layers": [{{"mediaType": "application/wasm", "digest": "{D2}", "size": 1}}]}}"#
        );
        let as_manifest = parse_document(
            without_media_type.as_bytes(),
            Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
        );
        assert!(
            matches!(as_manifest, Ok(Document::Manifest { .. })),
            "{as_manifest:?}"
        );
        let inferred = parse_document(without_media_type.as_bytes(), Some("application/json"));
        assert!(
            matches!(inferred, Ok(Document::Manifest { .. })),
            "{inferred:?}"
        );

        let index_without_media_type = format!(
            r#"{{"schemaVersion": 2, "manifests": [{}]}}"#,
            entry("wasip2", "wasm", D1)
        );
        let inferred = parse_document(index_without_media_type.as_bytes(), None);
        assert!(
            matches!(inferred, Ok(Document::Index { .. })),
            "{inferred:?}"
        );
    }

    #[test]
    fn invalid_documents_are_rejected() {
        let cases = [
            ("not json".to_owned(), "not a valid manifest"),
            (r#"{"schemaVersion": 1}"#.to_owned(), "schemaVersion is 1"),
            (r#"{"layers": []}"#.to_owned(), "schemaVersion is missing"),
            (
                r#"{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v1+prettyjws"}"#
                    .to_owned(),
                "unsupported manifest media type",
            ),
            (
                format!(r#"{{"schemaVersion": 2, "mediaType": "{OCI_MANIFEST}"}}"#),
                "has no `layers`",
            ),
            (
                format!(r#"{{"schemaVersion": 2, "mediaType": "{OCI_INDEX}"}}"#),
                "has no `manifests`",
            ),
            (r#"{"schemaVersion": 2}"#.to_owned(), "neither"),
            (
                r#"{"schemaVersion": 2, "layers": [{"mediaType": "application/wasm", "digest": "sha512:00", "size": 1}]}"#
                    .to_owned(),
                "invalid digest",
            ),
        ];
        for (text, reason) in cases {
            match parse_document(text.as_bytes(), None) {
                Ok(document) => panic!("{text} parsed as {document:?}"),
                Err(message) => assert!(message.contains(reason), "{text}: {message}"),
            }
        }
    }

    #[test]
    fn missing_wasm_layer_names_media_types() -> Result<(), Box<dyn std::error::Error>> {
        let layer = |media_type: &str| -> Result<Descriptor, InvalidDigest> {
            Ok(Descriptor {
                media_type: media_type.to_owned(),
                digest: D1.parse()?,
                size: 1,
                platform: None,
            })
        };
        let layers = [
            layer("application/vnd.oci.image.layer.v1.tar+gzip")?,
            layer("application/octet-stream")?,
        ];
        assert_eq!(
            component_layer(&layers),
            Err(LayerError::Missing(
                "application/vnd.oci.image.layer.v1.tar+gzip, application/octet-stream".to_owned()
            ))
        );
        assert_eq!(
            component_layer(&[]),
            Err(LayerError::Missing("none (no layers)".to_owned()))
        );
        Ok(())
    }

    #[test]
    fn legacy_wasm_layer_accepted() -> Result<(), String> {
        let Document::Manifest { mut layers } = parse_document(wasm_manifest().as_bytes(), None)?
        else {
            return Err("parsed as an index".to_owned());
        };
        layers[0].media_type = LEGACY_WASM_LAYER.to_owned();
        let layer = component_layer(&layers).map_err(|error| format!("{error:?}"))?;
        assert_eq!(layer.digest.to_string(), D2);
        Ok(())
    }

    #[test]
    fn several_wasm_layers_are_rejected() -> Result<(), String> {
        let Document::Manifest { mut layers } = parse_document(wasm_manifest().as_bytes(), None)?
        else {
            return Err("parsed as an index".to_owned());
        };
        layers.push(layers[0].clone());
        assert_eq!(
            component_layer(&layers).map(|layer| layer.digest),
            Err(LayerError::Several(2))
        );
        Ok(())
    }

    #[test]
    fn index_with_single_entry() -> Result<(), String> {
        let manifests = manifests_of(&index(&[entry("linux", "amd64", D1)]));
        assert_eq!(select_index_entry(&manifests)?.digest.to_string(), D1);
        Ok(())
    }

    #[test]
    fn index_prefers_wasip2_then_wasi() -> Result<(), String> {
        let manifests = manifests_of(&index(&[
            entry("linux", "amd64", D1),
            entry("wasi", "wasm", D2),
            entry("wasip2", "wasm", D3),
        ]));
        assert_eq!(select_index_entry(&manifests)?.digest.to_string(), D3);

        let manifests = manifests_of(&index(&[
            entry("linux", "amd64", D1),
            entry("wasi", "wasm", D2),
        ]));
        assert_eq!(select_index_entry(&manifests)?.digest.to_string(), D2);
        Ok(())
    }

    #[test]
    fn index_without_wasm_entry_lists_entries() {
        let manifests = manifests_of(&index(&[
            entry("linux", "amd64", D1),
            entry("linux", "arm64", D2),
        ]));
        match select_index_entry(&manifests) {
            Ok(entry) => panic!("selected {entry:?}"),
            Err(listing) => {
                assert!(
                    listing.contains(&format!("linux/amd64 ({OCI_MANIFEST}, {D1})")),
                    "{listing}"
                );
                assert!(
                    listing.contains(&format!("linux/arm64 ({OCI_MANIFEST}, {D2})")),
                    "{listing}"
                );
            }
        }
    }

    #[test]
    fn index_with_two_wasip2_entries_is_ambiguous() {
        let manifests = manifests_of(&index(&[
            entry("wasip2", "wasm", D1),
            entry("wasip2", "wasm", D2),
        ]));
        assert!(select_index_entry(&manifests).is_err());
        assert_eq!(select_index_entry(&[]), Err("none".to_owned()));
    }
}
