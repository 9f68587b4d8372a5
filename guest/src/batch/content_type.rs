//! `Content-Type` values of batch parts: the media type and the `boundary`
//! parameter (RFC 2045 section 5.1, RFC 2046 section 5.1.1).

/// Returns the `boundary` parameter of a `multipart/mixed` content type.
///
/// The media type and the parameter name match in any case, and the value
/// may be a token or a quoted string. Returns `None` for another media type,
/// and for a boundary that is missing, empty or contains a line break.
pub fn boundary(content_type: &str) -> Option<String> {
    let (media_type, parameters) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !media_type.trim().eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }

    let value = parameter(parameters, "boundary")?;
    let usable = !value.is_empty() && !value.contains(['\r', '\n']);
    usable.then_some(value)
}

/// Returns whether the media type of `content_type`, without parameters, is
/// `expected` in any case.
pub(crate) fn has_media_type(content_type: &str, expected: &str) -> bool {
    let media_type = content_type
        .split_once(';')
        .map_or(content_type, |(media_type, _)| media_type);
    media_type.trim().eq_ignore_ascii_case(expected)
}

/// Returns the value of the first parameter called `name` in a list such as
/// `; charset=utf-8; boundary="a;b"`, unquoted.
fn parameter(parameters: &str, name: &str) -> Option<String> {
    let mut rest = parameters;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            return None;
        }

        let name_end = rest.find(['=', ';']).unwrap_or(rest.len());
        let (candidate, after_name) = rest.split_at(name_end);
        let Some(after_equals) = after_name.strip_prefix('=') else {
            // A parameter without a value: skip it.
            rest = after_name;
            continue;
        };

        let after_equals = after_equals.trim_start_matches([' ', '\t']);
        let (value, after_value) = match after_equals.strip_prefix('"') {
            Some(quoted) => read_quoted_string(quoted)?,
            None => {
                let end = after_equals.find(';').unwrap_or(after_equals.len());
                let (token, after_token) = after_equals.split_at(end);
                (token.trim_end().to_owned(), after_token)
            }
        };
        if candidate.trim().eq_ignore_ascii_case(name) {
            return Some(value);
        }
        rest = after_value;
    }
}

/// Reads a quoted string after its opening quote and returns the unescaped
/// value and the text after the closing quote. Returns `None` when the
/// closing quote is missing.
fn read_quoted_string(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((index, character)) = chars.next() {
        match character {
            '"' => return Some((value, &text[index + 1..])),
            '\\' => value.push(chars.next()?.1),
            _ => value.push(character),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_plain_token() {
        assert_eq!(
            boundary("multipart/mixed;boundary=batch_123"),
            Some("batch_123".to_owned())
        );
    }

    #[test]
    fn boundary_quoted_with_separators() {
        let content_type = r#"multipart/mixed; boundary="batch; \"x\" 1""#;
        assert_eq!(boundary(content_type), Some(r#"batch; "x" 1"#.to_owned()));
    }

    #[test]
    fn boundary_name_in_any_case() {
        let content_type = "Multipart/Mixed; charset=utf-8; BOUNDARY = changeset_77162fcd ";
        assert_eq!(
            boundary(content_type),
            Some("changeset_77162fcd".to_owned())
        );
    }

    #[test]
    fn boundary_after_other_quoted_parameter() {
        let content_type = r#"multipart/mixed; note="boundary=wrong"; boundary=right"#;
        assert_eq!(boundary(content_type), Some("right".to_owned()));
    }

    #[test]
    fn boundary_after_valueless_parameter() {
        let content_type = "multipart/mixed; flag; boundary=b1";
        assert_eq!(boundary(content_type), Some("b1".to_owned()));
    }

    #[test]
    fn boundary_rejects_other_media_types() {
        assert_eq!(boundary("application/json; boundary=x"), None);
        assert_eq!(boundary("multipart/related; boundary=x"), None);
        assert_eq!(boundary("multipart/mixedx; boundary=x"), None);
    }

    #[test]
    fn boundary_rejects_missing_or_empty_values() {
        assert_eq!(boundary("multipart/mixed"), None);
        assert_eq!(boundary("multipart/mixed; boundary="), None);
        assert_eq!(boundary(r#"multipart/mixed; boundary="""#), None);
        assert_eq!(boundary(r#"multipart/mixed; boundary="open"#), None);
        assert_eq!(boundary("multipart/mixed; boundary=\"a\r\nb\""), None);
    }

    #[test]
    fn media_type_ignores_parameters_and_case() {
        assert!(has_media_type("Application/HTTP", "application/http"));
        assert!(has_media_type(
            " multipart/mixed ; boundary=x",
            "multipart/mixed"
        ));
        assert!(!has_media_type("application/https", "application/http"));
    }
}
