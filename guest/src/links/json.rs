//! Streaming rewriter for links in JSON bodies.
//!
//! The rewriter scans bytes with a small state machine and copies every byte
//! to the output unchanged, except the contents of link strings, which it
//! buffers and passes through [`LinkMap::rewrite`]. A string is a link when
//! it is the value of one of these members:
//!
//! - OData 4.0 and 4.01 control information: a key that ends with
//!   `@odata.{name}` or `@{name}`, where `{name}` is `context`, `nextLink`,
//!   `deltaLink`, `id`, `editLink`, `readLink`, `navigationLink`,
//!   `associationLink`, `mediaEditLink` or `mediaReadLink`. The text before
//!   the `@` may be a property name (`Items@odata.nextLink`) or empty.
//! - OData 2.0 verbose JSON: `__next` in any object, the members `uri`,
//!   `id`, `media_src` and `edit_media` of the object under a `__metadata`
//!   key, and the member `uri` of the object under a `__deferred` key.
//!
//! Keys and link values are matched after JSON unescaping. A rewritten value
//! is written with only `"`, `\` and control characters escaped. A value
//! that is not rewritten keeps its original bytes.
//!
//! Memory is bounded: the state is the stack of open containers (at most
//! `MAX_DEPTH`), the current key (at most `MAX_KEY_BYTES` are kept) and the
//! current link value (at most `MAX_LINK_BYTES`). A link value longer than
//! that, or a key that was cut, is copied unchanged.
//!
//! Input that is not JSON is never an error. At the first byte that breaks
//! the grammar (an HTML error page, a truncated document, a second top-level
//! value, nesting deeper than `MAX_DEPTH`), the rewriter copies the rest of
//! the body unchanged. The output never depends on how the body is split
//! into chunks, because every decision depends only on the bytes seen so far.

use super::json_text::{decode_string, escape_string};
use super::{BodyRewriter, LinkMap};

/// Maximum raw length of a link value that is buffered for rewriting.
const MAX_LINK_BYTES: usize = 64 * 1024;
/// Maximum raw length of a key that is kept for matching. Link keys are
/// short: a property name of at most 128 characters (the CSDL limit for
/// identifiers) plus the annotation name.
const MAX_KEY_BYTES: usize = 1024;
/// Maximum nesting of objects and arrays that is tracked.
const MAX_DEPTH: usize = 1024;

/// OData 4.x control information whose value is a URL.
const V4_LINK_ANNOTATIONS: [&str; 10] = [
    "context",
    "nextLink",
    "deltaLink",
    "id",
    "editLink",
    "readLink",
    "navigationLink",
    "associationLink",
    "mediaEditLink",
    "mediaReadLink",
];

/// The UTF-8 byte order mark, which RFC 8259 allows a parser to ignore.
const BYTE_ORDER_MARK: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// The streaming JSON link rewriter for one body.
#[derive(Debug)]
pub struct JsonRewriter {
    map: LinkMap,
    scan: Scan,
    expect: Expect,
    containers: Vec<Container>,
    /// The role that the last key gives to the value that follows it.
    member: Member,
    /// Raw bytes of the current key, up to `MAX_KEY_BYTES`.
    key: Vec<u8>,
    key_truncated: bool,
    /// Raw bytes of the current link value, not yet written.
    link: Vec<u8>,
}

/// The lexical state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// The count of byte order mark bytes seen at the start of the body.
    ByteOrderMark(usize),
    /// Between tokens.
    Structure,
    String {
        role: StringRole,
        escaped: bool,
    },
    /// Inside a number, `true`, `false` or `null`.
    Scalar,
    /// After a grammar error or `finish`: every byte is copied.
    Passthrough,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StringRole {
    Key,
    Link,
    Plain,
}

/// The next token that the JSON grammar allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Value,
    /// After `[`.
    ValueOrEnd,
    /// After `{`.
    KeyOrEnd,
    /// After `,` in an object.
    Key,
    Colon,
    /// After a value inside a container.
    CommaOrEnd,
    /// After the top-level value: only whitespace may follow.
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Array,
    Object(ObjectKind),
}

/// The OData 2.0 meaning of an object, given by the key it is the value of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjectKind {
    Plain,
    Metadata,
    Deferred,
}

/// The role that a key gives to its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Plain,
    Link,
    /// The key is `__metadata`.
    Metadata,
    /// The key is `__deferred`.
    Deferred,
}

impl JsonRewriter {
    /// Creates the rewriter for one body, which rewrites links with `map`.
    pub fn new(map: LinkMap) -> Self {
        JsonRewriter {
            map,
            scan: Scan::ByteOrderMark(0),
            expect: Expect::Value,
            containers: Vec::new(),
            member: Member::Plain,
            key: Vec::new(),
            key_truncated: false,
            link: Vec::new(),
        }
    }

    /// Consumes bytes from the start of `input` in the current state and
    /// returns how many. Returns 0 only after changing state, so that the
    /// caller's loop always makes progress.
    fn step(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        match self.scan {
            Scan::Passthrough => {
                out.extend_from_slice(input);
                input.len()
            }
            Scan::ByteOrderMark(seen) => self.scan_byte_order_mark(seen, input[0], out),
            Scan::Structure => {
                self.scan_structure(input[0], out);
                1
            }
            Scan::Scalar => self.scan_scalar(input, out),
            Scan::String { role, escaped } => self.scan_string(role, escaped, input, out),
        }
    }

    fn scan_byte_order_mark(&mut self, seen: usize, byte: u8, out: &mut Vec<u8>) -> usize {
        if byte == BYTE_ORDER_MARK[seen] {
            out.push(byte);
            self.scan = if seen + 1 == BYTE_ORDER_MARK.len() {
                Scan::Structure
            } else {
                Scan::ByteOrderMark(seen + 1)
            };
            return 1;
        }
        // Without a mark the byte is read as structure. A partial mark is
        // not JSON, so the body passes unchanged.
        self.scan = if seen == 0 {
            Scan::Structure
        } else {
            Scan::Passthrough
        };
        0
    }

    fn scan_scalar(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        let length = input
            .iter()
            .position(|&b| !is_scalar_byte(b))
            .unwrap_or(input.len());
        out.extend_from_slice(&input[..length]);
        if length < input.len() {
            self.scan = Scan::Structure;
            self.end_value();
        }
        length
    }

    fn scan_string(
        &mut self,
        role: StringRole,
        escaped: bool,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> usize {
        if escaped {
            let role = self.append_string_bytes(role, &input[..1], out);
            self.scan = Scan::String {
                role,
                escaped: false,
            };
            return 1;
        }

        let Some(special) = input.iter().position(|&b| b == b'"' || b == b'\\') else {
            let role = self.append_string_bytes(role, input, out);
            self.scan = Scan::String { role, escaped };
            return input.len();
        };

        let role = self.append_string_bytes(role, &input[..special], out);
        if input[special] == b'\\' {
            let role = self.append_string_bytes(role, b"\\", out);
            self.scan = Scan::String {
                role,
                escaped: true,
            };
        } else {
            self.end_string(role, out);
        }
        special + 1
    }

    /// Appends string contents to the output or to a buffer, and returns the
    /// role for the rest of the string: a link value that outgrows its
    /// buffer is written out and continues as a plain string.
    fn append_string_bytes(
        &mut self,
        role: StringRole,
        bytes: &[u8],
        out: &mut Vec<u8>,
    ) -> StringRole {
        match role {
            StringRole::Plain => {
                out.extend_from_slice(bytes);
                StringRole::Plain
            }
            StringRole::Key => {
                out.extend_from_slice(bytes);
                if self.key.len() + bytes.len() <= MAX_KEY_BYTES {
                    self.key.extend_from_slice(bytes);
                } else {
                    self.key_truncated = true;
                }
                StringRole::Key
            }
            StringRole::Link => {
                self.link.extend_from_slice(bytes);
                if self.link.len() <= MAX_LINK_BYTES {
                    return StringRole::Link;
                }
                out.append(&mut self.link);
                StringRole::Plain
            }
        }
    }

    fn end_string(&mut self, role: StringRole, out: &mut Vec<u8>) {
        self.scan = Scan::Structure;
        match role {
            StringRole::Key => {
                out.push(b'"');
                self.member = self.classify_key();
                self.expect = Expect::Colon;
            }
            StringRole::Link => {
                self.write_link(out);
                out.push(b'"');
                self.end_value();
            }
            StringRole::Plain => {
                out.push(b'"');
                self.end_value();
            }
        }
    }

    fn write_link(&mut self, out: &mut Vec<u8>) {
        let rewritten = decode_string(&self.link).and_then(|link| self.map.rewrite(&link));
        match rewritten {
            Some(rewritten) => escape_string(&rewritten, out),
            None => out.extend_from_slice(&self.link),
        }
        self.link.clear();
    }

    /// Handles one byte between tokens. Every such byte is copied, and a
    /// byte that the grammar does not allow switches to passthrough.
    fn scan_structure(&mut self, byte: u8, out: &mut Vec<u8>) {
        out.push(byte);
        if matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            return;
        }
        let accepted = match self.expect {
            Expect::Value | Expect::ValueOrEnd => self.start_value(byte),
            Expect::KeyOrEnd | Expect::Key => self.start_key(byte),
            Expect::Colon => {
                self.expect = Expect::Value;
                byte == b':'
            }
            Expect::CommaOrEnd => self.continue_container(byte),
            Expect::Nothing => false,
        };
        if !accepted {
            self.scan = Scan::Passthrough;
        }
    }

    fn start_value(&mut self, byte: u8) -> bool {
        let member = std::mem::replace(&mut self.member, Member::Plain);
        match byte {
            b'{' => {
                let kind = match member {
                    Member::Metadata => ObjectKind::Metadata,
                    Member::Deferred => ObjectKind::Deferred,
                    Member::Plain | Member::Link => ObjectKind::Plain,
                };
                self.expect = Expect::KeyOrEnd;
                self.open(Container::Object(kind))
            }
            b'[' => {
                self.expect = Expect::ValueOrEnd;
                self.open(Container::Array)
            }
            b'"' => {
                let role = if member == Member::Link {
                    StringRole::Link
                } else {
                    StringRole::Plain
                };
                self.scan = Scan::String {
                    role,
                    escaped: false,
                };
                true
            }
            b']' if self.expect == Expect::ValueOrEnd => self.close(byte),
            _ if is_scalar_byte(byte) => {
                self.scan = Scan::Scalar;
                true
            }
            _ => false,
        }
    }

    fn start_key(&mut self, byte: u8) -> bool {
        match byte {
            b'"' => {
                self.key.clear();
                self.key_truncated = false;
                self.scan = Scan::String {
                    role: StringRole::Key,
                    escaped: false,
                };
                true
            }
            b'}' if self.expect == Expect::KeyOrEnd => self.close(byte),
            _ => false,
        }
    }

    fn continue_container(&mut self, byte: u8) -> bool {
        match (byte, self.containers.last()) {
            (b',', Some(Container::Object(_))) => {
                self.expect = Expect::Key;
                true
            }
            (b',', Some(Container::Array)) => {
                self.expect = Expect::Value;
                true
            }
            (b'}' | b']', _) => self.close(byte),
            _ => false,
        }
    }

    fn open(&mut self, container: Container) -> bool {
        if self.containers.len() >= MAX_DEPTH {
            return false;
        }
        self.containers.push(container);
        true
    }

    /// Closes the innermost container with `}` or `]`, if the bracket fits.
    fn close(&mut self, bracket: u8) -> bool {
        let fits = match self.containers.last() {
            Some(Container::Object(_)) => bracket == b'}',
            Some(Container::Array) => bracket == b']',
            None => false,
        };
        if fits {
            self.containers.pop();
            self.end_value();
        }
        fits
    }

    fn end_value(&mut self) {
        self.expect = if self.containers.is_empty() {
            Expect::Nothing
        } else {
            Expect::CommaOrEnd
        };
    }

    fn classify_key(&self) -> Member {
        if self.key_truncated {
            return Member::Plain;
        }
        let Some(key) = decode_string(&self.key) else {
            return Member::Plain;
        };
        let parent = match self.containers.last() {
            Some(Container::Object(kind)) => *kind,
            _ => ObjectKind::Plain,
        };

        match (parent, key.as_ref()) {
            (_, "__metadata") => Member::Metadata,
            (_, "__deferred") => Member::Deferred,
            (_, "__next") => Member::Link,
            (ObjectKind::Metadata, "uri" | "id" | "media_src" | "edit_media") => Member::Link,
            (ObjectKind::Deferred, "uri") => Member::Link,
            (_, key) if is_v4_link_key(key) => Member::Link,
            _ => Member::Plain,
        }
    }
}

impl BodyRewriter for JsonRewriter {
    fn write(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut rest = input;
        while !rest.is_empty() {
            let consumed = self.step(rest, out);
            rest = &rest[consumed..];
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        // An unterminated link value is copied as it came.
        out.append(&mut self.link);
        self.scan = Scan::Passthrough;
    }
}

/// Returns whether `key` names OData 4.x control information with a URL
/// value, in the 4.0 form (`@odata.nextLink`) or the 4.01 form
/// (`@nextLink`), with or without a property name before the `@`.
fn is_v4_link_key(key: &str) -> bool {
    let Some((_, annotation)) = key.rsplit_once('@') else {
        return false;
    };
    let name = annotation.strip_prefix("odata.").unwrap_or(annotation);
    V4_LINK_ANNOTATIONS.contains(&name)
}

/// Returns whether `byte` can be part of a number or a literal name. The
/// scanner does not validate scalars because it copies them unchanged.
fn is_scalar_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'+' | b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKEND: &str = "https://s4.example.com/sap/opu/odata/sap/X";
    const GATEWAY: &str = "https://gw.example.com/odata/S4";

    fn rewrite_chunks(chunks: &[&[u8]]) -> String {
        let Some(map) = LinkMap::new(BACKEND, GATEWAY) else {
            panic!("{BACKEND} was rejected as backend base");
        };
        let mut rewriter = JsonRewriter::new(map);
        let mut out = Vec::new();
        for chunk in chunks {
            rewriter.write(chunk, &mut out);
        }
        rewriter.finish(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn rewrite(body: &str) -> String {
        rewrite_chunks(&[body.as_bytes()])
    }

    fn rewrite_bytewise(body: &str) -> String {
        let chunks: Vec<&[u8]> = body.as_bytes().chunks(1).collect();
        rewrite_chunks(&chunks)
    }

    #[test]
    fn v2_values_keep_their_bytes() {
        let body = r#"{"d":{"results":[{"Amount":"12.50","Big":"9007199254740993","When":"\/Date(1672531200000)\/","__metadata":{"uri":"https://s4.example.com/sap/opu/odata/sap/X/Items('1')"}}]}}"#;
        let expected = r#"{"d":{"results":[{"Amount":"12.50","Big":"9007199254740993","When":"\/Date(1672531200000)\/","__metadata":{"uri":"https://gw.example.com/odata/S4/Items('1')"}}]}}"#;
        assert_eq!(rewrite(body), expected);
        assert_eq!(rewrite_bytewise(body), expected);
    }

    #[test]
    fn v2_metadata_and_deferred_links() {
        let body = r#"{"d":{"__metadata":{"id":"https://s4.example.com/sap/opu/odata/sap/X/A('1')","uri":"https://s4.example.com/sap/opu/odata/sap/X/A('1')","media_src":"https://s4.example.com/sap/opu/odata/sap/X/A('1')/$value","edit_media":"https://s4.example.com/sap/opu/odata/sap/X/A('1')/$value","type":"https://s4.example.com/sap/opu/odata/sap/X/T"},"B":{"__deferred":{"uri":"https://s4.example.com/sap/opu/odata/sap/X/A('1')/B","id":"https://s4.example.com/sap/opu/odata/sap/X/keep"}},"uri":"https://s4.example.com/sap/opu/odata/sap/X/data","__next":"https://s4.example.com/sap/opu/odata/sap/X/A?$skiptoken=2"}}"#;
        let expected = r#"{"d":{"__metadata":{"id":"https://gw.example.com/odata/S4/A('1')","uri":"https://gw.example.com/odata/S4/A('1')","media_src":"https://gw.example.com/odata/S4/A('1')/$value","edit_media":"https://gw.example.com/odata/S4/A('1')/$value","type":"https://s4.example.com/sap/opu/odata/sap/X/T"},"B":{"__deferred":{"uri":"https://gw.example.com/odata/S4/A('1')/B","id":"https://s4.example.com/sap/opu/odata/sap/X/keep"}},"uri":"https://s4.example.com/sap/opu/odata/sap/X/data","__next":"https://gw.example.com/odata/S4/A?$skiptoken=2"}}"#;
        assert_eq!(rewrite(body), expected);
    }

    #[test]
    fn v4_control_information_links() {
        let link = "https://s4.example.com/sap/opu/odata/sap/X/Items";
        let keys = [
            "@odata.context",
            "@odata.nextLink",
            "@odata.deltaLink",
            "@odata.id",
            "@odata.editLink",
            "@odata.readLink",
            "@odata.navigationLink",
            "@odata.associationLink",
            "@odata.mediaEditLink",
            "@odata.mediaReadLink",
            "Items@odata.nextLink",
            "Photo@odata.mediaReadLink",
            "@context",
            "@nextLink",
            "Items@nextLink",
            "Items@navigationLink",
        ];
        for key in keys {
            let body = format!(r#"{{"{key}": "{link}"}}"#);
            let expected = format!(r#"{{"{key}": "https://gw.example.com/odata/S4/Items"}}"#);
            assert_eq!(rewrite(&body), expected, "key {key}");
        }
    }

    #[test]
    fn other_keys_stay_unchanged() {
        let link = "https://s4.example.com/sap/opu/odata/sap/X/Items";
        for key in [
            "url",
            "@odata.type",
            "@Core.nextLink",
            "odata.nextLink",
            "Items@my.odata.nextLink",
            "uri",
            "id",
            "nextLink",
        ] {
            let body = format!(r#"{{"{key}": "{link}"}}"#);
            assert_eq!(rewrite(&body), body, "key {key}");
        }
    }

    #[test]
    fn link_value_position_only() {
        let body = r#"["@odata.nextLink", "https://s4.example.com/sap/opu/odata/sap/X/Items", {"@odata.nextLink": ["https://s4.example.com/sap/opu/odata/sap/X/Items"]}]"#;
        assert_eq!(rewrite(body), body);
    }

    #[test]
    fn escaped_link_is_decoded() {
        let body = r#"{"@odata.nextLink":"https:\/\/s4.example.com\/sap\/opu\/odata\/sap\/X\/It\u0065ms?$x=\"q\""}"#;
        let expected = r#"{"@odata.nextLink":"https://gw.example.com/odata/S4/Items?$x=\"q\""}"#;
        assert_eq!(rewrite(body), expected);
        assert_eq!(rewrite_bytewise(body), expected);
    }

    #[test]
    fn escaped_key_is_decoded() {
        let body = r#"{"\u0040odata.nextLink":"/sap/opu/odata/sap/X/Items"}"#;
        let expected = r#"{"\u0040odata.nextLink":"https://gw.example.com/odata/S4/Items"}"#;
        assert_eq!(rewrite(body), expected);
    }

    #[test]
    fn relative_links_keep_their_bytes() {
        let body = r#"{"@odata.context":"$metadata#Items","@odata.nextLink":"Items?$skip=2","__next":"https:\/\/other.example.com\/x"}"#;
        assert_eq!(rewrite(body), body);
    }

    #[test]
    fn non_json_passes_unchanged() {
        let bodies = [
            "<html><body>{\"@odata.nextLink\":\"https://s4.example.com/sap/opu/odata/sap/X\"}</body></html>",
            "{\"a\":1}} {\"@odata.nextLink\":\"https://s4.example.com/sap/opu/odata/sap/X\"}",
            "{\"a\" 1, \"@odata.nextLink\":\"https://s4.example.com/sap/opu/odata/sap/X\"}",
            "\u{feff}\u{feff}{\"@odata.nextLink\":\"https://s4.example.com/sap/opu/odata/sap/X\"}",
            "",
        ];
        for body in bodies {
            assert_eq!(rewrite(body), body);
        }
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let body = "\u{feff}{\"@odata.nextLink\":\"https://s4.example.com/sap/opu/odata/sap/X/A\"}";
        let expected = "\u{feff}{\"@odata.nextLink\":\"https://gw.example.com/odata/S4/A\"}";
        assert_eq!(rewrite(body), expected);
        assert_eq!(rewrite_bytewise(body), expected);
    }

    #[test]
    fn truncated_link_is_copied() {
        let body = "{\"@odata.nextLink\":\"https://s4.example.com/sap/opu/odata/sap/X/A";
        assert_eq!(rewrite(body), body);
        assert_eq!(rewrite_bytewise(body), body);
    }

    #[test]
    fn oversized_link_is_copied() {
        let long_path = "a".repeat(MAX_LINK_BYTES);
        let body = format!(
            "{{\"@odata.nextLink\":\"https://s4.example.com/sap/opu/odata/sap/X/{long_path}\",\"@odata.id\":\"/sap/opu/odata/sap/X/B\"}}"
        );
        let expected = format!(
            "{{\"@odata.nextLink\":\"https://s4.example.com/sap/opu/odata/sap/X/{long_path}\",\"@odata.id\":\"https://gw.example.com/odata/S4/B\"}}"
        );
        assert_eq!(rewrite(&body), expected);
    }

    #[test]
    fn oversized_key_is_not_a_link_key() {
        let long_name = "P".repeat(MAX_KEY_BYTES);
        let body = format!("{{\"{long_name}@odata.nextLink\":\"/sap/opu/odata/sap/X/A\"}}");
        assert_eq!(rewrite(&body), body);
    }

    #[test]
    fn nesting_beyond_limit_passes_unchanged() {
        let nested = |arrays: usize| {
            format!(
                "{}{{\"@odata.id\":\"/sap/opu/odata/sap/X/A\"}}{}",
                "[".repeat(arrays),
                "]".repeat(arrays)
            )
        };

        let deepest_tracked = nested(MAX_DEPTH - 1);
        let expected = deepest_tracked.replace("/sap/opu/odata/sap/X", GATEWAY);
        assert_eq!(rewrite(&deepest_tracked), expected);

        let too_deep = nested(MAX_DEPTH);
        assert_eq!(rewrite(&too_deep), too_deep);
    }

    #[test]
    fn scalars_and_literals_are_copied() {
        let body = "{\"a\":-1.5e+10,\"b\":true,\"c\":null,\"d\":[1,2,false],\"@odata.id\":\"/sap/opu/odata/sap/X/A\"}";
        let expected = "{\"a\":-1.5e+10,\"b\":true,\"c\":null,\"d\":[1,2,false],\"@odata.id\":\"https://gw.example.com/odata/S4/A\"}";
        assert_eq!(rewrite(body), expected);
        assert_eq!(rewrite_bytewise(body), expected);
    }

    #[test]
    fn non_string_link_values_are_copied() {
        let body = "{\"@odata.nextLink\":null,\"__metadata\":{\"uri\":{\"uri\":\"/sap/opu/odata/sap/X/A\"}}}";
        assert_eq!(rewrite(body), body);
    }
}
