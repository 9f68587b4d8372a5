//! Property tests of the multipart code on random batches assembled from
//! known parts, with random header case, bodies, line ends and transport
//! padding. A parse must find exactly those parts. A request rewrite must
//! change nothing but the targets that address the gateway.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use super::multipart::{self, Part, PartContent};
use super::{ServiceRoot, rewrite_request};

const GATEWAY: &str = "https://gw.example.com";
const ROOT: &str = "/odata/S4/sap/opu/odata/sap/API_X/";

/// Header fields of inner requests, as name and value.
const INNER_HEADERS: &[(&str, &str)] = &[
    ("Accept", "application/json"),
    ("Content-Type", "application/json;charset=utf-8"),
    ("If-Match", "W/\"datetimeoffset'2024-01-01'\""),
    ("OData-Version", "4.0"),
];

/// How a generated request addresses its resource.
#[derive(Debug, Clone, Copy)]
enum TargetForm {
    Relative,
    AbsoluteUrl,
    AbsolutePath,
}

#[derive(Debug, Clone)]
struct RequestModel {
    method: &'static str,
    /// The target relative to the service root.
    target: String,
    form: TargetForm,
    content_id: Option<String>,
    with_content_length: bool,
    inner_headers: Vec<(&'static str, &'static str)>,
    payload: Vec<u8>,
}

#[derive(Debug, Clone)]
enum PartModel {
    Request(RequestModel),
    Text(Vec<u8>),
    Changeset {
        boundary: String,
        requests: Vec<RequestModel>,
    },
}

#[derive(Debug, Clone)]
struct BatchModel {
    boundary: String,
    parts: Vec<PartModel>,
    preamble: String,
    epilogue: String,
    padding: &'static str,
    case_seed: u64,
    line_end_seed: u64,
}

/// What a parse of the rendered batch must find.
#[derive(Debug)]
struct ExpectedPart {
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
    content: ExpectedContent,
}

#[derive(Debug)]
enum ExpectedContent {
    Http { start_line: Vec<u8>, body: Vec<u8> },
    Changeset(Vec<ExpectedPart>),
    Other,
}

#[derive(Debug)]
struct Rendered {
    body: Vec<u8>,
    preamble: Vec<u8>,
    epilogue: Vec<u8>,
    parts: Vec<ExpectedPart>,
}

/// A deterministic sequence of coin flips (xorshift64), so that two
/// renderings of one model choose the same line ends and header case.
#[derive(Debug)]
struct Flips(u64);

impl Flips {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn next(&mut self) -> bool {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 & 1 == 1
    }
}

#[derive(Debug)]
struct Renderer {
    line_ends: Flips,
    cases: Flips,
    padding: &'static str,
    /// Every boundary of the batch, which no generated body may contain.
    boundaries: Vec<String>,
    relative_targets: bool,
}

impl Renderer {
    fn line_end(&mut self) -> &'static [u8] {
        if self.line_ends.next() {
            b"\r\n"
        } else {
            b"\n"
        }
    }

    fn random_case(&mut self, text: &str) -> String {
        text.chars()
            .map(|character| {
                if self.cases.next() {
                    character.to_ascii_uppercase()
                } else {
                    character.to_ascii_lowercase()
                }
            })
            .collect()
    }

    /// Returns `bytes` with every `--{boundary}` broken up, and with a final
    /// CR followed by a dot, because a CR before the delimiter's LF would
    /// join the delimiter's line end.
    fn sanitize(&self, bytes: &[u8]) -> Vec<u8> {
        let mut output = bytes.to_vec();
        for boundary in &self.boundaries {
            let dash_boundary = format!("--{boundary}");
            while let Some(index) = find(&output, dash_boundary.as_bytes()) {
                output[index + 1] = b'+';
            }
        }
        if output.last() == Some(&b'\r') {
            output.push(b'.');
        }
        output
    }

    /// Renders the parts and the close delimiter of one multipart body.
    fn render_parts(
        &mut self,
        boundary: &str,
        parts: &[PartModel],
    ) -> (Vec<u8>, Vec<ExpectedPart>, Vec<u8>) {
        let mut output = Vec::new();
        let mut expected = Vec::new();
        for part in parts {
            let (headers, body, content) = match part {
                PartModel::Request(request) => self.render_request(request),
                PartModel::Text(payload) => {
                    let name = self.random_case("Content-Type");
                    let body = self.sanitize(payload);
                    (
                        vec![(name, "text/plain".to_owned())],
                        body,
                        ExpectedContent::Other,
                    )
                }
                PartModel::Changeset { boundary, requests } => {
                    self.render_changeset(boundary, requests)
                }
            };

            let padding = self.padding;
            output.extend_from_slice(format!("--{boundary}{padding}").as_bytes());
            output.extend_from_slice(self.line_end());
            for (name, value) in &headers {
                output.extend_from_slice(format!("{name}: {value}").as_bytes());
                output.extend_from_slice(self.line_end());
            }
            output.extend_from_slice(self.line_end());
            output.extend_from_slice(&body);
            output.extend_from_slice(self.line_end());

            expected.push(ExpectedPart {
                headers: headers
                    .into_iter()
                    .map(|(name, value)| (name.into_bytes(), value.into_bytes()))
                    .collect(),
                body,
                content,
            });
        }

        output.extend_from_slice(format!("--{boundary}--{}", self.padding).as_bytes());
        let epilogue = self.line_end().to_vec();
        output.extend_from_slice(&epilogue);
        (output, expected, epilogue)
    }

    fn render_changeset(
        &mut self,
        boundary: &str,
        requests: &[RequestModel],
    ) -> (Vec<(String, String)>, Vec<u8>, ExpectedContent) {
        let parts: Vec<PartModel> = requests.iter().cloned().map(PartModel::Request).collect();
        let (body, nested, _) = self.render_parts(boundary, &parts);
        let content_type = format!(
            "{}; {}=\"{boundary}\"",
            self.random_case("multipart/mixed"),
            self.random_case("boundary")
        );
        let headers = vec![(self.random_case("Content-Type"), content_type)];
        (headers, body, ExpectedContent::Changeset(nested))
    }

    fn render_request(
        &mut self,
        request: &RequestModel,
    ) -> (Vec<(String, String)>, Vec<u8>, ExpectedContent) {
        let target = match (self.relative_targets, request.form) {
            (true, _) | (false, TargetForm::Relative) => request.target.clone(),
            (false, TargetForm::AbsoluteUrl) => format!("{GATEWAY}{ROOT}{}", request.target),
            (false, TargetForm::AbsolutePath) => format!("{ROOT}{}", request.target),
        };
        let start_line = format!("{} {target} HTTP/1.1", request.method).into_bytes();

        let mut message = start_line.clone();
        message.extend_from_slice(self.line_end());
        for (name, value) in &request.inner_headers {
            message.extend_from_slice(format!("{}: {value}", self.random_case(name)).as_bytes());
            message.extend_from_slice(self.line_end());
        }
        message.extend_from_slice(self.line_end());
        let payload = self.sanitize(&request.payload);
        message.extend_from_slice(&payload);

        let mut headers = vec![
            (
                self.random_case("Content-Type"),
                self.random_case("application/http"),
            ),
            (
                self.random_case("Content-Transfer-Encoding"),
                "binary".to_owned(),
            ),
        ];
        if let Some(content_id) = &request.content_id {
            headers.push((self.random_case("Content-ID"), content_id.clone()));
        }
        if request.with_content_length {
            headers.push((
                self.random_case("Content-Length"),
                message.len().to_string(),
            ));
        }
        let content = ExpectedContent::Http {
            start_line,
            body: payload,
        };
        (headers, message, content)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Renders the batch, with every target relative when `relative_targets`.
fn render(model: &BatchModel, relative_targets: bool) -> Rendered {
    let mut boundaries = vec![model.boundary.clone()];
    for part in &model.parts {
        if let PartModel::Changeset { boundary, .. } = part {
            boundaries.push(boundary.clone());
        }
    }
    let mut renderer = Renderer {
        line_ends: Flips::new(model.line_end_seed),
        cases: Flips::new(model.case_seed),
        padding: model.padding,
        boundaries,
        relative_targets,
    };

    let mut body = Vec::new();
    let preamble = model.preamble.as_bytes().to_vec();
    if !preamble.is_empty() {
        body.extend_from_slice(&preamble);
        body.extend_from_slice(renderer.line_end());
    }
    let (parts_bytes, parts, mut epilogue) = renderer.render_parts(&model.boundary, &model.parts);
    body.extend_from_slice(&parts_bytes);
    body.extend_from_slice(model.epilogue.as_bytes());
    epilogue.extend_from_slice(model.epilogue.as_bytes());

    Rendered {
        body,
        preamble,
        epilogue,
        parts,
    }
}

fn check_parts(
    body: &[u8],
    parsed: &[Part],
    expected: &[ExpectedPart],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(parsed.len(), expected.len());
    for (part, want) in parsed.iter().zip(expected) {
        let headers: Vec<(Vec<u8>, Vec<u8>)> = part
            .headers
            .iter()
            .map(|header| {
                (
                    body[header.name.clone()].to_vec(),
                    header.value(body).to_vec(),
                )
            })
            .collect();
        prop_assert_eq!(&headers, &want.headers);
        prop_assert_eq!(&body[part.body.clone()], &want.body[..]);

        match (&part.content, &want.content) {
            (
                PartContent::Http(message),
                ExpectedContent::Http {
                    start_line,
                    body: payload,
                },
            ) => {
                prop_assert_eq!(&body[message.start_line.clone()], &start_line[..]);
                prop_assert_eq!(&body[message.body.clone()], &payload[..]);
            }
            (PartContent::Changeset(changeset), ExpectedContent::Changeset(nested)) => {
                check_parts(body, &changeset.parts, nested)?;
            }
            (PartContent::Other, ExpectedContent::Other) => {}
            (content, want) => {
                return Err(TestCaseError::fail(format!(
                    "{}: parsed {content:?}, expected {want:?}",
                    part.number
                )));
            }
        }
    }
    Ok(())
}

fn request_model() -> impl Strategy<Value = RequestModel> {
    let target = prop_oneof![
        "[A-Za-z_][A-Za-z0-9_]{0,10}(\\('[a-z0-9]{1,4}'\\))?(/[A-Za-z_]{1,8})?(\\?\\$top=[0-9]{1,3})?",
        "\\$[1-9](/to_[A-Za-z]{1,6})?",
    ];
    let form = select(vec![
        TargetForm::Relative,
        TargetForm::AbsoluteUrl,
        TargetForm::AbsolutePath,
    ]);
    let method = select(vec!["GET", "POST", "PATCH", "PUT", "MERGE", "DELETE"]);
    (
        method,
        target,
        form,
        option::of("[A-Za-z0-9]{1,8}"),
        any::<bool>(),
        vec(select(INNER_HEADERS.to_vec()), 0..3),
        payload(),
    )
        .prop_map(
            |(method, target, form, content_id, with_content_length, inner_headers, payload)| {
                RequestModel {
                    method,
                    target,
                    form,
                    content_id,
                    with_content_length,
                    inner_headers,
                    payload,
                }
            },
        )
}

/// Random bytes, with dashes, line ends and spaces more frequent than in
/// uniform bytes, so that near-delimiter lines occur.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    vec(
        prop_oneof![any::<u8>(), select(b"-\r\n b_".to_vec())],
        0..60,
    )
}

/// A boundary suffix from the RFC 2046 `bchars`, without space.
const BOUNDARY_SUFFIX: &str = "[A-Za-z0-9'()+_,./:=?-]{1,24}";

fn changeset_model() -> impl Strategy<Value = PartModel> {
    (BOUNDARY_SUFFIX, vec(request_model(), 0..4)).prop_map(|(suffix, requests)| {
        PartModel::Changeset {
            boundary: format!("changeset_{suffix}"),
            requests,
        }
    })
}

/// Requests, changesets and `text/plain` parts, which a parse accepts.
fn any_part_model() -> BoxedStrategy<PartModel> {
    prop_oneof![
        3 => request_model().prop_map(PartModel::Request),
        1 => payload().prop_map(PartModel::Text),
        2 => changeset_model(),
    ]
    .boxed()
}

/// Requests and changesets, the only parts a request rewrite accepts.
fn request_part_model() -> BoxedStrategy<PartModel> {
    prop_oneof![
        3 => request_model().prop_map(PartModel::Request),
        2 => changeset_model(),
    ]
    .boxed()
}

fn batch_model(part: BoxedStrategy<PartModel>) -> impl Strategy<Value = BatchModel> {
    (
        BOUNDARY_SUFFIX,
        vec(part, 0..6),
        "[A-Za-z .]{0,20}",
        "[A-Za-z .\n]{0,20}",
        select(vec!["", " ", "\t", " \t "]),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(suffix, parts, preamble, epilogue, padding, case_seed, line_end_seed)| BatchModel {
                boundary: format!("batch_{suffix}"),
                parts,
                preamble,
                epilogue,
                padding,
                case_seed,
                line_end_seed,
            },
        )
}

fn service() -> Result<ServiceRoot, TestCaseError> {
    ServiceRoot::new(GATEWAY, ROOT)
        .ok_or_else(|| TestCaseError::fail("the test service root is invalid"))
}

proptest! {
    #[test]
    fn parse_finds_generated_parts(model in batch_model(any_part_model())) {
        let rendered = render(&model, false);
        let batch = multipart::parse(&rendered.body, &model.boundary)
            .map_err(|error| TestCaseError::fail(error.to_string()))?;

        prop_assert_eq!(&rendered.body[batch.preamble.clone()], &rendered.preamble[..]);
        prop_assert_eq!(&rendered.body[batch.epilogue.clone()], &rendered.epilogue[..]);
        check_parts(&rendered.body, &batch.parts, &rendered.parts)?;
    }

    #[test]
    fn relative_batch_rewrites_to_itself(model in batch_model(request_part_model())) {
        let rendered = render(&model, true);
        let output = rewrite_request(&rendered.body, &model.boundary, &service()?)
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        prop_assert!(output == rendered.body, "the rewrite changed the batch");
    }

    #[test]
    fn absolute_targets_become_relative(model in batch_model(request_part_model())) {
        let input = render(&model, false);
        let expected = render(&model, true);
        let output = rewrite_request(&input.body, &model.boundary, &service()?)
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        prop_assert_eq!(
            String::from_utf8_lossy(&output),
            String::from_utf8_lossy(&expected.body)
        );
    }
}
