//! Tests against batch response bodies recorded from OData libraries and
//! services (Apache Olingo V2 and V4, SAP Cloud SDK for Java, pyodata),
//! each as stored and with its line ends converted.

use std::path::{Path, PathBuf};

use super::multipart::{self, Multipart};
use super::response::{LinkRewriting, rewrite_response_with};
use super::test_support::{to_crlf, to_lf};
use super::{BatchError, rewrite_response};
use crate::links::{BodyRewriter, LinkMap};

/// A fixture file and what a parse must find in it.
struct Fixture {
    file: &'static str,
    boundary: &'static str,
    top_level_parts: usize,
    changesets: usize,
    messages: usize,
}

const FIXTURES: &[Fixture] = &[
    Fixture {
        file: "olingo2_batchResponse.batch",
        boundary: "batch_123",
        top_level_parts: 2,
        changesets: 1,
        messages: 3,
    },
    Fixture {
        file: "olingo2_batch_trailing_crlf.batch",
        boundary: "batch_123",
        top_level_parts: 1,
        changesets: 0,
        messages: 1,
    },
    Fixture {
        file: "olingo4_batchResponse.batch",
        boundary: "batch_123",
        top_level_parts: 2,
        changesets: 1,
        messages: 3,
    },
    Fixture {
        file: "cloudsdkjava_v2_BatchResponseWithChangeset.txt",
        boundary: "batchresponse_76ef6b0a-a0e2-4f31-9f70-f5d3f73a6bef",
        top_level_parts: 4,
        changesets: 2,
        messages: 6,
    },
    Fixture {
        file: "cloudsdkjava_v2_BatchResponseWithError.txt",
        boundary: "batchresponse_76ef6b0a-a0e2-4f31-9f70-f5d3f73a6bef",
        top_level_parts: 3,
        changesets: 0,
        messages: 3,
    },
    Fixture {
        file: "cloudsdkjava_v4_BatchBadChangesetResponse.txt",
        boundary: "batchresponse_hKXEHg8m-qSXb-TCW6-dl3M-4r2H6qxgAbaG",
        top_level_parts: 1,
        changesets: 0,
        messages: 1,
    },
    Fixture {
        file: "cloudsdkjava_BatchReadsAndWritesErrorResponse.txt",
        boundary: "batchresponse_2e5e59e3-ef58-493c-b947-638f445896aa",
        top_level_parts: 2,
        changesets: 1,
        messages: 2,
    },
    Fixture {
        file: "pyodata_enormous_batch_response.txt",
        boundary: "16804F9C063D8720EACA19F7DFB3CD4A0",
        top_level_parts: 1,
        changesets: 0,
        messages: 1,
    },
];

/// Link rewriting that changes nothing, to test the batch code alone.
struct NoLinks;

impl LinkRewriting for NoLinks {
    fn rewrite_location(&self, _value: &str) -> Option<String> {
        None
    }

    fn body_rewriter(&self, _content_type: &str) -> Option<Box<dyn BodyRewriter>> {
        None
    }
}

fn fixture_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/odata");
    assert!(
        dir.is_dir(),
        "the OData fixture folder {} is missing: check out the shared fixtures beside the \
         repository",
        dir.display()
    );
    dir
}

fn read(file: &str) -> Vec<u8> {
    let path = fixture_dir().join(file);
    match std::fs::read(&path) {
        Ok(body) => body,
        Err(error) => panic!("cannot read fixture {}: {error}", path.display()),
    }
}

/// Returns the fixture as stored and with LF->CRLF and CRLF->LF applied.
fn variants(fixture: &Fixture) -> [(String, Vec<u8>); 3] {
    let stored = read(fixture.file);
    [
        (format!("{} as stored", fixture.file), stored.clone()),
        (format!("{} with CRLF", fixture.file), to_crlf(&stored)),
        (format!("{} with LF", fixture.file), to_lf(&stored)),
    ]
}

fn parse(name: &str, body: &[u8], boundary: &str) -> Multipart {
    match multipart::parse(body, boundary) {
        Ok(batch) => batch,
        Err(error) => panic!("{name}: {error}"),
    }
}

#[test]
fn fixture_boundaries_match_first_line() {
    for fixture in FIXTURES {
        let body = read(fixture.file);
        let first_line = body.split(|&byte| byte == b'\n').next().unwrap_or_default();
        let expected = format!("--{}", fixture.boundary);
        assert_eq!(
            first_line.trim_ascii_end(),
            expected.as_bytes(),
            "{}",
            fixture.file
        );
    }
}

#[test]
fn fixtures_parse_to_expected_parts() {
    for fixture in FIXTURES {
        for (name, body) in variants(fixture) {
            let batch = parse(&name, &body, fixture.boundary);
            assert_eq!(batch.parts.len(), fixture.top_level_parts, "{name}: parts");
            assert_eq!(
                batch.changesets().len(),
                fixture.changesets,
                "{name}: changesets"
            );
            assert_eq!(batch.messages().len(), fixture.messages, "{name}: messages");
            for message in batch.messages() {
                let start_line = &body[message.start_line.clone()];
                assert!(
                    start_line.starts_with(b"HTTP/1.1 "),
                    "{name}: {start_line:?}"
                );
            }
        }
    }
}

#[test]
fn fixtures_pass_through_without_links() {
    for fixture in FIXTURES {
        for (name, body) in variants(fixture) {
            match rewrite_response_with(&body, fixture.boundary, &NoLinks) {
                Ok(output) => assert!(output == body, "{name}: the output differs"),
                Err(error) => panic!("{name}: {error}"),
            }
        }
    }
}

#[test]
fn fixtures_pass_through_unmatched_link_map() {
    let Some(map) = LinkMap::new("https://s4.example.com", "https://gw.example.com/odata/S4")
    else {
        panic!("the test link map is invalid");
    };
    let request_url = "https://s4.example.com/sap/opu/odata/sap/API_X/$batch";
    for fixture in FIXTURES {
        for (name, body) in variants(fixture) {
            match rewrite_response(&body, fixture.boundary, &map, request_url) {
                Ok(output) => assert!(output == body, "{name}: the output differs"),
                Err(error) => panic!("{name}: {error}"),
            }
        }
    }
}

#[test]
fn olingo_trailing_line_end_stays_in_body() {
    let body = to_crlf(&read("olingo2_batch_trailing_crlf.batch"));
    let batch = parse("olingo2_batch_trailing_crlf.batch", &body, "batch_123");
    let message = batch.messages()[0];
    let inner_body = &body[message.body.clone()];
    // The stored Content-Length values, 185 for the part and 82 for the
    // inner body, count the trailing CRLF as part of the body.
    assert_eq!(inner_body.len(), 82);
    assert!(inner_body.ends_with(b"part of the body.\r\n"));
    assert_eq!(batch.parts[0].body.len(), 185);
}

/// Cuts a fixture at every offset before its close delimiter ends: each cut
/// must be an error, never a panic or a partial result.
#[test]
fn truncated_fixtures_are_errors() {
    for file in [
        "olingo2_batchResponse.batch",
        "cloudsdkjava_v2_BatchResponseWithChangeset.txt",
    ] {
        let Some(fixture) = FIXTURES.iter().find(|fixture| fixture.file == file) else {
            panic!("{file} is not in the fixture table");
        };
        let body = read(file);
        let close = format!("--{}--", fixture.boundary);
        let close_end = match body
            .windows(close.len())
            .position(|window| window == close.as_bytes())
        {
            Some(start) => start + close.len(),
            None => panic!("{file} has no close delimiter"),
        };
        for cut in 0..close_end {
            let result = rewrite_response_with(&body[..cut], fixture.boundary, &NoLinks);
            assert!(result.is_err(), "{file} cut at {cut} was accepted");
        }
        for cut in close_end..=body.len() {
            let result = rewrite_response_with(&body[..cut], fixture.boundary, &NoLinks);
            assert!(result.is_ok(), "{file} cut at {cut} was rejected");
        }
    }
}

#[test]
fn truncated_enormous_response_names_part() {
    let body = read("pyodata_enormous_batch_response.txt");
    let boundary = "16804F9C063D8720EACA19F7DFB3CD4A0";
    let half = &body[..body.len() / 2];
    match rewrite_response_with(half, boundary, &NoLinks) {
        Ok(_) => panic!("accepted half of the body"),
        Err(error) => {
            let part_start = boundary.len() + 3;
            assert_eq!(
                error,
                BatchError::MissingCloseDelimiter {
                    within: Default::default(),
                    boundary: boundary.to_owned(),
                    end: half.len(),
                    open_part: Some((super::PartNumber::default().child(1), part_start)),
                }
            );
            let message = error.to_string();
            assert!(
                message.contains("part 1, which starts at byte offset 36"),
                "{message}"
            );
        }
    }
}
