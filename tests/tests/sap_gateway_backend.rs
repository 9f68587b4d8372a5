//! Direct tests of the SAP Gateway-like test backend, so that gateway tests
//! can rely on its CSRF, redirect, caching, gzip and `$batch` behaviour.

use std::io::Read as _;

use anyhow::Result;
use btp_gateway_tests::harness::{HttpResponse, SapGateway, get, request, request_with_body};
use bytes::Bytes;
use flate2::read::GzDecoder;
use http::{Method, StatusCode};

/// Fetches a CSRF token and returns it with the `Cookie` header value that
/// carries the session cookies.
async fn fetch_token(backend: &SapGateway) -> Result<(String, String)> {
    let response = get(&backend.service_url(), &[("x-csrf-token", "Fetch")]).await?;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    Ok((response.header("x-csrf-token"), session_cookies(&response)))
}

/// Turns every `Set-Cookie` header into one `Cookie` header value.
fn session_cookies(response: &HttpResponse) -> String {
    response
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

fn gunzip(body: &[u8]) -> Result<Vec<u8>> {
    let mut decoded = Vec::new();
    GzDecoder::new(body).read_to_end(&mut decoded)?;
    Ok(decoded)
}

#[tokio::test]
async fn csrf_token_fetch_require_and_expire() -> Result<()> {
    let backend = SapGateway::start().await?;
    let items = format!("{}Items", backend.service_url());
    let new_item = Bytes::from_static(br#"{"ID":"13","Name":"New","Price":"1.000"}"#);

    let rejected = request_with_body(Method::POST, &items, &[], new_item.clone()).await?;
    assert_eq!(rejected.status, StatusCode::FORBIDDEN);
    assert_eq!(rejected.header("x-csrf-token"), "Required");
    assert!(rejected.header("content-type").starts_with("text/plain"));
    assert_eq!(rejected.text(), "CSRF token validation failed");

    let fetch = get(&backend.service_url(), &[("x-csrf-token", "Fetch")]).await?;
    let token = fetch.header("x-csrf-token");
    let set_cookies: Vec<_> = fetch.headers.get_all("set-cookie").iter().collect();
    assert_eq!(token.len(), 24, "token {token:?}");
    assert_eq!(set_cookies.len(), 2, "{set_cookies:?}");
    assert!(
        set_cookies[0]
            .to_str()?
            .starts_with("SAP_SESSIONID_GW1_100=")
    );
    assert!(set_cookies[0].to_str()?.ends_with("; path=/; HttpOnly"));
    assert_eq!(set_cookies[1], "sap-usercontext=sap-client=100; path=/");
    let cookie = session_cookies(&fetch);

    let without_cookie = request_with_body(
        Method::POST,
        &items,
        &[("x-csrf-token", &token)],
        new_item.clone(),
    )
    .await?;
    assert_eq!(without_cookie.status, StatusCode::FORBIDDEN);

    let headers = [
        ("x-csrf-token", token.as_str()),
        ("cookie", cookie.as_str()),
    ];
    let created = request_with_body(Method::POST, &items, &headers, new_item.clone()).await?;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(
        created.header("location"),
        format!("{}Items('13')", backend.service_url())
    );

    backend.expire_csrf_tokens();
    let expired = request(Method::DELETE, &format!("{items}('13')"), &headers).await?;
    assert_eq!(expired.status, StatusCode::FORBIDDEN);
    assert_eq!(expired.header("x-csrf-token"), "Required");

    let stats = backend.stats();
    assert_eq!(stats.csrf_fetches, 1);
    assert_eq!(stats.csrf_rejections, 3);
    Ok(())
}

#[tokio::test]
async fn token_fetch_on_missing_path() -> Result<()> {
    let backend = SapGateway::start().await?;
    let url = format!("{}NoSuchSet", backend.service_url());

    let response = get(&url, &[("x-csrf-token", "Fetch")]).await?;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert!(!response.header("x-csrf-token").is_empty());
    assert_eq!(backend.stats().csrf_fetches, 1);
    Ok(())
}

#[tokio::test]
async fn head_is_refused_without_token() -> Result<()> {
    let backend = SapGateway::start().await?;
    let response = request(
        Method::HEAD,
        &backend.service_url(),
        &[("x-csrf-token", "Fetch")],
    )
    .await?;

    assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.header("x-csrf-token"), "");
    assert_eq!(backend.stats().csrf_fetches, 0);
    Ok(())
}

#[tokio::test]
async fn service_root_redirects_to_slash() -> Result<()> {
    let backend = SapGateway::start().await?;
    let url = format!("{}/sap/opu/odata/sap/ZGW_TEST_SRV", backend.url());

    let response = get(&url, &[("x-csrf-token", "Fetch")]).await?;
    assert_eq!(response.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(response.header("location"), backend.service_url());
    assert_eq!(response.header("x-csrf-token"), "");
    Ok(())
}

#[tokio::test]
async fn metadata_not_modified() -> Result<()> {
    let backend = SapGateway::start().await?;
    let url = format!("{}$metadata", backend.service_url());

    let full = get(&url, &[]).await?;
    assert_eq!(full.status, StatusCode::OK);
    assert_eq!(full.header("etag"), "W/\"m1\"");
    let self_link = format!(r#"<atom:link rel="self" href="{url}""#);
    assert!(full.text().contains(&self_link), "{}", full.text());

    let cached = get(&url, &[("if-none-match", "W/\"m1\"")]).await?;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert!(cached.body.is_empty());

    let stats = backend.stats();
    assert_eq!(stats.metadata_full_responses, 1);
    assert_eq!(stats.metadata_not_modified, 1);
    Ok(())
}

#[tokio::test]
async fn items_page_is_gzip_compressed() -> Result<()> {
    let backend = SapGateway::start().await?;
    let url = format!("{}Items", backend.service_url());

    let response = get(&url, &[("accept-encoding", "gzip, deflate")]).await?;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("content-encoding"), "gzip");
    let body = String::from_utf8(gunzip(&response.body)?)?;
    assert!(body.contains(r#""Price":"12.500""#), "{body}");
    assert!(body.contains(r#""Quantity":"9007199254740993""#), "{body}");
    assert!(
        body.contains(r#""ChangedAt":"\/Date(1672531200000)\/""#),
        "{body}"
    );

    let page: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(page["d"]["results"].as_array().map(Vec::len), Some(5));
    assert_eq!(page["d"]["__next"], format!("{url}?$skiptoken=5"));
    assert_eq!(
        page["d"]["results"][0]["__metadata"]["uri"],
        format!("{url}('1')")
    );

    let media = get(
        &format!("{url}('1')/$value"),
        &[("accept-encoding", "gzip")],
    )
    .await?;
    assert_eq!(media.header("content-type"), "application/octet-stream");
    assert_eq!(media.header("content-encoding"), "gzip");
    assert!(gunzip(&media.body)?.starts_with(b"Media content of item 1."));
    Ok(())
}

#[tokio::test]
async fn item_update_checks_if_match() -> Result<()> {
    let backend = SapGateway::start().await?;
    let (token, cookie) = fetch_token(&backend).await?;
    let url = format!("{}Items('1')", backend.service_url());

    let read = get(&url, &[]).await?;
    let etag = read.header("etag");
    assert_eq!(etag, "W/\"datetime'2023-01-01T00%3A00%3A00'\"");
    let sap_message = read
        .headers
        .get("sap-message")
        .map(|value| value.as_bytes());
    let expected = r#"{"code":"ZGW/002","message":"Größe geändert","severity":"info"}"#;
    assert_eq!(sap_message, Some(expected.as_bytes()));

    let body = Bytes::from_static(br#"{"Name":"Changed"}"#);
    let headers = [
        ("x-csrf-token", token.as_str()),
        ("cookie", cookie.as_str()),
        ("if-match", etag.as_str()),
    ];
    let merge = Method::from_bytes(b"MERGE")?;
    let fresh = request_with_body(merge, &url, &headers, body.clone()).await?;
    assert_eq!(fresh.status, StatusCode::NO_CONTENT, "{}", fresh.text());
    assert_ne!(fresh.header("etag"), etag);

    let tunnelled = [
        ("x-csrf-token", token.as_str()),
        ("cookie", cookie.as_str()),
        ("if-match", etag.as_str()),
        ("x-http-method", "MERGE"),
    ];
    let stale = request_with_body(Method::POST, &url, &tunnelled, body).await?;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert!(stale.text().starts_with("<?xml"), "{}", stale.text());
    Ok(())
}

#[tokio::test]
async fn batch_changeset_fails_as_a_whole() -> Result<()> {
    let backend = SapGateway::start().await?;
    let (token, cookie) = fetch_token(&backend).await?;
    let batch = concat!(
        "--batch_1\r\n",
        "Content-Type: application/http\r\n",
        "Content-Transfer-Encoding: binary\r\n",
        "\r\n",
        "GET Items?$top=1 HTTP/1.1\r\n",
        "\r\n",
        "\r\n",
        "--batch_1\r\n",
        "Content-Type: multipart/mixed; boundary=changeset_1\r\n",
        "\r\n",
        "--changeset_1\r\n",
        "Content-Type: application/http\r\n",
        "Content-Transfer-Encoding: binary\r\n",
        "\r\n",
        "POST Items HTTP/1.1\r\n",
        "Content-Type: application/json\r\n",
        "\r\n",
        "{\"ID\":\"13\",\"Name\":\"Rolled back\"}\r\n",
        "--changeset_1\r\n",
        "Content-Type: application/http\r\n",
        "Content-Transfer-Encoding: binary\r\n",
        "\r\n",
        "POST Fail HTTP/1.1\r\n",
        "Content-Type: application/json\r\n",
        "\r\n",
        "{}\r\n",
        "--changeset_1--\r\n",
        "\r\n",
        "--batch_1--\r\n",
    );
    let headers = [
        ("x-csrf-token", token.as_str()),
        ("cookie", cookie.as_str()),
        ("content-type", "multipart/mixed; boundary=batch_1"),
    ];
    let url = format!("{}$batch", backend.service_url());

    let response = request_with_body(Method::POST, &url, &headers, Bytes::from(batch)).await?;
    assert_eq!(response.status, StatusCode::ACCEPTED);
    assert!(
        response
            .header("content-type")
            .starts_with("multipart/mixed; boundary=")
    );
    let text = response.text();
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 1, "{text}");
    assert_eq!(
        text.matches("HTTP/1.1 400 Bad Request").count(),
        1,
        "{text}"
    );
    assert!(!text.contains("201 Created"), "{text}");
    assert!(text.contains("<code>ZGW/001</code>"), "{text}");

    let rolled_back = get(&format!("{}Items('13')", backend.service_url()), &[]).await?;
    assert_eq!(rolled_back.status, StatusCode::NOT_FOUND);
    let recorded = backend.requests_with_bodies();
    let batch_request = recorded
        .iter()
        .find(|recorded| recorded.request.target.ends_with("$batch"));
    assert_eq!(
        batch_request.map(|recorded| recorded.body_text()),
        Some(batch.to_owned())
    );
    assert_eq!(backend.stats().batch_requests, 1);
    Ok(())
}
