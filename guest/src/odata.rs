//! OData protocol facts the gateway needs: which version a service speaks,
//! and whether a backend error body is already an OData error.

/// The OData version whose error format the client expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ODataVersion {
    V2,
    V4,
}

impl ODataVersion {
    /// Chooses the version from what is known about the exchange, in this
    /// order: the backend's version header, the client's version headers,
    /// then the service path (SAP Gateway's `/sap/opu/odata/` and CAP's
    /// `/odata/v2/` are V2). V4 is the default.
    pub fn detect(
        response_headers: &[(String, Vec<u8>)],
        request_headers: &[(String, Vec<u8>)],
        service_path: &str,
    ) -> Self {
        if let Some(version) = from_headers(response_headers) {
            return version;
        }
        if let Some(version) = from_headers(request_headers) {
            return version;
        }
        if service_path.contains("/sap/opu/odata/") || service_path.contains("/odata/v2/") {
            Self::V2
        } else {
            Self::V4
        }
    }
}

fn from_headers(headers: &[(String, Vec<u8>)]) -> Option<ODataVersion> {
    for (name, value) in headers {
        let major = value.trim_ascii().first().copied();
        match name.as_str() {
            "odata-version" | "odata-maxversion" if major == Some(b'4') => {
                return Some(ODataVersion::V4);
            }
            "dataserviceversion" | "maxdataserviceversion"
                if matches!(major, Some(b'1' | b'2' | b'3')) =>
            {
                return Some(ODataVersion::V2);
            }
            _ => {}
        }
    }
    None
}

/// Returns the media type of a `Content-Type` value, lowercase and without
/// parameters.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Returns whether an error body is an OData error in JSON (an object with
/// an `error` member) or XML (an `error` root element in the OData
/// metadata namespace, as SAP Gateway sends it).
pub fn is_odata_error(content_type: &str, body: &[u8]) -> bool {
    let media = media_type(content_type);
    if media == "application/json" || media.ends_with("+json") {
        return serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .is_some_and(|value| value.get("error").is_some_and(|e| e.is_object()));
    }
    if media == "application/xml" || media == "text/xml" || media.ends_with("+xml") {
        return xml_root_is_error(body);
    }
    false
}

/// Returns whether the first element of an XML document is `error` (any
/// prefix) in the V2 or V4 metadata namespace.
fn xml_root_is_error(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    let mut rest = text.trim_start_matches('\u{feff}').trim_start();
    // Skip the XML declaration, processing instructions and comments.
    while rest.starts_with("<?") || rest.starts_with("<!--") {
        let end = if rest.starts_with("<?") { "?>" } else { "-->" };
        match rest.find(end) {
            Some(position) => rest = rest[position + end.len()..].trim_start(),
            None => return false,
        }
    }
    let Some(tag) = rest.strip_prefix('<') else {
        return false;
    };
    let name_end = tag
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .unwrap_or(tag.len());
    let name = &tag[..name_end];
    let local = name.rsplit(':').next().unwrap_or(name);
    let start_tag = &tag[..tag.find('>').unwrap_or(tag.len())];
    local == "error"
        && (start_tag.contains("schemas.microsoft.com/ado/2007/08/dataservices/metadata")
            || start_tag.contains("docs.oasis-open.org/odata/ns/metadata"))
}

/// Describes a non-OData body for an error message: its media type and a
/// short, single-line excerpt. An HTML page is described by its title, or
/// its text without tags.
pub fn describe_body(content_type: &str, body: &[u8]) -> String {
    const MAX_CHARS: usize = 160;
    let media = media_type(content_type);
    let text = String::from_utf8_lossy(body);
    let excerpt = if media == "text/html" || text.trim_start().starts_with('<') {
        html_title(&text).unwrap_or_else(|| strip_tags(&text))
    } else {
        text.into_owned()
    };
    let excerpt: String = excerpt.split_whitespace().collect::<Vec<_>>().join(" ");
    let excerpt: String = excerpt.chars().take(MAX_CHARS).collect();

    let kind = if media.is_empty() {
        "without a content type".to_owned()
    } else {
        format!("with {media}")
    };
    if excerpt.is_empty() {
        if body.is_empty() {
            "with an empty body".to_owned()
        } else {
            format!("{kind} and no readable text")
        }
    } else {
        format!("{kind}: {excerpt}")
    }
}

fn html_title(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = start + lower[start..].find('>')? + 1;
    let close = open_end + lower[open_end..].find("</title")?;
    let title = html[open_end..close].trim();
    (!title.is_empty()).then(|| format!("an HTML page titled '{title}'"))
}

fn strip_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: &str) -> (String, Vec<u8>) {
        (name.to_owned(), value.as_bytes().to_vec())
    }

    #[test]
    fn version_from_response_then_request_then_path() {
        let v2 = [header("dataserviceversion", "2.0")];
        let v4 = [header("odata-version", "4.0")];
        assert_eq!(ODataVersion::detect(&v2, &v4, "/x"), ODataVersion::V2);
        assert_eq!(
            ODataVersion::detect(&[], &v4, "/sap/opu/odata/sap/X/"),
            ODataVersion::V4
        );
        assert_eq!(
            ODataVersion::detect(&[], &[], "/sap/opu/odata/sap/X/Items"),
            ODataVersion::V2
        );
        assert_eq!(
            ODataVersion::detect(&[], &[], "/odata/v2/orders/Orders"),
            ODataVersion::V2
        );
        assert_eq!(
            ODataVersion::detect(&[], &[], "/odata/v4/orders/Orders"),
            ODataVersion::V4
        );
        let max_v2 = [header("maxdataserviceversion", "2.0")];
        assert_eq!(ODataVersion::detect(&[], &max_v2, "/x"), ODataVersion::V2);
    }

    #[test]
    fn recognises_odata_errors() {
        assert!(is_odata_error(
            "application/json;charset=utf-8",
            br#"{"error":{"code":"1","message":"m"}}"#
        ));
        assert!(!is_odata_error("application/json", br#"{"message":"m"}"#));
        assert!(!is_odata_error("application/json", b"<html></html>"));
        let sap_xml = br#"<?xml version="1.0" encoding="utf-8"?><error xmlns="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"><code>ZGW/001</code><message xml:lang="en">locked</message></error>"#;
        assert!(is_odata_error("application/xml", sap_xml));
        let v4_xml = br#"<m:error xmlns:m="http://docs.oasis-open.org/odata/ns/metadata"><m:code>1</m:code></m:error>"#;
        assert!(is_odata_error("application/xml", v4_xml));
        assert!(!is_odata_error(
            "application/xml",
            b"<html><body>x</body></html>"
        ));
        assert!(!is_odata_error("text/html", b"<error/>"));
    }

    #[test]
    fn recognises_fixture_errors() {
        let folder =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/odata");
        for (file, content_type) in [
            ("olingo4_error.json", "application/json"),
            ("olingo4_500error.json", "application/json"),
            ("olingo4_error.xml", "application/xml"),
        ] {
            let path = folder.join(file);
            let body = match std::fs::read(&path) {
                Ok(body) => body,
                Err(error) => panic!("cannot read fixture {}: {error}", path.display()),
            };
            assert!(is_odata_error(content_type, &body), "{file}");
        }
    }

    #[test]
    fn describes_login_page_by_title() {
        let page = b"<html><head><title>Logon</title></head><body><form>...</form></body></html>";
        assert_eq!(
            describe_body("text/html; charset=utf-8", page),
            "with text/html: an HTML page titled 'Logon'"
        );
    }

    #[test]
    fn describes_plain_text_and_empty() {
        let text = b"There is no SAP Cloud Connector (SCC)\n connected to your subaccount.";
        assert_eq!(
            describe_body("text/plain", text),
            "with text/plain: There is no SAP Cloud Connector (SCC) connected to your subaccount."
        );
        assert_eq!(describe_body("", b""), "with an empty body");
        let long = "x".repeat(1000);
        assert!(describe_body("text/plain", long.as_bytes()).len() < 200);
    }
}
