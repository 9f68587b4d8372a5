//! `GET Large?$top=N`: a V2 JSON collection of N entries of about 1.1 KB each,
//! generated while it is sent, so that tests can read 100 MB and more
//! without the backend holding the body.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body, Frame};

use super::items::json_string;
use super::reply::{JSON, xml_error};

/// Entries sent when the request has no `$top`.
const DEFAULT_ENTRIES: u64 = 100;

/// Largest `$top` accepted, about 1 GB of JSON.
const MAX_ENTRIES: u64 = 1_000_000;

/// Entries rendered into one body frame.
const ENTRIES_PER_FRAME: u64 = 64;

/// Length of the `Payload` text of every entry. With its two absolute URIs
/// on `http://127.0.0.1:PORT`, an entry is about 1.1 KB long.
const PAYLOAD_LEN: usize = 880;

/// Builds the streamed response, or a 400 for an invalid `$top`.
pub(super) fn response(
    service_root: &str,
    query: Option<&str>,
) -> Response<BoxBody<Bytes, Infallible>> {
    let entries = match entry_count(query) {
        Ok(entries) => entries,
        Err(message) => {
            return xml_error(StatusCode::BAD_REQUEST, "/IWBEP/CM_MGW_RT/004", &message)
                .into_response();
        }
    };
    let body = LargeBody {
        collection_uri: format!("{service_root}Large"),
        next: 0,
        entries,
        stage: Stage::Opening,
    };
    let mut response = Response::new(body.boxed());
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
        .headers_mut()
        .insert("dataserviceversion", HeaderValue::from_static("2.0"));
    response
}

fn entry_count(query: Option<&str>) -> Result<u64, String> {
    let top = query
        .unwrap_or("")
        .split('&')
        .filter_map(|option| option.split_once('='))
        .find(|(name, _)| *name == "$top" || *name == "%24top")
        .map(|(_, value)| value);
    let Some(top) = top else {
        return Ok(DEFAULT_ENTRIES);
    };
    match top.parse::<u64>() {
        Ok(entries) if entries <= MAX_ENTRIES => Ok(entries),
        _ => Err(format!(
            "Invalid value '{top}' for $top: use an integer from 0 to {MAX_ENTRIES}"
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Opening,
    Entries,
    Closing,
    Done,
}

/// A response body that renders its entries frame by frame.
#[derive(Debug)]
struct LargeBody {
    collection_uri: String,
    next: u64,
    entries: u64,
    stage: Stage,
}

impl LargeBody {
    fn entry(&self, index: u64) -> String {
        let uri = json_string(&format!("{}('{index}')", self.collection_uri));
        let label = format!("Entry {index} ");
        let padding = "x".repeat(PAYLOAD_LEN.saturating_sub(label.len()));
        format!(
            r#"{{"__metadata":{{"id":{uri},"uri":{uri},"type":"ZGW_TEST_SRV.LargeEntry"}},"ID":"{index}","Payload":"{label}{padding}"}}"#
        )
    }

    fn next_frame(&mut self) -> Option<String> {
        match self.stage {
            Stage::Opening => {
                self.stage = Stage::Entries;
                Some(r#"{"d":{"results":["#.to_owned())
            }
            Stage::Entries if self.next < self.entries => {
                let end = (self.next + ENTRIES_PER_FRAME).min(self.entries);
                let mut frame = String::with_capacity(1024 * ENTRIES_PER_FRAME as usize);
                for index in self.next..end {
                    if index > 0 {
                        frame.push(',');
                    }
                    frame.push_str(&self.entry(index));
                }
                self.next = end;
                Some(frame)
            }
            Stage::Entries => {
                self.stage = Stage::Closing;
                self.next_frame()
            }
            Stage::Closing => {
                self.stage = Stage::Done;
                Some("]}}".to_owned())
            }
            Stage::Done => None,
        }
    }
}

impl Body for LargeBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = self.get_mut().next_frame();
        Poll::Ready(frame.map(|text| Ok(Frame::data(Bytes::from(text)))))
    }

    fn is_end_stream(&self) -> bool {
        self.stage == Stage::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_body_is_json_with_all_entries() {
        let mut body = LargeBody {
            collection_uri: "http://127.0.0.1:1/s/Large".to_owned(),
            next: 0,
            entries: 130,
            stage: Stage::Opening,
        };
        let mut text = String::new();
        while let Some(frame) = body.next_frame() {
            text.push_str(&frame);
        }
        let parsed: serde_json::Value = match serde_json::from_str(&text) {
            Ok(parsed) => parsed,
            Err(error) => panic!("streamed body is not JSON: {error}"),
        };
        let results = parsed["d"]["results"].as_array().map(Vec::len);
        assert_eq!(results, Some(130));
        let entry_len = body.entry(129).len();
        assert!(
            (900..1100).contains(&entry_len),
            "entry is {entry_len} bytes"
        );
    }
}
