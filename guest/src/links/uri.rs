//! URI reference parsing and resolution as RFC 3986 defines them.
//!
//! The components stay slices of the input: nothing is decoded, and case,
//! percent-encoding and ports are left as written. Only `resolve` changes a
//! path, by removing dot segments as section 5.2.4 requires.

/// The five components of a URI reference (RFC 3986, section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UriReference<'a> {
    pub scheme: Option<&'a str>,
    pub authority: Option<&'a str>,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub fragment: Option<&'a str>,
}

impl<'a> UriReference<'a> {
    /// Splits `text` with the regular expression of RFC 3986, appendix B.
    /// Unlike that expression, a scheme is only recognised when it has the
    /// syntax of section 3.1, so that `Items(Key='a:b')` stays a relative
    /// reference instead of getting the scheme `Items(Key='a`.
    pub fn parse(text: &'a str) -> Self {
        let (text, fragment) = split_off(text, '#');
        let (text, query) = split_off(text, '?');
        let (scheme, text) = split_scheme(text);

        let (authority, path) = match text.strip_prefix("//") {
            Some(rest) => {
                let end = rest.find('/').unwrap_or(rest.len());
                (Some(&rest[..end]), &rest[end..])
            }
            None => (None, text),
        };

        UriReference {
            scheme,
            authority,
            path,
            query,
            fragment,
        }
    }

    /// Joins the components again (RFC 3986, section 5.3).
    pub fn recompose(&self) -> String {
        let mut text = String::new();
        if let Some(scheme) = self.scheme {
            text.push_str(scheme);
            text.push(':');
        }
        if let Some(authority) = self.authority {
            text.push_str("//");
            text.push_str(authority);
        }
        text.push_str(self.path);
        if let Some(query) = self.query {
            text.push('?');
            text.push_str(query);
        }
        if let Some(fragment) = self.fragment {
            text.push('#');
            text.push_str(fragment);
        }
        text
    }
}

/// Resolves `reference` against the absolute URI `base` with the strict
/// algorithm of RFC 3986, section 5.2.2. Returns `None` when `reference` is
/// relative and `base` has no scheme.
pub fn resolve(reference: &str, base: &str) -> Option<String> {
    let reference = UriReference::parse(reference);
    if reference.scheme.is_some() {
        let path = remove_dot_segments(reference.path);
        return Some(
            UriReference {
                path: &path,
                ..reference
            }
            .recompose(),
        );
    }

    let base = UriReference::parse(base);
    base.scheme?;

    if reference.authority.is_some() {
        let path = remove_dot_segments(reference.path);
        let target = UriReference {
            scheme: base.scheme,
            path: &path,
            ..reference
        };
        return Some(target.recompose());
    }

    let (path, query) = if reference.path.is_empty() {
        (base.path.to_owned(), reference.query.or(base.query))
    } else if reference.path.starts_with('/') {
        (remove_dot_segments(reference.path), reference.query)
    } else {
        let merged = merge(&base, reference.path);
        (remove_dot_segments(&merged), reference.query)
    };

    let target = UriReference {
        scheme: base.scheme,
        authority: base.authority,
        path: &path,
        query,
        fragment: reference.fragment,
    };
    Some(target.recompose())
}

/// Removes `.` and `..` segments from a path (RFC 3986, section 5.2.4).
pub fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut output = String::with_capacity(path.len());

    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest;
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest;
        } else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") {
            input = &input[3..];
            remove_last_segment(&mut output);
        } else if input == "/.." {
            input = "/";
            remove_last_segment(&mut output);
        } else if input == "." || input == ".." {
            input = "";
        } else {
            // Move the first segment, with its leading "/" if any.
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            output.push_str(&input[..end]);
            input = &input[end..];
        }
    }
    output
}

/// Merges a relative-path reference with the base path (RFC 3986, section 5.2.3).
fn merge(base: &UriReference<'_>, reference_path: &str) -> String {
    if base.authority.is_some() && base.path.is_empty() {
        return format!("/{reference_path}");
    }
    match base.path.rfind('/') {
        Some(slash) => format!("{}{reference_path}", &base.path[..=slash]),
        None => reference_path.to_owned(),
    }
}

fn remove_last_segment(output: &mut String) {
    match output.rfind('/') {
        Some(slash) => output.truncate(slash),
        None => output.clear(),
    }
}

fn split_off(text: &str, delimiter: char) -> (&str, Option<&str>) {
    match text.split_once(delimiter) {
        Some((head, tail)) => (head, Some(tail)),
        None => (text, None),
    }
}

/// Splits off `scheme:` when the text before the first `:` is a valid
/// scheme: a letter followed by letters, digits, `+`, `-` or `.`.
fn split_scheme(text: &str) -> (Option<&str>, &str) {
    let Some((candidate, rest)) = text.split_once(':') else {
        return (None, text);
    };
    let mut bytes = candidate.bytes();
    let starts_with_letter = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    let valid = starts_with_letter
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if valid {
        (Some(candidate), rest)
    } else {
        (None, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_BASE: &str = "http://a/b/c/d;p?q";

    fn check_resolution(cases: &[(&str, &str)]) {
        for (reference, expected) in cases {
            let resolved = resolve(reference, RFC_BASE);
            assert_eq!(
                resolved.as_deref(),
                Some(*expected),
                "resolving {reference:?} against {RFC_BASE}"
            );
        }
    }

    #[test]
    fn resolve_rfc_normal_examples() {
        check_resolution(&[
            ("g:h", "g:h"),
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q#s"),
            ("g#s", "http://a/b/c/g#s"),
            ("g?y#s", "http://a/b/c/g?y#s"),
            (";x", "http://a/b/c/;x"),
            ("g;x", "http://a/b/c/g;x"),
            ("g;x?y#s", "http://a/b/c/g;x?y#s"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../", "http://a/"),
            ("../../g", "http://a/g"),
        ]);
    }

    #[test]
    fn resolve_rfc_abnormal_examples() {
        check_resolution(&[
            ("../../../g", "http://a/g"),
            ("../../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            (".g", "http://a/b/c/.g"),
            ("g..", "http://a/b/c/g.."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
            ("g;x=1/../y", "http://a/b/c/y"),
            ("g?y/./x", "http://a/b/c/g?y/./x"),
            ("g?y/../x", "http://a/b/c/g?y/../x"),
            ("g#s/./x", "http://a/b/c/g#s/./x"),
            ("g#s/../x", "http://a/b/c/g#s/../x"),
            ("http:g", "http:g"),
        ]);
    }

    #[test]
    fn resolve_base_without_path() {
        assert_eq!(resolve("g", "http://a").as_deref(), Some("http://a/g"));
    }

    #[test]
    fn resolve_keeps_encoding_and_case() {
        let resolved = resolve("X/%2f/Y('A%2FB')", "HTTPS://Host.Example/Base/Items");
        assert_eq!(
            resolved.as_deref(),
            Some("HTTPS://Host.Example/Base/X/%2f/Y('A%2FB')")
        );
    }

    #[test]
    fn resolve_relative_base_fails() {
        assert_eq!(resolve("g", "/b/c"), None);
    }

    #[test]
    fn parse_splits_components() {
        let parsed = UriReference::parse("https://h:8443/p/q?x=1#f");
        assert_eq!(parsed.scheme, Some("https"));
        assert_eq!(parsed.authority, Some("h:8443"));
        assert_eq!(parsed.path, "/p/q");
        assert_eq!(parsed.query, Some("x=1"));
        assert_eq!(parsed.fragment, Some("f"));
    }

    #[test]
    fn parse_rejects_invalid_scheme() {
        let parsed = UriReference::parse("Items(Key='a:b')");
        assert_eq!(parsed.scheme, None);
        assert_eq!(parsed.path, "Items(Key='a:b')");
    }

    #[test]
    fn parse_network_path_reference() {
        let parsed = UriReference::parse("//host/x?y");
        assert_eq!(parsed.scheme, None);
        assert_eq!(parsed.authority, Some("host"));
        assert_eq!(parsed.path, "/x");
        assert_eq!(parsed.query, Some("y"));
    }
}
