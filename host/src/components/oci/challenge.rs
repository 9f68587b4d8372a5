//! Parsing `WWW-Authenticate` challenges (RFC 9110, section 11.6.1) as OCI
//! registries send them: `Bearer realm="…",service="…",scope="…"` or
//! `Basic realm="…"`.

/// One authentication challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Challenge {
    /// The scheme in lower case, such as `bearer` or `basic`.
    pub scheme: String,
    /// The auth-params with names in lower case, in the order sent.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Returns the value of a parameter; `name` must be lower case.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Parses every challenge in a header value. A value may hold several
/// challenges separated by commas, and a challenge's parameters are also
/// separated by commas, so a new challenge starts at a token that is not
/// followed by `=`. Malformed text ends the parsing; the challenges read
/// until then are returned.
pub(super) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut cursor = Cursor {
        text: header,
        at: 0,
    };
    let mut challenges = Vec::new();
    loop {
        cursor.skip_separators();
        let Some(scheme) = cursor.scheme() else { break };
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
        };
        while let Some(param) = cursor.param() {
            challenge.params.push(param);
        }
        challenges.push(challenge);
    }
    challenges
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn skip_whitespace(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start_matches([' ', '\t']).len();
    }

    fn skip_separators(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start_matches([' ', '\t', ',']).len();
    }

    /// Reads a token (RFC 9110 `tchar`s).
    fn token(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)))
            .unwrap_or(rest.len());
        if end == 0 {
            return None;
        }
        self.at += end;
        Some(&rest[..end])
    }

    /// Reads a challenge's scheme: a token that is not the name of a
    /// parameter. Leaves the cursor where it was otherwise.
    fn scheme(&mut self) -> Option<&'a str> {
        let start = self.at;
        let scheme = self.token()?;
        if self.rest().trim_start_matches([' ', '\t']).starts_with('=') {
            self.at = start;
            return None;
        }
        Some(scheme)
    }

    /// Reads `name=value` and the comma before it. Leaves the cursor where
    /// it was when the next text is not a parameter.
    fn param(&mut self) -> Option<(String, String)> {
        let start = self.at;
        self.skip_separators();
        let parsed = self.name_and_value();
        if parsed.is_none() {
            self.at = start;
        }
        parsed
    }

    fn name_and_value(&mut self) -> Option<(String, String)> {
        let name = self.token()?;
        self.skip_whitespace();
        self.rest().strip_prefix('=')?;
        self.at += 1;
        self.skip_whitespace();
        let value = if self.rest().starts_with('"') {
            self.quoted_string()?
        } else {
            self.token()?.to_owned()
        };
        Some((name.to_ascii_lowercase(), value))
    }

    /// Reads a quoted string, undoing backslash escapes.
    fn quoted_string(&mut self) -> Option<String> {
        let mut value = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((index, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += index + 1;
                    return Some(value);
                }
                '\\' => value.push(chars.next()?.1),
                _ => value.push(c),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(challenge: &Challenge) -> Vec<(&str, &str)> {
        challenge
            .params
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect()
    }

    #[test]
    fn bearer_challenge_with_scope() {
        let challenges = parse_challenges(
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:acme/gateway:pull""#,
        );
        assert_eq!(challenges.len(), 1);
        assert_eq!(challenges[0].scheme, "bearer");
        assert_eq!(
            params(&challenges[0]),
            [
                ("realm", "https://ghcr.io/token"),
                ("service", "ghcr.io"),
                ("scope", "repository:acme/gateway:pull"),
            ]
        );
    }

    #[test]
    fn comma_inside_quoted_scope() {
        let challenges = parse_challenges(
            r#"Bearer realm="https://auth.example/token", scope="repository:a:pull,push""#,
        );
        assert_eq!(challenges.len(), 1);
        assert_eq!(challenges[0].param("scope"), Some("repository:a:pull,push"));
    }

    #[test]
    fn basic_challenge() {
        let challenges = parse_challenges(r#"Basic realm="Registry Realm""#);
        assert_eq!(challenges.len(), 1);
        assert_eq!(challenges[0].scheme, "basic");
        assert_eq!(challenges[0].param("realm"), Some("Registry Realm"));
    }

    #[test]
    fn several_challenges_in_one_value() {
        let challenges = parse_challenges(
            r#"Basic realm="r1", BEARER Realm="https://auth.example/token",service=registry"#,
        );
        assert_eq!(challenges.len(), 2);
        assert_eq!(challenges[0].scheme, "basic");
        assert_eq!(challenges[0].param("realm"), Some("r1"));
        assert_eq!(challenges[1].scheme, "bearer");
        assert_eq!(
            challenges[1].param("realm"),
            Some("https://auth.example/token")
        );
        assert_eq!(challenges[1].param("service"), Some("registry"));
    }

    #[test]
    fn escapes_in_quoted_string() {
        let challenges = parse_challenges(r#"Basic realm="a \"quoted\" \\ realm""#);
        assert_eq!(challenges[0].param("realm"), Some(r#"a "quoted" \ realm"#));
    }

    #[test]
    fn scheme_without_params() {
        let challenges = parse_challenges("Negotiate");
        assert_eq!(challenges.len(), 1);
        assert_eq!(challenges[0].scheme, "negotiate");
        assert!(challenges[0].params.is_empty());
    }

    #[test]
    fn malformed_input_stops_parsing() {
        assert!(parse_challenges("").is_empty());
        assert!(parse_challenges("   ").is_empty());
        let unterminated = parse_challenges(r#"Bearer realm="https://auth.example"#);
        assert_eq!(unterminated.len(), 1);
        assert_eq!(unterminated[0].param("realm"), None);
    }
}
