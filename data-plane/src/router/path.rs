//! Request path normalisation, done once before routing: the normalised path
//! is both what routers match and what is forwarded upstream, so a rule such
//! as ``PathPrefix(`/public`)`` cannot be bypassed with `/public/../admin`.
//!
//! Steps, in order:
//! 1. percent-escapes are checked: `%2F` (`/`), `%5C` (`\`) and `%00` (NUL)
//!    are rejected (they would let a path segment smuggle a separator), and so
//!    are malformed escapes;
//! 2. escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded and
//!    the hex digits of the others are upper-cased;
//! 3. duplicate slashes are collapsed and dot-segments (`.`, `..`, including
//!    the decoded `%2e`) are resolved; `..` never climbs above the root;
//! 4. a trailing slash is kept when the request had one (as Traefik does).
//!
//! Paths that need none of this (the common case) are returned borrowed.

use std::borrow::Cow;

/// Why a request path was rejected (answered with 400 Bad Request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PathError {
    /// The path contains `%2F`, an encoded `/`.
    #[error("encoded slash (%2F) in path")]
    EncodedSlash,
    /// The path contains `%5C`, an encoded `\`.
    #[error("encoded backslash (%5C) in path")]
    EncodedBackslash,
    /// The path contains `%00`, an encoded NUL.
    #[error("encoded NUL (%00) in path")]
    EncodedNul,
    /// A `%` is not followed by two hex digits.
    #[error("malformed percent-encoding in path")]
    MalformedEscape,
}

/// Normalises `path` (see the module documentation).
pub(crate) fn normalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    if !path.starts_with('/') || is_normal(path.as_bytes()) {
        // `*` (OPTIONS) and other non-absolute forms are left to the router.
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(path)?;
    Ok(Cow::Owned(resolve_segments(&decoded)))
}

/// True when `path` has no escape, no empty segment and no dot-segment.
fn is_normal(path: &[u8]) -> bool {
    let mut previous_slash = false;
    for (i, &byte) in path.iter().enumerate() {
        match byte {
            b'%' => return false,
            b'/' if previous_slash => return false,
            b'.' if previous_slash => {
                let rest = &path[i..];
                if rest == b"."
                    || rest == b".."
                    || rest.starts_with(b"./")
                    || rest.starts_with(b"../")
                {
                    return false;
                }
            }
            _ => {}
        }
        previous_slash = byte == b'/';
    }
    true
}

/// Decodes escapes of unreserved characters and upper-cases the others.
fn decode_unreserved(path: &str) -> Result<String, PathError> {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(percent) = rest.find('%') {
        // `%` is ASCII, so slicing around it stays on character boundaries.
        out.push_str(&rest[..percent]);
        let escape = rest.as_bytes();
        let (Some(high), Some(low)) = (
            escape.get(percent + 1).copied().and_then(hex_value),
            escape.get(percent + 2).copied().and_then(hex_value),
        ) else {
            return Err(PathError::MalformedEscape);
        };
        let value = high << 4 | low;
        match value {
            b'/' => return Err(PathError::EncodedSlash),
            b'\\' => return Err(PathError::EncodedBackslash),
            0 => return Err(PathError::EncodedNul),
            _ if is_unreserved(value) => out.push(char::from(value)),
            _ => {
                out.push('%');
                out.push(char::from(HEX_UPPER[usize::from(high)]));
                out.push(char::from(HEX_UPPER[usize::from(low)]));
            }
        }
        rest = &rest[percent + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// The value of one hex digit.
pub(super) fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 unreserved characters.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Collapses empty segments and resolves `.` and `..`.
fn resolve_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || (path.ends_with('/') && !segments.is_empty()) {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(path: &str) -> String {
        normalize(path).expect("valid path").into_owned()
    }

    #[test]
    fn plain_paths_are_borrowed() {
        for path in ["/", "/api", "/api/v2/", "/a.b/c..d/.e", "/x/y.z"] {
            assert!(
                matches!(normalize(path), Ok(Cow::Borrowed(p)) if p == path),
                "{path}"
            );
        }
    }

    #[test]
    fn dot_segments_are_resolved() {
        assert_eq!(norm("/public/../admin"), "/admin");
        assert_eq!(norm("/public/./admin"), "/public/admin");
        assert_eq!(norm("/a/b/../../../../c"), "/c");
        assert_eq!(norm("/.."), "/");
        assert_eq!(norm("/a/.."), "/");
        assert_eq!(norm("/a/b/.."), "/a");
        assert_eq!(norm("/a/b/../"), "/a/");
    }

    #[test]
    fn encoded_dots_are_resolved() {
        assert_eq!(norm("/public/%2e%2e/admin"), "/admin");
        assert_eq!(norm("/public/%2E%2E/admin"), "/admin");
        assert_eq!(norm("/public/.%2e/admin"), "/admin");
        assert_eq!(norm("/public/%2e/admin"), "/public/admin");
    }

    #[test]
    fn duplicate_slashes_collapse() {
        assert_eq!(norm("//admin"), "/admin");
        assert_eq!(norm("/a//b///c"), "/a/b/c");
        assert_eq!(norm("/a/b//"), "/a/b/");
        assert_eq!(norm("//"), "/");
    }

    #[test]
    fn separators_and_nul_are_rejected() {
        assert_eq!(normalize("/a%2Fb"), Err(PathError::EncodedSlash));
        assert_eq!(normalize("/a%2fb"), Err(PathError::EncodedSlash));
        assert_eq!(normalize("/a%5Cb"), Err(PathError::EncodedBackslash));
        assert_eq!(normalize("/a%5cb"), Err(PathError::EncodedBackslash));
        assert_eq!(normalize("/a%00b"), Err(PathError::EncodedNul));
        assert_eq!(normalize("/a%zz"), Err(PathError::MalformedEscape));
        assert_eq!(normalize("/a%4"), Err(PathError::MalformedEscape));
    }

    #[test]
    fn unreserved_escapes_are_decoded_others_upper_cased() {
        assert_eq!(norm("/%61%64min"), "/admin");
        assert_eq!(norm("/%7Euser/%2D%5F"), "/~user/-_");
        assert_eq!(norm("/a%20b"), "/a%20b");
        assert_eq!(norm("/caf%c3%a9"), "/caf%C3%A9");
        assert_eq!(norm("/q%3fx"), "/q%3Fx");
    }

    #[test]
    fn non_ascii_is_kept() {
        assert_eq!(norm("/é//x"), "/é/x");
    }

    #[test]
    fn non_absolute_paths_are_left_alone() {
        assert_eq!(norm("*"), "*");
    }
}
