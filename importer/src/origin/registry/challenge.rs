//! `WWW-Authenticate` challenges, as registries send them with a 401.
//!
//! Pure parsing of RFC 7235's `scheme param=value, param="quoted value"`: a registry
//! asks for `Basic` (send the credentials) or `Bearer realm=…,service=…,scope=…` (get a
//! token from `realm` first, with the credentials if there are any). Only the first
//! challenge is read; registries send one.

/// What a registry asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Challenge {
    /// Credentials on every request.
    Basic,
    /// A token from `realm`, for `service` and `scope`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// A scheme we do not speak.
    Other(String),
}

/// Reads the challenge in a `WWW-Authenticate` header value.
pub(super) fn parse(header: &str) -> Option<Challenge> {
    let header = header.trim_start();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.is_empty() {
        return None;
    }
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => {
            let params = params(rest);
            let get = |key: &str| {
                params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v.clone())
            };
            Some(Challenge::Bearer {
                realm: get("realm")?,
                service: get("service"),
                scope: get("scope"),
            })
        }
        _ => Some(Challenge::Other(scheme.chars().take(32).collect())),
    }
}

/// `key=value` and `key="quoted \" value"` pairs separated by commas.
fn params(mut rest: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',', '\t']);
        let Some((key, after)) = rest.split_once('=') else {
            return out;
        };
        let key = key.trim().to_owned();
        let after = after.trim_start();
        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => quoted_string(quoted),
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_owned(), &after[end..])
            }
        };
        out.push((key, value));
        rest = remaining;
    }
}

/// The content of a quoted string whose opening quote is already consumed, and what
/// follows its closing quote (an unterminated string runs to the end).
fn quoted_string(text: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, &text[i + 1..]),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            c => value.push(c),
        }
    }
    (value, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_style_bearer() {
        let c = parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/ubuntu:pull".into()),
            })
        );
    }

    #[test]
    fn basic_unquoted_escaped_and_unknown() {
        assert_eq!(
            parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse(r#"bearer realm=http://t/token , scope="a\"b""#),
            Some(Challenge::Bearer {
                realm: "http://t/token".into(),
                service: None,
                scope: Some("a\"b".into()),
            })
        );
        assert_eq!(
            parse("Negotiate"),
            Some(Challenge::Other("Negotiate".into()))
        );
        assert_eq!(
            parse("Bearer service=x"),
            None,
            "a bearer challenge needs a realm"
        );
        assert_eq!(parse(""), None);
        assert!(matches!(
            parse("Bearer realm=\"unterminated"),
            Some(Challenge::Bearer { .. })
        ));
    }
}
