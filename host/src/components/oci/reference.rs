//! `oci://` references to components in OCI registries.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use crate::components::digest::Digest;

const SCHEME: &str = "oci://";

/// The tag a reference without tag and digest points at, as in Docker.
const DEFAULT_TAG: &str = "latest";

/// Repository names longer than this are rejected by Docker and most
/// registries.
const MAX_REPOSITORY_LENGTH: usize = 255;

/// Tags are at most 128 characters (OCI distribution specification).
const MAX_TAG_LENGTH: usize = 128;

const EXPECTED_FORM: &str = "oci://REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST], \
     for example oci://ghcr.io/acme/gateway:v1";

/// A component's location in an OCI registry,
/// `oci://REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]`.
///
/// A reference with a digest is pinned: it always names the same manifest,
/// and a tag written beside the digest is informational only. A reference
/// without a digest follows its tag, `latest` when none is written.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// A string that is not a valid `oci://` reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid OCI reference {value:?}: {reason}; expected {}",
    EXPECTED_FORM
)]
pub struct InvalidReference {
    /// The rejected text, with any credentials replaced by `***`.
    pub value: String,
    pub reason: String,
}

impl InvalidReference {
    fn new(text: &str, reason: impl Into<String>) -> Self {
        Self {
            value: redact_userinfo(text),
            reason: reason.into(),
        }
    }
}

impl Reference {
    /// Returns the registry as written, `host` or `host:port`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Returns the repository, for example `acme/gateway`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Returns the tag as written, or `latest` when the reference has
    /// neither tag nor digest.
    pub fn tag(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => Some(tag),
            (None, None) => Some(DEFAULT_TAG),
            (None, Some(_)) => None,
        }
    }

    /// Returns the pinned manifest digest, if the reference has one.
    pub fn digest(&self) -> Option<Digest> {
        self.digest
    }

    /// Returns whether the reference follows a tag, so that the manifest it
    /// names can change; `false` for a reference pinned by digest.
    pub fn follows_tag(&self) -> bool {
        self.digest.is_none()
    }

    /// Returns the same reference pinned to `digest`, for pulling exactly
    /// the manifest that [`super::RegistryClient::resolve`] returned.
    pub fn pinned(&self, digest: Digest) -> Self {
        Self {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// Returns whether the registry is on this machine, where Docker also
    /// uses plain HTTP: `localhost`, 127.0.0.0/8 and `[::1]`.
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => host,
            _ => &self.registry,
        };
        is_loopback_host(host)
    }

    /// Returns `http` for a registry on this machine and `https` for every
    /// other registry.
    pub fn scheme(&self) -> &'static str {
        if self.is_loopback() { "http" } else { "https" }
    }

    /// Returns the manifest's name in registry URLs: the digest when pinned,
    /// the tag otherwise.
    pub(super) fn manifest_name(&self) -> String {
        match (self.digest, self.tag()) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.to_owned(),
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }

    /// Returns the token scope for pulling from the repository.
    pub(super) fn pull_scope(&self) -> String {
        format!("repository:{}:pull", self.repository)
    }
}

/// Returns whether `host` (a name, an IPv4 address or a bracketed IPv6
/// address) is `localhost` or a loopback address.
pub(super) fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let address = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    address
        .parse::<IpAddr>()
        .is_ok_and(|address| address.is_loopback())
}

impl FromStr for Reference {
    type Err = InvalidReference;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| InvalidReference::new(text, reason);

        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| fail("it does not start with `oci://`".to_owned()))?;
        if rest.contains('?') {
            return Err(fail("a query (`?…`) is not allowed".to_owned()));
        }
        if rest.contains('#') {
            return Err(fail("a fragment (`#…`) is not allowed".to_owned()));
        }
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| fail("the repository is missing".to_owned()))?;
        if registry.contains('@') {
            return Err(fail(
                "credentials are not allowed in the reference: configure them for the registry"
                    .to_owned(),
            ));
        }
        validate_registry(registry).map_err(fail)?;

        let (name_and_tag, digest) = match path.split_once('@') {
            Some((name_and_tag, digest)) => {
                let digest = digest
                    .parse::<Digest>()
                    .map_err(|error| fail(error.to_string()))?;
                (name_and_tag, Some(digest))
            }
            None => (path, None),
        };
        // A `:` can only start the tag here, because the registry's port is
        // already split off; the tag follows the last path component.
        let last_component = name_and_tag.rfind('/').map_or(0, |slash| slash + 1);
        let (repository, tag) = match name_and_tag[last_component..].find(':') {
            Some(colon) => {
                let (repository, tag) = name_and_tag.split_at(last_component + colon);
                (repository, Some(&tag[1..]))
            }
            None => (name_and_tag, None),
        };
        validate_repository(repository).map_err(fail)?;
        if let Some(tag) = tag {
            validate_tag(tag).map_err(fail)?;
        }

        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }
}

fn validate_registry(registry: &str) -> Result<(), String> {
    if registry.is_empty() {
        return Err("the registry is empty".to_owned());
    }
    let (host, port) = split_host_port(registry)?;
    let valid_host = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|address| address.parse::<Ipv6Addr>().is_ok())
    } else {
        host.split('.').all(is_host_label)
    };
    if !valid_host {
        return Err(format!(
            "the registry host {host:?} is not a valid host name or IP address"
        ));
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|port| port != 0)
    {
        return Err(format!(
            "the registry port {port:?} is not a number from 1 to 65535"
        ));
    }
    Ok(())
}

/// Splits `host[:port]`, where `host` may be a bracketed IPv6 address.
fn split_host_port(registry: &str) -> Result<(&str, Option<&str>), String> {
    let host_end = if registry.starts_with('[') {
        registry
            .find(']')
            .map(|bracket| bracket + 1)
            .ok_or_else(|| format!("the registry {registry:?} has an unclosed `[`"))?
    } else {
        registry.find(':').unwrap_or(registry.len())
    };
    let (host, rest) = registry.split_at(host_end);
    match rest.strip_prefix(':') {
        Some(port) => Ok((host, Some(port))),
        None if rest.is_empty() => Ok((host, None)),
        None => Err(format!(
            "the registry {registry:?} has unexpected text after the host"
        )),
    }
}

fn is_host_label(label: &str) -> bool {
    !label.is_empty()
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
}

fn validate_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("the repository is empty".to_owned());
    }
    if repository.len() > MAX_REPOSITORY_LENGTH {
        return Err(format!(
            "the repository is longer than {MAX_REPOSITORY_LENGTH} characters"
        ));
    }
    if repository.bytes().any(|byte| byte.is_ascii_uppercase()) {
        return Err(format!(
            "the repository {repository:?} contains upper-case letters; OCI repository names are lower case"
        ));
    }
    if repository.split('/').any(str::is_empty) {
        return Err(format!(
            "the repository {repository:?} has an empty path component"
        ));
    }
    if let Some(component) = repository.split('/').find(|c| !is_path_component(c)) {
        return Err(format!(
            "the repository component {component:?} is invalid: use lower-case letters and \
             digits, separated by `.`, `_`, `__` or dashes"
        ));
    }
    Ok(())
}

/// Checks one path component against the OCI distribution specification:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_path_component(component: &str) -> bool {
    let is_alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut separators = component.split(is_alphanumeric);
    // `split` yields the text between alphanumeric runs, so the first and
    // last pieces are empty exactly when the component starts and ends
    // with an alphanumeric character.
    let starts_alphanumeric = separators.next() == Some("");
    let ends_alphanumeric = component.ends_with(is_alphanumeric);
    starts_alphanumeric
        && ends_alphanumeric
        && separators.all(|separator| {
            matches!(separator, "" | "." | "_" | "__") || separator.bytes().all(|b| b == b'-')
        })
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let mut bytes = tag.bytes();
    let valid_first = bytes
        .next()
        .is_some_and(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
    let valid_rest = bytes.all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte));
    if tag.is_empty() {
        Err("the tag after `:` is empty".to_owned())
    } else if !valid_first || !valid_rest || tag.len() > MAX_TAG_LENGTH {
        Err(format!(
            "the tag {tag:?} is invalid: use at most {MAX_TAG_LENGTH} letters, digits, `_`, `.` \
             and `-`, not starting with `.` or `-`"
        ))
    } else {
        Ok(())
    }
}

/// Replaces `user:password@` in the authority with `***@`, so that an error
/// about a reference never repeats credentials written into it.
fn redact_userinfo(text: &str) -> String {
    let Some(rest) = text.strip_prefix(SCHEME) else {
        return text.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{SCHEME}***{}", &rest[at..]),
        None => text.to_owned(),
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn valid_references_round_trip() {
        let pinned = format!("oci://127.0.0.1:5000/team/orders@{DIGEST}");
        let tagged_and_pinned = format!("oci://ghcr.io/acme/gateway:v1@{DIGEST}");
        let cases = [
            "oci://ghcr.io/acme/gateway:v1",
            "oci://ghcr.io/acme/gateway",
            "oci://localhost/gateway:latest",
            "oci://localhost:5000/a/b/c:1.2.3-rc_1",
            "oci://[::1]:5000/gateway:v1",
            "oci://registry-1.example.com/a.b/c__d/e---f:_x",
            "oci://REGISTRY.example.com/acme/gateway:V1",
            pinned.as_str(),
            tagged_and_pinned.as_str(),
        ];
        for text in cases {
            match text.parse::<Reference>() {
                Ok(reference) => assert_eq!(reference.to_string(), text),
                Err(error) => panic!("{text} was rejected: {error}"),
            }
        }
    }

    #[test]
    fn parts_of_tagged_reference() -> Result<(), InvalidReference> {
        let reference: Reference = "oci://ghcr.io:443/acme/gateway:v1".parse()?;
        assert_eq!(reference.registry(), "ghcr.io:443");
        assert_eq!(reference.repository(), "acme/gateway");
        assert_eq!(reference.tag(), Some("v1"));
        assert_eq!(reference.digest(), None);
        assert!(reference.follows_tag());
        assert_eq!(reference.manifest_name(), "v1");
        assert_eq!(reference.pull_scope(), "repository:acme/gateway:pull");
        Ok(())
    }

    #[test]
    fn tag_defaults_to_latest() -> Result<(), InvalidReference> {
        let reference: Reference = "oci://ghcr.io/acme/gateway".parse()?;
        assert_eq!(reference.tag(), Some("latest"));
        assert_eq!(reference.manifest_name(), "latest");
        assert_eq!(reference.to_string(), "oci://ghcr.io/acme/gateway");
        Ok(())
    }

    #[test]
    fn digest_pins_reference() -> Result<(), Box<dyn std::error::Error>> {
        let digest: Digest = DIGEST.parse()?;
        let reference: Reference = format!("oci://ghcr.io/acme/gateway:v1@{DIGEST}").parse()?;
        assert_eq!(reference.digest(), Some(digest));
        assert!(!reference.follows_tag());
        assert_eq!(reference.manifest_name(), DIGEST);

        let followed: Reference = "oci://ghcr.io/acme/gateway:v1".parse()?;
        assert_eq!(followed.pinned(digest), reference);
        Ok(())
    }

    #[test]
    fn scheme_is_http_only_for_loopback() -> Result<(), InvalidReference> {
        let cases = [
            ("oci://localhost/a", "http"),
            ("oci://localhost:5000/a", "http"),
            ("oci://127.0.0.1/a", "http"),
            ("oci://127.0.0.1:5000/a", "http"),
            ("oci://127.1.2.3:5000/a", "http"),
            ("oci://[::1]/a", "http"),
            ("oci://[::1]:5000/a", "http"),
            ("oci://ghcr.io/a", "https"),
            ("oci://localhost.example.com/a", "https"),
            ("oci://10.0.0.1:5000/a", "https"),
            ("oci://[::2]:5000/a", "https"),
        ];
        for (text, scheme) in cases {
            let reference: Reference = text.parse()?;
            assert_eq!(reference.scheme(), scheme, "{text}");
        }
        Ok(())
    }

    #[test]
    fn invalid_references_are_rejected() {
        let cases = [
            ("ghcr.io/acme/gateway:v1", "does not start with `oci://`"),
            (
                "https://ghcr.io/acme/gateway",
                "does not start with `oci://`",
            ),
            ("oci://ghcr.io", "repository is missing"),
            ("oci:///acme/gateway", "registry is empty"),
            ("oci://ghcr.io/", "repository is empty"),
            ("oci://ghcr.io/:v1", "repository is empty"),
            ("oci://ghcr.io/acme//gateway", "empty path component"),
            ("oci://ghcr.io/acme/gateway/", "empty path component"),
            ("oci://ghcr.io/Acme/gateway", "upper-case"),
            ("oci://ghcr.io/acme/-gateway", "component \"-gateway\""),
            ("oci://ghcr.io/acme/gate..way", "component \"gate..way\""),
            ("oci://ghcr.io/acme/gate___way", "component \"gate___way\""),
            ("oci://ghcr.io/acme/gateway:", "tag after `:` is empty"),
            ("oci://ghcr.io/acme/gateway:-v1", "tag \"-v1\" is invalid"),
            (
                "oci://ghcr.io/acme/gateway:v1:v2",
                "tag \"v1:v2\" is invalid",
            ),
            ("oci://ghcr.io/acme/gateway@", "invalid digest"),
            ("oci://ghcr.io/acme/gateway@sha256:abc", "invalid digest"),
            ("oci://ghcr.io/acme/gateway:v1?x=1", "query"),
            ("oci://ghcr.io/acme/gateway#v1", "fragment"),
            (
                "oci://user:pw@ghcr.io/acme/gateway",
                "credentials are not allowed",
            ),
            ("oci://ghcr.io:0/acme/gateway", "port \"0\""),
            ("oci://ghcr.io:99999/acme/gateway", "port \"99999\""),
            ("oci://ghcr.io:/acme/gateway", "port \"\""),
            ("oci://gh_cr.io/acme/gateway", "host \"gh_cr.io\""),
            ("oci://-ghcr.io/acme/gateway", "host \"-ghcr.io\""),
            ("oci://ghcr..io/acme/gateway", "host \"ghcr..io\""),
            ("oci://[::1/acme/gateway", "unclosed `[`"),
            ("oci://[zz]:5000/acme/gateway", "host \"[zz]\""),
        ];
        for (text, reason) in cases {
            match text.parse::<Reference>() {
                Ok(reference) => panic!("{text} was accepted as {reference:?}"),
                Err(error) => {
                    let message = error.to_string();
                    assert!(message.contains(reason), "{text}: {message}");
                    assert!(message.contains("expected oci://REGISTRY/"), "{message}");
                }
            }
        }
    }

    #[test]
    fn rejected_value_is_named() {
        let text = "oci://ghcr.io/Acme/gateway";
        match text.parse::<Reference>() {
            Ok(reference) => panic!("accepted {reference:?}"),
            Err(error) => assert_eq!(error.value, text),
        }
    }

    #[test]
    fn credentials_are_not_repeated() {
        let text = "oci://robot:hunter2@ghcr.io/acme/gateway:v1";
        match text.parse::<Reference>() {
            Ok(reference) => panic!("accepted {reference:?}"),
            Err(error) => {
                let message = error.to_string();
                assert!(!message.contains("hunter2"), "{message}");
                assert!(!message.contains("robot"), "{message}");
                assert!(
                    message.contains("\"oci://***@ghcr.io/acme/gateway:v1\""),
                    "{message}"
                );
            }
        }
    }

    #[test]
    fn overlong_tag_is_rejected() {
        let text = format!("oci://ghcr.io/acme/gateway:{}", "a".repeat(129));
        assert!(text.parse::<Reference>().is_err());
        let text = format!("oci://ghcr.io/acme/gateway:{}", "a".repeat(128));
        assert!(text.parse::<Reference>().is_ok());
    }

    #[test]
    fn serde_uses_text_form() -> Result<(), serde_json::Error> {
        let reference: Reference = serde_json::from_str("\"oci://ghcr.io/acme/gateway:v1\"")?;
        assert_eq!(reference.tag(), Some("v1"));
        assert_eq!(
            serde_json::to_string(&reference)?,
            "\"oci://ghcr.io/acme/gateway:v1\""
        );
        assert!(serde_json::from_str::<Reference>("\"oci://ghcr.io/A/b\"").is_err());
        Ok(())
    }
}
