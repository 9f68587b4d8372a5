//! Streaming rewriter for links in XML bodies: Atom feeds and entries, the
//! OData 2.0 service document, `$metadata`, `$links` and XML errors.
//!
//! The rewriter scans bytes with a small state machine that follows tags,
//! comments, CDATA sections, processing instructions and the document type
//! declaration. It copies every byte unchanged except these values, which
//! it holds back and passes through [`LinkMap::rewrite`]:
//!
//! - the values of the attributes `href`, `src` and `xml:base` on any
//!   element, because in OData XML formats these only carry links
//!   (`atom:link`, `app:collection`, `atom:content`);
//! - the `Uri` attribute of a `Reference` element, which points to another
//!   CSDL document from `$metadata` (`edmx:Reference`);
//! - the text of an `id` or `uri` element in the Atom namespace, and of a
//!   `uri` element in the OData 2.0 data services namespace (the `$links`
//!   response). Namespaces are resolved with the declarations in scope, so
//!   `<d:id>` and other properties of an entry are never touched.
//!
//! Text is rewritten only when it is the whole content of the element: a
//! child element, comment or CDATA section inside it leaves it unchanged.
//! Whitespace around the text is kept. Values are matched after decoding
//! entity and character references, and a rewritten value is written with
//! `&`, `<` and `"` escaped (and `'` inside `'`-delimited attributes).
//!
//! Memory is bounded: the state is the stack of open elements with their
//! namespace declarations (at most `MAX_DEPTH` elements and
//! `MAX_DECLARATIONS` declarations per tag), the current names (at most
//! `MAX_NAME_BYTES` are kept) and one held-back value (at most
//! `MAX_VALUE_BYTES`). A longer value is copied unchanged. Past the depth or
//! declaration limit the rest of the body is copied unchanged. Malformed
//! markup is copied too, and the output never depends on how the body is
//! split into chunks.

use super::xml_text::{decode_entities, escape_value};
use super::{BodyRewriter, LinkMap};

/// Maximum raw length of an attribute value or element text held back.
const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Maximum length of an element or attribute name that is kept for matching.
const MAX_NAME_BYTES: usize = 256;
/// Maximum length of a namespace name that is kept for matching.
const MAX_NAMESPACE_BYTES: usize = 256;
/// Maximum nesting of elements that is tracked.
const MAX_DEPTH: usize = 1024;
/// Maximum count of namespace declarations in one start tag.
const MAX_DECLARATIONS: usize = 64;

const ATOM_NAMESPACE: &[u8] = b"http://www.w3.org/2005/Atom";
const DATA_SERVICES_NAMESPACE: &[u8] = b"http://schemas.microsoft.com/ado/2007/08/dataservices";

/// The streaming XML link rewriter for one body.
#[derive(Debug)]
pub struct XmlRewriter {
    map: LinkMap,
    scan: Scan,
    elements: Vec<Element>,
    tag: StartTag,
    /// Raw bytes of the value being held back, or of a namespace name.
    value: Vec<u8>,
    value_truncated: bool,
}

/// The lexical state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    Text,
    /// Text of an element whose text is a link, held back in `value`.
    LinkText,
    /// After `<`. With `held_text`, both the link text and the `<` are still
    /// held back, because only the next byte shows whether the text ends the
    /// element.
    MarkupStart {
        held_text: bool,
    },
    /// After `<!`, with the count of bytes that match `--` or `[CDATA[`.
    Declaration {
        matched: usize,
        cdata: bool,
    },
    Comment {
        dashes: u8,
    },
    CData {
        brackets: u8,
    },
    /// A document type declaration, with the depth of `[` and the open quote.
    DocumentType {
        depth: u32,
        quote: Option<u8>,
    },
    ProcessingInstruction {
        question_mark: bool,
    },
    EndTag,
    TagName,
    /// Inside a start tag, between attributes.
    TagSpace,
    AttributeName,
    AfterAttributeName,
    BeforeAttributeValue,
    AttributeValue {
        quote: u8,
        role: AttributeRole,
    },
    EmptyTagSlash,
    /// After a limit was reached or after `finish`: every byte is copied.
    Passthrough,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttributeRole {
    /// `href`, `src` or `xml:base`: held back and rewritten.
    Link,
    /// `xmlns` or `xmlns:prefix`: copied and recorded.
    NamespaceDeclaration,
    Plain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Namespace {
    Atom,
    DataServices,
    Other,
}

impl Namespace {
    fn from_name(name: &[u8]) -> Self {
        match name {
            ATOM_NAMESPACE => Namespace::Atom,
            DATA_SERVICES_NAMESPACE => Namespace::DataServices,
            _ => Namespace::Other,
        }
    }
}

/// An open element: the namespace declarations it brings into scope.
#[derive(Debug, Default)]
struct Element {
    default_namespace: Option<Namespace>,
    prefixes: Vec<(Vec<u8>, Namespace)>,
}

/// The start tag being scanned.
#[derive(Debug, Default)]
struct StartTag {
    name: Vec<u8>,
    name_truncated: bool,
    attribute_name: Vec<u8>,
    attribute_name_truncated: bool,
    declarations: Element,
}

impl XmlRewriter {
    /// Creates the rewriter for one body, which rewrites links with `map`.
    pub fn new(map: LinkMap) -> Self {
        XmlRewriter {
            map,
            scan: Scan::Text,
            elements: Vec::new(),
            tag: StartTag::default(),
            value: Vec::new(),
            value_truncated: false,
        }
    }

    /// Consumes bytes from the start of `input` in the current state and
    /// returns how many. Returns 0 only after changing state, so that the
    /// caller's loop always makes progress.
    fn step(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        let byte = input[0];
        match self.scan {
            Scan::Passthrough => {
                out.extend_from_slice(input);
                input.len()
            }
            Scan::Text => self.scan_text(input, out),
            Scan::LinkText => self.scan_link_text(input, out),
            Scan::MarkupStart { held_text } => self.scan_markup_start(held_text, byte, out),
            Scan::Declaration { matched, cdata } => {
                self.scan_declaration(matched, cdata, byte, out)
            }
            Scan::EndTag => self.scan_end_tag(input, out),
            Scan::AttributeValue { quote, role } => {
                self.scan_attribute_value(quote, role, input, out)
            }
            Scan::TagName => self.scan_tag_name(byte, out),
            Scan::AttributeName => self.scan_attribute_name(byte, out),
            Scan::Comment { .. }
            | Scan::CData { .. }
            | Scan::DocumentType { .. }
            | Scan::ProcessingInstruction { .. }
            | Scan::TagSpace
            | Scan::AfterAttributeName
            | Scan::BeforeAttributeValue
            | Scan::EmptyTagSlash => self.scan_copied_byte(byte, out),
        }
    }

    fn scan_text(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        let Some(less_than) = input.iter().position(|&b| b == b'<') else {
            out.extend_from_slice(input);
            return input.len();
        };
        out.extend_from_slice(&input[..=less_than]);
        self.scan = Scan::MarkupStart { held_text: false };
        less_than + 1
    }

    fn scan_link_text(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        let less_than = input.iter().position(|&b| b == b'<');
        let text = &input[..less_than.unwrap_or(input.len())];

        if self.value.len() + text.len() > MAX_VALUE_BYTES {
            out.append(&mut self.value);
            self.scan = Scan::Text;
            return 0;
        }
        self.value.extend_from_slice(text);

        match less_than {
            Some(position) => {
                self.scan = Scan::MarkupStart { held_text: true };
                position + 1
            }
            None => input.len(),
        }
    }

    fn scan_markup_start(&mut self, held_text: bool, byte: u8, out: &mut Vec<u8>) -> usize {
        if held_text {
            self.release_link_text(byte == b'/', out);
            out.push(b'<');
        }
        let next = match byte {
            b'/' => Scan::EndTag,
            b'?' => Scan::ProcessingInstruction {
                question_mark: false,
            },
            b'!' => Scan::Declaration {
                matched: 0,
                cdata: false,
            },
            // A start tag: the byte is the first of its name.
            _ => {
                self.tag = StartTag::default();
                self.scan = Scan::TagName;
                return 0;
            }
        };
        out.push(byte);
        self.scan = next;
        1
    }

    /// Distinguishes `<!--` and `<![CDATA[` from other declarations such as
    /// `<!DOCTYPE`, one byte at a time.
    fn scan_declaration(
        &mut self,
        matched: usize,
        cdata: bool,
        byte: u8,
        out: &mut Vec<u8>,
    ) -> usize {
        let cdata = if matched == 0 { byte == b'[' } else { cdata };
        let expected: &[u8] = if cdata { b"[CDATA[" } else { b"--" };

        if byte != expected[matched] {
            let depth = u32::from(cdata && matched > 0);
            self.scan = Scan::DocumentType { depth, quote: None };
            return 0;
        }

        out.push(byte);
        self.scan = if matched + 1 < expected.len() {
            Scan::Declaration {
                matched: matched + 1,
                cdata,
            }
        } else if cdata {
            Scan::CData { brackets: 0 }
        } else {
            Scan::Comment { dashes: 0 }
        };
        1
    }

    fn scan_end_tag(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        let Some(greater_than) = input.iter().position(|&b| b == b'>') else {
            out.extend_from_slice(input);
            return input.len();
        };
        out.extend_from_slice(&input[..=greater_than]);
        self.elements.pop();
        self.scan = Scan::Text;
        greater_than + 1
    }

    fn scan_tag_name(&mut self, byte: u8, out: &mut Vec<u8>) -> usize {
        if is_tag_delimiter(byte) {
            self.scan = Scan::TagSpace;
            return 0;
        }
        out.push(byte);
        append_bounded(
            &mut self.tag.name,
            &mut self.tag.name_truncated,
            &[byte],
            MAX_NAME_BYTES,
        );
        1
    }

    fn scan_attribute_name(&mut self, byte: u8, out: &mut Vec<u8>) -> usize {
        if byte == b'=' || is_tag_delimiter(byte) {
            self.scan = Scan::AfterAttributeName;
            return 0;
        }
        out.push(byte);
        let tag = &mut self.tag;
        append_bounded(
            &mut tag.attribute_name,
            &mut tag.attribute_name_truncated,
            &[byte],
            MAX_NAME_BYTES,
        );
        1
    }

    fn scan_attribute_value(
        &mut self,
        quote: u8,
        role: AttributeRole,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> usize {
        let end = input.iter().position(|&b| b == quote);
        let content = &input[..end.unwrap_or(input.len())];
        let mut role = role;

        match role {
            AttributeRole::Plain => out.extend_from_slice(content),
            AttributeRole::NamespaceDeclaration => {
                out.extend_from_slice(content);
                append_bounded(
                    &mut self.value,
                    &mut self.value_truncated,
                    content,
                    MAX_NAMESPACE_BYTES,
                );
            }
            AttributeRole::Link => {
                if self.value.len() + content.len() <= MAX_VALUE_BYTES {
                    self.value.extend_from_slice(content);
                } else {
                    out.append(&mut self.value);
                    out.extend_from_slice(content);
                    role = AttributeRole::Plain;
                }
            }
        }

        let Some(end) = end else {
            self.scan = Scan::AttributeValue { quote, role };
            return input.len();
        };
        self.scan = Scan::TagSpace;
        match role {
            AttributeRole::Plain => {}
            AttributeRole::NamespaceDeclaration => self.declare_namespace(),
            AttributeRole::Link => self.release_attribute(quote, out),
        }
        out.push(quote);
        end + 1
    }

    /// Handles one byte of the states that copy each byte as it comes. A
    /// byte that ends a malformed attribute is not consumed but scanned
    /// again as the start of the next attribute.
    fn scan_copied_byte(&mut self, byte: u8, out: &mut Vec<u8>) -> usize {
        let next = match self.scan {
            Scan::Comment { dashes } => Some(scan_comment(dashes, byte)),
            Scan::CData { brackets } => Some(scan_cdata(brackets, byte)),
            Scan::ProcessingInstruction { question_mark } => {
                Some(scan_processing_instruction(question_mark, byte))
            }
            Scan::DocumentType { depth, quote } => Some(scan_document_type(depth, quote, byte)),
            Scan::TagSpace => Some(self.scan_tag_space(byte)),
            Scan::AfterAttributeName => match byte {
                b'=' => Some(Scan::BeforeAttributeValue),
                _ if is_xml_whitespace(byte) => Some(Scan::AfterAttributeName),
                // An attribute without a value.
                _ => None,
            },
            Scan::BeforeAttributeValue => match byte {
                b'"' | b'\'' => Some(self.start_attribute_value(byte)),
                _ if is_xml_whitespace(byte) => Some(Scan::BeforeAttributeValue),
                // An unquoted value is not XML: it is read as attribute names.
                _ => None,
            },
            Scan::EmptyTagSlash => match byte {
                b'>' => Some(self.end_start_tag(true)),
                _ => None,
            },
            other => Some(other),
        };

        match next {
            Some(next) => {
                out.push(byte);
                self.scan = next;
                1
            }
            None => {
                self.scan = Scan::TagSpace;
                0
            }
        }
    }

    fn scan_tag_space(&mut self, byte: u8) -> Scan {
        match byte {
            b'/' => Scan::EmptyTagSlash,
            b'>' => self.end_start_tag(false),
            _ if is_xml_whitespace(byte) => Scan::TagSpace,
            _ => {
                let tag = &mut self.tag;
                tag.attribute_name.clear();
                tag.attribute_name_truncated = false;
                append_bounded(
                    &mut tag.attribute_name,
                    &mut tag.attribute_name_truncated,
                    &[byte],
                    MAX_NAME_BYTES,
                );
                Scan::AttributeName
            }
        }
    }

    fn start_attribute_value(&mut self, quote: u8) -> Scan {
        self.value.clear();
        self.value_truncated = false;
        let role = if self.tag.attribute_name_truncated {
            AttributeRole::Plain
        } else {
            match self.tag.attribute_name.as_slice() {
                b"href" | b"src" | b"xml:base" => AttributeRole::Link,
                b"Uri" if self.tag_local_name() == b"Reference" => AttributeRole::Link,
                b"xmlns" => AttributeRole::NamespaceDeclaration,
                name if name.starts_with(b"xmlns:") => AttributeRole::NamespaceDeclaration,
                _ => AttributeRole::Plain,
            }
        };
        Scan::AttributeValue { quote, role }
    }

    fn declare_namespace(&mut self) {
        let namespace = match decode_entities(&self.value) {
            Some(name) if !self.value_truncated => Namespace::from_name(name.as_bytes()),
            _ => Namespace::Other,
        };
        let declarations = &mut self.tag.declarations;
        match self.tag.attribute_name.strip_prefix(b"xmlns:") {
            Some(prefix) => declarations.prefixes.push((prefix.to_vec(), namespace)),
            None => declarations.default_namespace = Some(namespace),
        }
        if declarations.prefixes.len() > MAX_DECLARATIONS {
            self.scan = Scan::Passthrough;
        }
    }

    /// Opens the element of the scanned start tag and returns the next state.
    fn end_start_tag(&mut self, empty: bool) -> Scan {
        if empty {
            return Scan::Text;
        }
        if self.elements.len() >= MAX_DEPTH {
            return Scan::Passthrough;
        }

        let element = std::mem::take(&mut self.tag.declarations);
        self.elements.push(element);
        if self.has_link_text() {
            self.value.clear();
            Scan::LinkText
        } else {
            Scan::Text
        }
    }

    /// Returns the local name of the scanned start tag, or nothing when the
    /// name was too long to keep.
    fn tag_local_name(&self) -> &[u8] {
        if self.tag.name_truncated {
            return b"";
        }
        let name = self.tag.name.as_slice();
        match name.iter().position(|&b| b == b':') {
            Some(colon) => &name[colon + 1..],
            None => name,
        }
    }

    /// Returns whether the innermost open element, named by the scanned
    /// start tag, is one whose text is a link.
    fn has_link_text(&self) -> bool {
        let name = self.tag.name.as_slice();
        let prefix = name
            .iter()
            .position(|&b| b == b':')
            .map(|colon| &name[..colon]);

        let namespace = self.resolve_namespace(prefix);
        match self.tag_local_name() {
            b"id" => namespace == Namespace::Atom,
            b"uri" => matches!(namespace, Namespace::Atom | Namespace::DataServices),
            _ => false,
        }
    }

    /// Resolves a prefix, or the default namespace for `None`, with the
    /// declarations of the open elements, innermost first.
    fn resolve_namespace(&self, prefix: Option<&[u8]>) -> Namespace {
        let mut scopes = self.elements.iter().rev();
        let found = match prefix {
            None => scopes.find_map(|element| element.default_namespace),
            Some(prefix) => scopes.find_map(|element| {
                let mut declarations = element.prefixes.iter().rev();
                declarations
                    .find(|(declared, _)| declared == prefix)
                    .map(|(_, namespace)| *namespace)
            }),
        };
        found.unwrap_or(Namespace::Other)
    }

    /// Writes the held-back element text: rewritten when it ends the element
    /// and is a link, otherwise as it came.
    fn release_link_text(&mut self, ends_element: bool, out: &mut Vec<u8>) {
        let raw = self.value.as_slice();
        let start = raw
            .iter()
            .position(|&b| !is_xml_whitespace(b))
            .unwrap_or(raw.len());
        let end = raw
            .iter()
            .rposition(|&b| !is_xml_whitespace(b))
            .map_or(start, |i| i + 1);

        let rewritten = if ends_element {
            decode_entities(&raw[start..end]).and_then(|link| self.map.rewrite(&link))
        } else {
            None
        };
        match rewritten {
            Some(rewritten) => {
                out.extend_from_slice(&raw[..start]);
                escape_value(&rewritten, b'"', out);
                out.extend_from_slice(&raw[end..]);
            }
            None => out.extend_from_slice(raw),
        }
        self.value.clear();
    }

    fn release_attribute(&mut self, quote: u8, out: &mut Vec<u8>) {
        let rewritten = decode_entities(&self.value).and_then(|link| self.map.rewrite(&link));
        match rewritten {
            Some(rewritten) => escape_value(&rewritten, quote, out),
            None => out.extend_from_slice(&self.value),
        }
        self.value.clear();
    }
}

impl BodyRewriter for XmlRewriter {
    fn write(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut rest = input;
        while !rest.is_empty() {
            let consumed = self.step(rest, out);
            rest = &rest[consumed..];
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        // Held-back bytes of an unterminated value are copied as they came.
        match self.scan {
            Scan::LinkText
            | Scan::AttributeValue {
                role: AttributeRole::Link,
                ..
            } => out.append(&mut self.value),
            Scan::MarkupStart { held_text: true } => {
                out.append(&mut self.value);
                out.push(b'<');
            }
            _ => {}
        }
        self.scan = Scan::Passthrough;
    }
}

fn scan_comment(dashes: u8, byte: u8) -> Scan {
    match byte {
        b'-' => Scan::Comment {
            dashes: dashes.saturating_add(1),
        },
        b'>' if dashes >= 2 => Scan::Text,
        _ => Scan::Comment { dashes: 0 },
    }
}

fn scan_cdata(brackets: u8, byte: u8) -> Scan {
    match byte {
        b']' => Scan::CData {
            brackets: brackets.saturating_add(1),
        },
        b'>' if brackets >= 2 => Scan::Text,
        _ => Scan::CData { brackets: 0 },
    }
}

fn scan_processing_instruction(question_mark: bool, byte: u8) -> Scan {
    match byte {
        b'>' if question_mark => Scan::Text,
        _ => Scan::ProcessingInstruction {
            question_mark: byte == b'?',
        },
    }
}

/// Follows a document type declaration to its closing `>`, skipping the
/// internal subset in `[...]` and quoted literals.
fn scan_document_type(depth: u32, quote: Option<u8>, byte: u8) -> Scan {
    if let Some(open) = quote {
        let quote = if byte == open { None } else { quote };
        return Scan::DocumentType { depth, quote };
    }
    match byte {
        b'"' | b'\'' => Scan::DocumentType {
            depth,
            quote: Some(byte),
        },
        b'[' => Scan::DocumentType {
            depth: depth + 1,
            quote,
        },
        b']' => Scan::DocumentType {
            depth: depth.saturating_sub(1),
            quote,
        },
        b'>' if depth == 0 => Scan::Text,
        _ => Scan::DocumentType { depth, quote },
    }
}

/// Returns whether `byte` is XML white space (space, tab, CR or LF).
fn is_xml_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_tag_delimiter(byte: u8) -> bool {
    is_xml_whitespace(byte) || byte == b'/' || byte == b'>'
}

/// Appends `bytes` while `buffer` stays within `limit`, and otherwise marks
/// it as truncated, so that a cut name never matches.
fn append_bounded(buffer: &mut Vec<u8>, truncated: &mut bool, bytes: &[u8], limit: usize) {
    if *truncated || buffer.len() + bytes.len() > limit {
        *truncated = true;
    } else {
        buffer.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKEND: &str = "https://s4.example.com/svc";
    const GATEWAY: &str = "https://gw.example.com/odata/S4";
    const ATOM: &str = "http://www.w3.org/2005/Atom";
    const DATA_SERVICES: &str = "http://schemas.microsoft.com/ado/2007/08/dataservices";

    fn rewrite_chunks(chunks: &[&[u8]]) -> String {
        let Some(map) = LinkMap::new(BACKEND, GATEWAY) else {
            panic!("{BACKEND} was rejected as backend base");
        };
        let mut rewriter = XmlRewriter::new(map);
        let mut out = Vec::new();
        for chunk in chunks {
            rewriter.write(chunk, &mut out);
        }
        rewriter.finish(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Rewrites `body` in one chunk and byte by byte, and checks that both
    /// give the same output.
    fn rewrite(body: &str) -> String {
        let whole = rewrite_chunks(&[body.as_bytes()]);
        let chunks: Vec<&[u8]> = body.as_bytes().chunks(1).collect();
        assert_eq!(
            rewrite_chunks(&chunks),
            whole,
            "byte-wise output differs for {body}"
        );
        whole
    }

    #[test]
    fn link_attributes_are_rewritten() {
        let body = r#"<feed xml:base="https://s4.example.com/svc/"><link href="https://s4.example.com/svc/A?$skiptoken=1" rel="next"/><content src='/svc/A/$value' type="x"/><link rel="https://s4.example.com/svc/keep" title="https://s4.example.com/svc/keep"/></feed>"#;
        let expected = r#"<feed xml:base="https://gw.example.com/odata/S4/"><link href="https://gw.example.com/odata/S4/A?$skiptoken=1" rel="next"/><content src='https://gw.example.com/odata/S4/A/$value' type="x"/><link rel="https://s4.example.com/svc/keep" title="https://s4.example.com/svc/keep"/></feed>"#;
        assert_eq!(rewrite(body), expected);
    }

    #[test]
    fn attribute_entities_are_decoded_and_escaped() {
        let body = r#"<a href="https://s4.example.com/svc/A?x=1&amp;y=&#39;2&#39;"/><a href='/svc/B(&apos;1&apos;)'/>"#;
        let expected = r#"<a href="https://gw.example.com/odata/S4/A?x=1&amp;y='2'"/><a href='https://gw.example.com/odata/S4/B(&apos;1&apos;)'/>"#;
        assert_eq!(rewrite(body), expected);
    }

    #[test]
    fn unknown_entity_keeps_attribute() {
        let body = r#"<a href="https://s4.example.com/svc/A&nbsp;"/>"#;
        assert_eq!(rewrite(body), body);
    }

    #[test]
    fn atom_id_and_uri_text_is_rewritten() {
        let body = format!(
            "<feed xmlns=\"{ATOM}\"><id>https://s4.example.com/svc/A</id><author><uri>\n  https://s4.example.com/svc/U\n</uri></author><entry><id>https://s4.example.com/svc/A(&apos;1&apos;)</id></entry></feed>"
        );
        let expected = format!(
            "<feed xmlns=\"{ATOM}\"><id>https://gw.example.com/odata/S4/A</id><author><uri>\n  https://gw.example.com/odata/S4/U\n</uri></author><entry><id>https://gw.example.com/odata/S4/A('1')</id></entry></feed>"
        );
        assert_eq!(rewrite(&body), expected);
    }

    #[test]
    fn prefixed_atom_id_is_rewritten() {
        let body = format!(
            "<edmx:Edmx xmlns:atom=\"{ATOM}\"><atom:id>https://s4.example.com/svc/A</atom:id><id>https://s4.example.com/svc/A</id></edmx:Edmx>"
        );
        let expected = format!(
            "<edmx:Edmx xmlns:atom=\"{ATOM}\"><atom:id>https://gw.example.com/odata/S4/A</atom:id><id>https://s4.example.com/svc/A</id></edmx:Edmx>"
        );
        assert_eq!(rewrite(&body), expected);
    }

    #[test]
    fn data_properties_are_not_links() {
        let body = format!(
            "<entry xmlns=\"{ATOM}\" xmlns:d=\"{DATA_SERVICES}\"><m:properties><d:id>https://s4.example.com/svc/A</d:id><d:uri>https://s4.example.com/svc/A</d:uri><d:Url>https://s4.example.com/svc/A</d:Url></m:properties></entry>"
        );
        let expected = body.replace(
            "<d:uri>https://s4.example.com/svc/A",
            "<d:uri>https://gw.example.com/odata/S4/A",
        );
        assert_eq!(rewrite(&body), expected);
    }

    #[test]
    fn links_response_uri_is_rewritten() {
        let body = format!(
            "<links xmlns=\"{DATA_SERVICES}\"><uri>https://s4.example.com/svc/A(1)</uri><id>https://s4.example.com/svc/A(1)</id></links>"
        );
        let expected = format!(
            "<links xmlns=\"{DATA_SERVICES}\"><uri>https://gw.example.com/odata/S4/A(1)</uri><id>https://s4.example.com/svc/A(1)</id></links>"
        );
        assert_eq!(rewrite(&body), expected);
    }

    #[test]
    fn namespace_scope_ends_with_element() {
        let body = format!(
            "<root><feed xmlns=\"{ATOM}\"><id>https://s4.example.com/svc/A</id></feed><id>https://s4.example.com/svc/B</id><x xmlns=\"urn:other\"><id>https://s4.example.com/svc/C</id></x></root>"
        );
        let expected = body.replace(
            "<id>https://s4.example.com/svc/A",
            "<id>https://gw.example.com/odata/S4/A",
        );
        assert_eq!(rewrite(&body), expected);
    }

    #[test]
    fn mixed_content_is_not_rewritten() {
        let body = format!(
            "<feed xmlns=\"{ATOM}\"><id>https://s4.example.com/svc/A<!-- c --></id><id><![CDATA[https://s4.example.com/svc/B]]></id><id>https://s4.example.com/svc/C<x/>https://s4.example.com/svc/D</id></feed>"
        );
        assert_eq!(rewrite(&body), body);
    }

    #[test]
    fn markup_lookalikes_are_copied() {
        let body = format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE feed [<!ENTITY e \"<a href='https://s4.example.com/svc/A'>\">]>\n<!-- <a href=\"https://s4.example.com/svc/A\"/> -->\n<feed xmlns=\"{ATOM}\"><title><![CDATA[<a href=\"https://s4.example.com/svc/A\"/>]]></title><?pi href=\"https://s4.example.com/svc/A\"?></feed>"
        );
        assert_eq!(rewrite(&body), body);
    }

    #[test]
    fn relative_and_foreign_links_are_copied() {
        let body = format!(
            "<feed xmlns=\"{ATOM}\"><link href=\"Employees('1')\"/><link href=\"https://other.example.com/svc/A\"/><id>Employees</id></feed>"
        );
        assert_eq!(rewrite(&body), body);
    }

    #[test]
    fn malformed_tags_are_copied() {
        let bodies = [
            "<a href=https://s4.example.com/svc/A>",
            "<a href>text</a>",
            "<a / href=\"x\">",
            "< >",
            "<!->",
            "<![X[",
            "<a href=\"https://s4.example.com/svc/A",
            "text only & < >",
        ];
        for body in bodies {
            assert_eq!(rewrite(body), body);
        }
    }

    #[test]
    fn unterminated_link_text_is_copied() {
        let body = format!("<feed xmlns=\"{ATOM}\"><id>https://s4.example.com/svc/A");
        assert_eq!(rewrite(&body), body);
        let body = format!("<feed xmlns=\"{ATOM}\"><id>https://s4.example.com/svc/A<");
        assert_eq!(rewrite(&body), body);
    }

    #[test]
    fn oversized_values_are_copied() {
        let long_path = "a".repeat(MAX_VALUE_BYTES);
        let body = format!(
            "<feed xmlns=\"{ATOM}\"><link href=\"/svc/{long_path}\"/><id>/svc/{long_path}</id><link href=\"/svc/B\"/></feed>"
        );
        let expected = body.replace("\"/svc/B\"", "\"https://gw.example.com/odata/S4/B\"");
        assert_eq!(rewrite_chunks(&[body.as_bytes()]), expected);
    }

    #[test]
    fn nesting_beyond_limit_passes_unchanged() {
        let nested = |depth: usize| {
            format!(
                "{}<a href=\"/svc/A\"/>{}",
                "<e>".repeat(depth),
                "</e>".repeat(depth)
            )
        };
        let deepest_tracked = nested(MAX_DEPTH);
        let expected =
            deepest_tracked.replace("\"/svc/A\"", "\"https://gw.example.com/odata/S4/A\"");
        assert_eq!(rewrite_chunks(&[deepest_tracked.as_bytes()]), expected);

        let too_deep = nested(MAX_DEPTH + 1);
        assert_eq!(rewrite_chunks(&[too_deep.as_bytes()]), too_deep);
    }

    #[test]
    fn rewritten_text_is_escaped() {
        let body = format!("<feed xmlns=\"{ATOM}\"><id>/svc/A?a=1&amp;b=&lt;2&gt;</id></feed>");
        let expected = format!(
            "<feed xmlns=\"{ATOM}\"><id>https://gw.example.com/odata/S4/A?a=1&amp;b=&lt;2></id></feed>"
        );
        assert_eq!(rewrite(&body), expected);
    }
}
