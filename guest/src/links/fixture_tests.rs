//! Body rewriting of real OData payloads: the expected links change, and
//! mapping them back gives the input byte for byte, with LF and CRLF line
//! endings and with the body split into chunks of several sizes.

use std::path::Path;

use super::{LinkMap, body_rewriter};

const GATEWAY: &str = "https://gw.example.com/odata/REF";
const CHUNK_SIZES: [usize; 4] = [1, 7, 64, 4096];

fn read_fixture(name: &str) -> Vec<u8> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/odata");
    assert!(
        directory.is_dir(),
        "fixture folder {} is missing: check out the shared fixtures beside the repository",
        directory.display()
    );
    let path = directory.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) => panic!("cannot read fixture {}: {error}", path.display()),
    }
}

fn link_map(backend_base: &str, gateway_base: &str) -> LinkMap {
    match LinkMap::new(backend_base, gateway_base) {
        Some(map) => map,
        None => panic!("{backend_base} was rejected as backend base"),
    }
}

fn rewrite_in_chunks(content_type: &str, map: &LinkMap, body: &[u8], chunk_size: usize) -> Vec<u8> {
    let Some(mut rewriter) = body_rewriter(content_type, map) else {
        panic!("no rewriter for {content_type}");
    };
    let mut out = Vec::new();
    for chunk in body.chunks(chunk_size) {
        rewriter.write(chunk, &mut out);
    }
    rewriter.finish(&mut out);
    out
}

/// The fixture as stored and with its other line ending.
fn line_ending_variants(body: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let text = String::from_utf8_lossy(body);
    let other = if text.contains("\r\n") {
        ("LF", text.replace("\r\n", "\n"))
    } else {
        ("CRLF", text.replace('\n', "\r\n"))
    };
    vec![
        ("as stored", body.to_vec()),
        (other.0, other.1.into_bytes()),
    ]
}

/// Rewrites every line ending variant of the fixture in every chunk size,
/// checks that the output maps back to the input, and returns the output
/// of the stored variant.
fn check_round_trip(name: &str, content_type: &str, backend_base: &str) -> String {
    let forward = link_map(backend_base, GATEWAY);
    let backward = link_map(GATEWAY, backend_base);
    let mut stored_output = None;

    for (variant, body) in line_ending_variants(&read_fixture(name)) {
        let output = rewrite_in_chunks(content_type, &forward, &body, body.len().max(1));
        for chunk_size in CHUNK_SIZES {
            let chunked = rewrite_in_chunks(content_type, &forward, &body, chunk_size);
            assert!(
                chunked == output,
                "{name} ({variant}): output differs with chunks of {chunk_size} bytes"
            );
        }

        let mapped_back = rewrite_in_chunks(content_type, &backward, &output, 64);
        assert!(
            mapped_back == body,
            "{name} ({variant}): mapping the links back does not give the input:\n{}",
            String::from_utf8_lossy(&mapped_back)
        );
        stored_output.get_or_insert_with(|| String::from_utf8_lossy(&output).into_owned());
    }
    stored_output.unwrap_or_default()
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn v2_json_inline_collection() {
    let name = "olingo2_v2_inline_next_count.json";
    let input = String::from_utf8_lossy(&read_fixture(name)).into_owned();
    let output = check_round_trip(
        name,
        "application/json",
        "http://localhost:8080/ReferenceScenario.svc",
    );

    assert_eq!(
        count(&input, "http://localhost:8080/ReferenceScenario.svc/"),
        6
    );
    assert_eq!(count(&output, "http://localhost:8080"), 0);
    assert_eq!(count(&output, "https://gw.example.com/odata/REF/"), 6);
    for link in [
        r#""id" : "https://gw.example.com/odata/REF/Buildings('1')""#,
        r#""uri" : "https://gw.example.com/odata/REF/Buildings('1')""#,
        r#""id" : "https://gw.example.com/odata/REF/Rooms('1')""#,
        r#""uri" : "https://gw.example.com/odata/REF/Rooms('1')/nr_Employees""#,
        r#""uri" : "https://gw.example.com/odata/REF/Rooms('1')/nr_Building""#,
    ] {
        assert!(output.contains(link), "{link} missing in output:\n{output}");
    }
    assert!(
        output.contains(r#""__next" : "nextLink""#),
        "relative __next changed"
    );
    assert!(output.contains(r#""etag" : "W/\"1\"""#), "etag changed");
}

#[test]
fn v2_json_teams_with_count() {
    let name = "olingo2_v2_teams_count.json";
    let output = check_round_trip(
        name,
        "application/json;charset=utf-8",
        "http://localhost:8080/ReferenceScenario.svc",
    );

    assert_eq!(count(&output, "http://localhost:8080"), 0);
    assert_eq!(
        count(&output, "https://gw.example.com/odata/REF/Teams('"),
        6
    );
    assert!(
        output.contains(r#""uri" : "https://gw.example.com/odata/REF/Teams('3')/nt_Employees""#)
    );
    assert!(output.contains(r#""__count" : "3""#), "count changed");
}

#[test]
fn v2_json_origin_wide_base() {
    let name = "olingo2_v2_teams_count.json";
    let output = check_round_trip(name, "application/json", "http://localhost:8080/");
    assert!(
        output.contains(
            r#""id" : "https://gw.example.com/odata/REF/ReferenceScenario.svc/Teams('2')""#
        )
    );
}

#[test]
fn v2_json_other_base_unchanged() {
    let name = "olingo2_v2_inline_next_count.json";
    let body = read_fixture(name);
    for backend_base in [
        "http://localhost:8081/ReferenceScenario.svc",
        "http://localhost:8080/ReferenceScenario",
        "https://localhost:8080",
    ] {
        let output = rewrite_in_chunks(
            "application/json",
            &link_map(backend_base, GATEWAY),
            &body,
            16,
        );
        assert!(
            output == body,
            "{name} changed with backend base {backend_base}"
        );
    }
}

#[test]
fn atom_feed_with_delta_link() {
    let name = "olingo2_atom_feed_delta.xml";
    let output = check_round_trip(
        name,
        "application/atom+xml;type=feed",
        "http://some.host.com/service.root/ReferenceScenario.svc",
    );

    assert!(
        output.contains(r#"xml:base="https://gw.example.com/odata/REF/">"#),
        "xml:base not rewritten:\n{output}"
    );
    assert!(output.contains("<id>https://gw.example.com/odata/REF/Employees</id>"));
    assert!(output.contains("<id>https://gw.example.com/odata/REF/Employees('1')</id>"));
    assert_eq!(count(&output, "some.host.com"), 0);
    assert!(
        output.contains(r#"<link href="http://thisisadeltalink" rel="delta"/>"#),
        "foreign link changed"
    );
    assert!(
        output.contains(r#"<link href="Employees('1')/$value" rel="edit-media""#),
        "relative link changed"
    );
    assert!(
        output.contains("<d:ImageUrl>Employees('1')/$value</d:ImageUrl>"),
        "property changed"
    );
    assert!(
        output.contains(r#"xmlns="http://www.w3.org/2005/Atom""#),
        "namespace changed"
    );
}

#[test]
fn atom_feed_origin_wide_base() {
    let name = "olingo2_atom_feed_delta.xml";
    let output = check_round_trip(name, "application/xml", "http://some.host.com");
    assert!(output.contains(
        r#"xml:base="https://gw.example.com/odata/REF/service.root/ReferenceScenario.svc/">"#
    ));
}

#[test]
fn sap_metadata_reference_uri() {
    let name = "pyodata_v2_sap_metadata.xml";
    let output = check_round_trip(
        name,
        "application/xml",
        "https://example.sap.corp/sap/opu/odata/IWFND/CATALOGSERVICE;v=2",
    );

    let expected = r#"Uri="https://gw.example.com/odata/REF/Vocabularies(TechnicalName='%2FIWBEP%2FVOC_COMMON',Version='0001',SAP__Origin='LOCAL')/$value""#;
    assert!(
        output.contains(expected),
        "Reference Uri not rewritten:\n{output}"
    );
    assert_eq!(count(&output, "example.sap.corp"), 0);
}

#[test]
fn northwind_metadata_namespaces_unchanged() {
    let name = "northwind_v2_metadata.xml";
    let body = read_fixture(name);
    // The base occurs in the file, but only as namespace names.
    let output = check_round_trip(name, "application/xml", "http://schemas.microsoft.com/ado");
    assert!(output.as_bytes() == body, "{name} changed");
}
