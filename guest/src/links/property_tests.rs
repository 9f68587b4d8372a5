//! Property tests of the body rewriters on generated documents: the output
//! does not depend on how the body is split, only link values change, and
//! valid JSON stays valid.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

use super::{BodyRewriter, JsonRewriter, LinkMap, XmlRewriter};

/// Failures are reported with their shrunk input and not stored, so that a
/// test run writes no files into the source tree.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const BACKEND: &str = "https://s4.example.com/sap/opu/odata/sap/API_X";
const GATEWAY: &str = "https://gw.example.com/odata/S4";

/// Link values that name the backend with a scheme and authority, so that
/// mapping the output back gives them again.
const ABSOLUTE_LINKS: [&str; 6] = [
    "https://s4.example.com/sap/opu/odata/sap/API_X/Items('1')",
    "https://s4.example.com/sap/opu/odata/sap/API_X/Items?$skiptoken=5&$top=2",
    "https://s4.example.com/sap/opu/odata/sap/API_X",
    "https://s4.example.com/sap/opu/odata/sap/API_X/$metadata#Items",
    "https://s4.example.com/sap/opu/odata/sap/API_X/A('x\"y<&>\\z')/é😀",
    "https://s4.example.com/sap/opu/odata/sap/API_X/a%2Fb/../c",
];

/// Link values that are not rewritten, or that map back to another
/// spelling of the same link.
const OTHER_LINKS: [&str; 9] = [
    "HTTPS://S4.example.com:443/sap/opu/odata/sap/API_X/Items?$top=2",
    "/sap/opu/odata/sap/API_X/Items('2')",
    "//s4.example.com/sap/opu/odata/sap/API_X/Items",
    "https://s4.example.com/sap/opu/odata/sap/API_XY/Items",
    "https://other.example.com/sap/opu/odata/sap/API_X",
    "Items('3')",
    "?$skip=2",
    "",
    "\\/Date(1672531200000)\\/",
];

/// Keys that make their value a link in some position, and keys that never do.
const KEYS: [&str; 16] = [
    "@odata.nextLink",
    "Items@odata.nextLink",
    "@odata.context",
    "@id",
    "Photo@mediaReadLink",
    "__next",
    "__metadata",
    "__deferred",
    "uri",
    "id",
    "media_src",
    "edit_media",
    "@odata.type",
    "results",
    "Name",
    "Amount",
];

fn link_map(backend_base: &str, gateway_base: &str) -> LinkMap {
    match LinkMap::new(backend_base, gateway_base) {
        Some(map) => map,
        None => panic!("{backend_base} was rejected as backend base"),
    }
}

fn run(mut rewriter: impl BodyRewriter, chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in chunks {
        rewriter.write(chunk, &mut out);
    }
    rewriter.finish(&mut out);
    out
}

fn rewrite_json(map: &LinkMap, body: &[u8]) -> Vec<u8> {
    run(JsonRewriter::new(map.clone()), &[body])
}

fn rewrite_xml(map: &LinkMap, body: &[u8]) -> Vec<u8> {
    run(XmlRewriter::new(map.clone()), &[body])
}

/// Splits `body` at the given positions.
fn split<'a>(body: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut positions: Vec<usize> = cuts.iter().map(|cut| cut.index(body.len() + 1)).collect();
    positions.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for position in positions {
        chunks.push(&body[start..position]);
        start = position;
    }
    chunks.push(&body[start..]);
    chunks
}

// JSON documents.

#[derive(Debug, Clone)]
enum Node {
    Scalar(&'static str),
    Text(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

fn text_value(with_other_links: bool) -> BoxedStrategy<String> {
    let mut choices = vec![
        prop::sample::select(ABSOLUTE_LINKS.to_vec())
            .prop_map(str::to_owned)
            .boxed(),
        "[ -~é\\n\\t\"\\\\]{0,12}".boxed(),
    ];
    if with_other_links {
        choices.push(
            prop::sample::select(OTHER_LINKS.to_vec())
                .prop_map(str::to_owned)
                .boxed(),
        );
    }
    proptest::strategy::Union::new(choices).boxed()
}

fn json_node(with_other_links: bool) -> impl Strategy<Value = Node> {
    let scalar = prop::sample::select(vec![
        "null",
        "true",
        "false",
        "0",
        "-12.50",
        "9007199254740993",
        "1e-7",
    ]);
    let leaf = prop_oneof![
        scalar.prop_map(Node::Scalar),
        text_value(with_other_links).prop_map(Node::Text)
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        let key = prop_oneof![
            3 => prop::sample::select(KEYS.to_vec()).prop_map(str::to_owned),
            1 => "[a-z@_.]{0,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Node::Array),
            prop::collection::vec((key, inner), 0..6).prop_map(Node::Object),
        ]
    })
}

/// How a JSON document is written: which optional escapes and which
/// whitespace it uses, chosen from `seed` per string and per separator.
#[derive(Debug, Clone, Copy)]
struct JsonStyle {
    seed: u64,
    optional_escapes: bool,
}

impl JsonStyle {
    fn next(&mut self) -> u64 {
        // xorshift64: a fixed sequence per seed, so cases shrink and replay.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    fn whitespace(&mut self) -> &'static str {
        ["", "", " ", "\n\t", "\r\n  "][(self.next() % 5) as usize]
    }

    fn write_string(&mut self, text: &str, out: &mut String) {
        out.push('"');
        for character in text.chars() {
            let escape = self.optional_escapes && self.next().is_multiple_of(4);
            match character {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '/' if escape => out.push_str("\\/"),
                '😀' if escape => out.push_str("\\ud83d\\ude00"),
                other if escape => out.push_str(&format!("\\u{:04X}", u32::from(other))),
                other => out.push(other),
            }
        }
        out.push('"');
    }

    fn write_node(&mut self, node: &Node, out: &mut String) {
        match node {
            Node::Scalar(scalar) => out.push_str(scalar),
            Node::Text(text) => self.write_string(text, out),
            Node::Array(items) => {
                out.push('[');
                for (position, item) in items.iter().enumerate() {
                    if position > 0 {
                        out.push(',');
                    }
                    out.push_str(self.whitespace());
                    self.write_node(item, out);
                }
                out.push_str(self.whitespace());
                out.push(']');
            }
            Node::Object(members) => {
                out.push('{');
                for (position, (key, value)) in members.iter().enumerate() {
                    if position > 0 {
                        out.push(',');
                    }
                    out.push_str(self.whitespace());
                    self.write_string(key, out);
                    out.push_str(self.whitespace());
                    out.push(':');
                    out.push_str(self.whitespace());
                    self.write_node(value, out);
                }
                out.push_str(self.whitespace());
                out.push('}');
            }
        }
    }

    fn render(mut self, node: &Node) -> String {
        let mut out = String::new();
        out.push_str(self.whitespace());
        self.write_node(node, &mut out);
        out.push_str(self.whitespace());
        out
    }
}

/// Rewrites every link value in the parsed input. The result is the
/// expected output, computed on the tree instead of the byte stream.
fn expected_json(map: &LinkMap, value: &Value, parent_key: Option<&str>) -> Value {
    match value {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| expected_json(map, item, None))
                .collect(),
        ),
        Value::Object(members) => {
            let rewritten = members.iter().map(|(key, member)| {
                let new_member = match member {
                    Value::String(text) if is_link_member(parent_key, key) => {
                        Value::String(map.rewrite(text).unwrap_or_else(|| text.clone()))
                    }
                    _ => expected_json(map, member, Some(key)),
                };
                (key.clone(), new_member)
            });
            Value::Object(rewritten.collect())
        }
        other => other.clone(),
    }
}

fn is_link_member(parent_key: Option<&str>, key: &str) -> bool {
    let v4_names = [
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
    let v4 = key
        .rsplit_once('@')
        .is_some_and(|(_, name)| v4_names.contains(&name.strip_prefix("odata.").unwrap_or(name)));
    let v2 = matches!(
        (parent_key, key),
        (_, "__next")
            | (
                Some("__metadata"),
                "uri" | "id" | "media_src" | "edit_media"
            )
            | (Some("__deferred"), "uri")
    );
    v4 || v2
}

fn parse_json(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes).ok()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn json_output_independent_of_splits(
        node in json_node(true),
        seed in 1..u64::MAX,
        cuts in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        let map = link_map(BACKEND, GATEWAY);
        let body = JsonStyle { seed, optional_escapes: true }.render(&node);
        let whole = rewrite_json(&map, body.as_bytes());
        let chunked = run(JsonRewriter::new(map), &split(body.as_bytes(), &cuts));
        prop_assert_eq!(String::from_utf8_lossy(&chunked), String::from_utf8_lossy(&whole));
    }

    #[test]
    fn json_rewrites_only_link_values(node in json_node(true), seed in 1..u64::MAX) {
        let map = link_map(BACKEND, GATEWAY);
        let body = JsonStyle { seed, optional_escapes: true }.render(&node);
        let input = parse_json(body.as_bytes());
        prop_assert!(input.is_some(), "generated JSON does not parse: {}", body);

        let output = rewrite_json(&map, body.as_bytes());
        let parsed = parse_json(&output);
        prop_assert!(parsed.is_some(), "output does not parse: {}", String::from_utf8_lossy(&output));
        if let (Some(input), Some(parsed)) = (input, parsed) {
            prop_assert_eq!(parsed, expected_json(&map, &input, None));
        }
    }

    #[test]
    fn json_maps_back_byte_for_byte(node in json_node(false), seed in 1..u64::MAX) {
        let body = JsonStyle { seed, optional_escapes: false }.render(&node);
        let output = rewrite_json(&link_map(BACKEND, GATEWAY), body.as_bytes());
        let mapped_back = rewrite_json(&link_map(GATEWAY, BACKEND), &output);
        prop_assert_eq!(String::from_utf8_lossy(&mapped_back), body);
    }

    #[test]
    fn json_prefix_stays_consistent(
        node in json_node(true),
        seed in 1..u64::MAX,
        end in any::<Index>(),
        cuts in prop::collection::vec(any::<Index>(), 0..6),
    ) {
        let map = link_map(BACKEND, GATEWAY);
        let body = JsonStyle { seed, optional_escapes: true }.render(&node);
        let truncated = &body.as_bytes()[..end.index(body.len() + 1)];
        let whole = rewrite_json(&map, truncated);
        let chunked = run(JsonRewriter::new(map), &split(truncated, &cuts));
        prop_assert_eq!(chunked, whole);
    }

    #[test]
    fn json_arbitrary_bytes_independent_of_splits(
        body in prop::collection::vec(prop::sample::select(b"{}[]:,\"\\ u0aA/@_-.htps".to_vec()), 0..200),
        cuts in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        let map = link_map("https://s4.example.com", GATEWAY);
        let whole = rewrite_json(&map, &body);
        let chunked = run(JsonRewriter::new(map.clone()), &split(&body, &cuts));
        prop_assert_eq!(&chunked, &whole);
        if parse_json(&body).is_some() {
            prop_assert!(parse_json(&whole).is_some());
        }
    }
}

// XML documents.

#[derive(Debug, Clone)]
enum XmlNode {
    Text(String),
    Comment,
    CData(String),
    Element {
        name: &'static str,
        attributes: Vec<(&'static str, String, bool)>,
        children: Vec<XmlNode>,
    },
}

const ELEMENT_NAMES: [&str; 10] = [
    "feed",
    "entry",
    "id",
    "atom:id",
    "uri",
    "d:id",
    "link",
    "content",
    "m:properties",
    "edmx:Reference",
];
const ATTRIBUTE_NAMES: [&str; 8] = [
    "href",
    "src",
    "xml:base",
    "rel",
    "title",
    "Uri",
    "xmlns",
    "xmlns:atom",
];

fn xml_value(with_other_links: bool) -> BoxedStrategy<String> {
    let mut choices = vec![
        prop::sample::select(ABSOLUTE_LINKS.to_vec())
            .prop_map(str::to_owned)
            .boxed(),
        prop::sample::select(vec!["http://www.w3.org/2005/Atom", "urn:other"])
            .prop_map(str::to_owned)
            .boxed(),
        "[ -~é\\n]{0,10}".boxed(),
    ];
    if with_other_links {
        choices.push(
            prop::sample::select(OTHER_LINKS.to_vec())
                .prop_map(str::to_owned)
                .boxed(),
        );
    }
    proptest::strategy::Union::new(choices).boxed()
}

fn xml_node(with_other_links: bool) -> impl Strategy<Value = XmlNode> {
    let leaf = prop_oneof![
        4 => xml_value(with_other_links).prop_map(XmlNode::Text),
        1 => Just(XmlNode::Comment),
        1 => "[a-z<&>]{0,6}".prop_map(XmlNode::CData),
    ];
    leaf.prop_recursive(5, 48, 5, move |inner| {
        let attribute = (
            prop::sample::select(ATTRIBUTE_NAMES.to_vec()),
            xml_value(with_other_links),
            any::<bool>(),
        );
        (
            prop::sample::select(ELEMENT_NAMES.to_vec()),
            prop::collection::vec(attribute, 0..3),
            prop::collection::vec(inner, 0..4),
        )
            .prop_map(|(name, attributes, children)| XmlNode::Element {
                name,
                attributes,
                children,
            })
    })
}

/// Writes `text` with the escapes that the XML rewriter uses itself.
fn escape_xml(text: &str, quote: char, out: &mut String) {
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\'' if quote == '\'' => out.push_str("&apos;"),
            other => out.push(other),
        }
    }
}

fn write_xml(node: &XmlNode, out: &mut String) {
    match node {
        XmlNode::Text(text) => escape_xml(text, '"', out),
        XmlNode::Comment => out.push_str("<!-- a <b href=\"/x\"> -- ->-->"),
        XmlNode::CData(text) => {
            out.push_str("<![CDATA[");
            out.push_str(text);
            out.push_str("]]>");
        }
        XmlNode::Element {
            name,
            attributes,
            children,
        } => {
            out.push('<');
            out.push_str(name);
            let mut declared = Vec::new();
            for (attribute, value, single_quoted) in attributes {
                // A repeated attribute is not well-formed XML.
                if declared.contains(attribute) {
                    continue;
                }
                declared.push(attribute);
                let quote = if *single_quoted { '\'' } else { '"' };
                out.push(' ');
                out.push_str(attribute);
                out.push('=');
                out.push(quote);
                escape_xml(value, quote, out);
                out.push(quote);
            }
            if children.is_empty() {
                out.push_str("/>");
                return;
            }
            out.push('>');
            for child in children {
                write_xml(child, out);
            }
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
    }
}

fn render_xml(node: &XmlNode) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str("<root xmlns=\"http://www.w3.org/2005/Atom\" xmlns:d=\"http://schemas.microsoft.com/ado/2007/08/dataservices\" xmlns:m=\"urn:m\" xmlns:edmx=\"urn:edmx\">");
    write_xml(node, &mut out);
    out.push_str("</root>\n");
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn xml_output_independent_of_splits(
        node in xml_node(true),
        cuts in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        let map = link_map(BACKEND, GATEWAY);
        let body = render_xml(&node);
        let whole = rewrite_xml(&map, body.as_bytes());
        let chunked = run(XmlRewriter::new(map), &split(body.as_bytes(), &cuts));
        prop_assert_eq!(String::from_utf8_lossy(&chunked), String::from_utf8_lossy(&whole));
    }

    #[test]
    fn xml_maps_back_byte_for_byte(node in xml_node(false)) {
        let body = render_xml(&node);
        let output = rewrite_xml(&link_map(BACKEND, GATEWAY), body.as_bytes());
        let mapped_back = rewrite_xml(&link_map(GATEWAY, BACKEND), &output);
        prop_assert_eq!(String::from_utf8_lossy(&mapped_back), body);
    }

    #[test]
    fn xml_unmatched_base_changes_nothing(node in xml_node(true)) {
        let body = render_xml(&node);
        let output = rewrite_xml(&link_map("https://s4.example.com/unrelated", GATEWAY), body.as_bytes());
        prop_assert_eq!(String::from_utf8_lossy(&output), body);
    }

    #[test]
    fn xml_arbitrary_bytes_independent_of_splits(
        body in prop::collection::vec(prop::sample::select(b"<>/!?-[]CDATA'\"= hrefsxmlns:&;#x1a".to_vec()), 0..200),
        cuts in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        let map = link_map("https://s4.example.com", GATEWAY);
        let whole = rewrite_xml(&map, &body);
        let chunked = run(XmlRewriter::new(map), &split(&body, &cuts));
        prop_assert_eq!(chunked, whole);
    }
}
