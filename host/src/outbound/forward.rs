//! Rewriting a guest's request to a destination into the request that goes
//! on the wire.

use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Uri};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::destination::ResolvedDestination;

/// Characters encoded in a query parameter name or value that the host adds.
const QUERY_COMPONENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'`');

/// Headers a guest may not set towards a destination: credentials and
/// routing belong to the host. `Cookie` is allowed, because the guest sends
/// back the backend's own session cookies for its CSRF token; the client's
/// cookies never reach the guest, since the host removes them from the
/// incoming request.
const GUEST_HEADERS_REMOVED: [HeaderName; 4] = [
    header::HOST,
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::FORWARDED,
];

const SAP_CLIENT_HEADER: HeaderName = HeaderName::from_static("sap-client");

/// Returns the raw value of the first query parameter called `name`.
fn query_parameter<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some((key, value)) if key == name => Some(value),
            _ => None,
        })
}

/// The header that carries the correlation id.
pub const CORRELATION_HEADER: HeaderName = HeaderName::from_static("x-correlationid");

/// Builds the target URI: the destination URL's path joined to the guest's
/// path with exactly one `/` (an empty guest path requests the destination
/// URL's path as it is, without a trailing `/`), the guest's query unchanged,
/// then the
/// destination's `URL.queries.*` and `sap-client` where the guest did not
/// set them.
pub fn target_uri(
    destination: &ResolvedDestination,
    path_and_query: &str,
) -> Result<Uri, http::Error> {
    let config = &destination.config;
    let (guest_path, guest_query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };

    let base_path = config.url.path().trim_end_matches('/');
    let mut target = String::with_capacity(base_path.len() + path_and_query.len() + 32);
    target.push_str(base_path);
    target.push_str(guest_path);
    if target.is_empty() {
        target.push('/');
    }

    let mut query: Vec<String> = Vec::new();
    if let Some(guest_query) = guest_query.filter(|q| !q.is_empty()) {
        query.push(guest_query.to_owned());
    }
    if let Some(base_query) = config.url.query().filter(|q| !q.is_empty()) {
        query.push(base_query.to_owned());
    }
    let mut add_parameter = |name: &str, value: &str| {
        let present = query
            .iter()
            .flat_map(|part| part.split('&'))
            .any(|pair| pair.split_once('=').map_or(pair, |(n, _)| n) == name);
        if !present {
            query.push(format!(
                "{}={}",
                utf8_percent_encode(name, QUERY_COMPONENT),
                utf8_percent_encode(value, QUERY_COMPONENT)
            ));
        }
    };
    for (name, value) in &config.url_queries {
        add_parameter(name, value);
    }
    if let Some(client) = &config.sap_client {
        add_parameter("sap-client", client);
    }
    if !query.is_empty() {
        target.push('?');
        target.push_str(&query.join("&"));
    }

    let authority = match config.url.port() {
        Some(port) => format!("{}:{port}", config.url.host_str().unwrap_or_default()),
        None => config.url.host_str().unwrap_or_default().to_owned(),
    };
    Uri::builder()
        .scheme(config.url.scheme())
        .authority(authority)
        .path_and_query(target)
        .build()
}

/// Rewrites the guest's request in place: target URI, host-owned headers
/// removed, then the destination's headers, credentials and the
/// correlation id added.
pub fn rewrite<B>(
    request: &mut Request<B>,
    destination: &ResolvedDestination,
    target: Uri,
    correlation_id: &HeaderValue,
) -> Result<(), String> {
    *request.uri_mut() = target;

    // The SAP Cloud SDK sends `sap-client` as a header, the approuter as a
    // query parameter. Both are sent, unless the request chose another
    // client in its query.
    let sap_client = match &destination.config.sap_client {
        Some(client)
            if query_parameter(request.uri().query(), "sap-client") == Some(client.as_str()) =>
        {
            Some(
                HeaderValue::try_from(client.as_str()).map_err(|_| {
                    "the sap-client property is not a valid header value".to_owned()
                })?,
            )
        }
        _ => None,
    };

    let headers = request.headers_mut();
    for name in GUEST_HEADERS_REMOVED {
        headers.remove(name);
    }
    for (name, value) in &destination.config.url_headers {
        let name = HeaderName::try_from(name.as_str())
            .map_err(|_| format!("invalid header name '{name}'"))?;
        let value = HeaderValue::try_from(value.as_str())
            .map_err(|_| format!("invalid value for header '{name}'"))?;
        // A header the request already has wins, as for URL.queries.*.
        headers.entry(name).or_insert(value);
    }
    if let Some(auth) = &destination.auth_header {
        let mut value = HeaderValue::try_from(auth.value.expose()).map_err(|_| {
            format!(
                "the auth token for header '{}' is not a valid header value",
                auth.name
            )
        })?;
        value.set_sensitive(true);
        headers.insert(auth.name.clone(), value);
    }
    if let Some(value) = sap_client {
        headers.insert(SAP_CLIENT_HEADER, value);
    }
    headers.insert(CORRELATION_HEADER, correlation_id.clone());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::DestinationConfig;

    fn destination(url: &str) -> ResolvedDestination {
        ResolvedDestination {
            config: DestinationConfig::new(
                "d",
                url::Url::parse(url).unwrap_or_else(|error| panic!("{error}")),
            ),
            auth_header: None,
            client: None,
            tenant: None,
        }
    }

    fn target(destination: &ResolvedDestination, path: &str) -> String {
        target_uri(destination, path)
            .map(|uri| uri.to_string())
            .unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn joins_with_exactly_one_slash() {
        for url in [
            "http://h:1/odata/v4/catalog",
            "http://h:1/odata/v4/catalog/",
        ] {
            assert_eq!(
                target(&destination(url), "/Books('A%2FB''1')"),
                "http://h:1/odata/v4/catalog/Books('A%2FB''1')"
            );
        }
        assert_eq!(
            target(&destination("https://h"), "/x?a=%27%27"),
            "https://h/x?a=%27%27"
        );
        assert_eq!(
            target(&destination("https://h/base"), "/"),
            "https://h/base/"
        );
        assert_eq!(
            target(&destination("https://h/base/"), ""),
            "https://h/base"
        );
        assert_eq!(target(&destination("https://h"), ""), "https://h/");
        assert_eq!(
            target(&destination("https://h/base"), "?a=1"),
            "https://h/base?a=1"
        );
    }

    #[test]
    fn adds_sap_client_and_queries_once() {
        let mut dest = destination("http://h/svc");
        dest.config.sap_client = Some("100".to_owned());
        dest.config.url_queries = vec![("sap-language".to_owned(), "EN".to_owned())];
        assert_eq!(
            target(&dest, "/E?$top=1"),
            "http://h/svc/E?$top=1&sap-language=EN&sap-client=100"
        );
        assert_eq!(
            target(&dest, "/E?sap-client=200&sap-language=DE"),
            "http://h/svc/E?sap-client=200&sap-language=DE"
        );
        assert_eq!(
            target(&dest, "/E"),
            "http://h/svc/E?sap-language=EN&sap-client=100"
        );
    }

    #[test]
    fn sap_client_header_unless_overridden() {
        let mut dest = destination("http://h/svc");
        dest.config.sap_client = Some("100".to_owned());
        let id = HeaderValue::from_static("corr-1");
        for (path, expected) in [("/E", Some("100")), ("/E?sap-client=200", None)] {
            let mut request = Request::builder()
                .uri("http://destination.invalid/d/E")
                .body(())
                .unwrap_or_else(|error| panic!("{error}"));
            let target = target_uri(&dest, path).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(rewrite(&mut request, &dest, target, &id), Ok(()));
            let header = request
                .headers()
                .get("sap-client")
                .map(|value| value.to_str().unwrap_or_default());
            assert_eq!(header, expected, "{path}");
        }
    }

    #[test]
    fn host_owned_headers_are_replaced() {
        let mut dest = destination("http://h/svc");
        dest.auth_header = Some(crate::destination::AuthHeader {
            name: header::AUTHORIZATION,
            value: crate::secret::Secret::new("Basic abc"),
        });
        dest.config.url_headers = vec![("x-api-key".to_owned(), "k".to_owned())];
        let mut request = Request::builder()
            .uri("http://destination.invalid/d/x")
            .header("authorization", "Bearer guest")
            .header("cookie", "SAP_SESSIONID=backend")
            .header("x-correlationid", "forged")
            .header("x-api-key", "from-request")
            .header("accept", "application/json")
            .body(())
            .unwrap_or_else(|error| panic!("{error}"));
        let target = target_uri(&dest, "/x").unwrap_or_else(|error| panic!("{error}"));
        let id = HeaderValue::from_static("corr-1");
        assert_eq!(rewrite(&mut request, &dest, target, &id), Ok(()));

        let headers = request.headers();
        assert_eq!(headers["authorization"], "Basic abc");
        assert!(headers["authorization"].is_sensitive());
        assert_eq!(headers["cookie"], "SAP_SESSIONID=backend");
        assert_eq!(headers["x-correlationid"], "corr-1");
        assert_eq!(headers["x-api-key"], "from-request");
        assert_eq!(headers["accept"], "application/json");
        assert_eq!(request.uri().to_string(), "http://h/svc/x");
    }
}
