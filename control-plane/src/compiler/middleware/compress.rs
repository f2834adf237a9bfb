//! `compress`: which responses are compressed, and with what.

use sluice_proto::v1 as pb;

use super::{MiddlewareError, is_token};
use crate::dynamic::CompressConfig;

/// Encodings Sluice can produce, in Traefik's default order of preference.
const ENCODINGS: [&str; 3] = ["zstd", "br", "gzip"];

pub(super) fn compress(config: &CompressConfig) -> Result<pb::Compress, MiddlewareError> {
    if !config.excluded_content_types.is_empty() && !config.included_content_types.is_empty() {
        return Err(MiddlewareError::option(
            "compress",
            "excludedContentTypes and includedContentTypes are mutually exclusive",
        ));
    }
    for (option, types) in [
        ("excludedContentTypes", &config.excluded_content_types),
        ("includedContentTypes", &config.included_content_types),
    ] {
        for (index, media_type) in types.iter().enumerate() {
            if !is_media_type(media_type) {
                return Err(MiddlewareError::value(
                    format!("compress.{option}[{index}]"),
                    media_type,
                    "invalid media type",
                ));
            }
        }
    }
    let encodings = match &config.encodings {
        None => ENCODINGS.map(str::to_owned).to_vec(),
        Some(encodings) if encodings.is_empty() => {
            return Err(MiddlewareError::option(
                "compress.encodings",
                "at least one encoding is required (zstd, br, gzip)",
            ));
        }
        Some(encodings) => {
            for (index, encoding) in encodings.iter().enumerate() {
                let option = || format!("compress.encodings[{index}]");
                if !ENCODINGS.contains(&encoding.as_str()) {
                    return Err(MiddlewareError::value(
                        option(),
                        encoding,
                        "unsupported encoding (expected zstd, br or gzip)",
                    ));
                }
                if encodings[..index].contains(encoding) {
                    return Err(MiddlewareError::value(option(), encoding, "listed twice"));
                }
            }
            encodings.clone()
        }
    };
    if !config.default_encoding.is_empty() && !encodings.contains(&config.default_encoding) {
        return Err(MiddlewareError::value(
            "compress.defaultEncoding",
            &config.default_encoding,
            format!("not one of the encodings ({})", encodings.join(", ")),
        ));
    }
    let min_response_body_bytes = match config.min_response_body_bytes {
        Some(bytes) if bytes < 0 => {
            return Err(MiddlewareError::value(
                "compress.minResponseBodyBytes",
                bytes,
                "must not be negative",
            ));
        }
        // Traefik treats 0 like an absent value.
        Some(bytes) if bytes > 0 => bytes,
        _ => 1024,
    };
    Ok(pb::Compress {
        excluded_content_types: config.excluded_content_types.clone(),
        included_content_types: config.included_content_types.clone(),
        min_response_body_bytes,
        encodings,
        default_encoding: config.default_encoding.clone(),
    })
}

/// `type/subtype` with optional `; parameters`, as Go's `mime.ParseMediaType` takes it.
fn is_media_type(text: &str) -> bool {
    let essence = text.split(';').next().unwrap_or_default().trim();
    let mut parts = essence.split('/');
    let valid = |part: Option<&str>| part.is_some_and(is_token);
    valid(parts.next()) && parts.next().is_none_or(is_token) && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{compile_yaml, error_yaml};
    use super::*;
    use sluice_proto::v1::middleware::Kind;

    #[test]
    fn compress_defaults_and_validation() {
        assert_eq!(
            compile_yaml("compress: {}").unwrap(),
            Kind::Compress(pb::Compress {
                excluded_content_types: vec![],
                included_content_types: vec![],
                min_response_body_bytes: 1024,
                encodings: vec!["zstd".to_owned(), "br".to_owned(), "gzip".to_owned()],
                default_encoding: String::new(),
            })
        );
        assert_eq!(
            compile_yaml(
                "compress: {includedContentTypes: ['text/html; charset=utf-8', application/json], \
                 minResponseBodyBytes: 2048, encodings: [gzip, br], defaultEncoding: gzip}"
            )
            .unwrap(),
            Kind::Compress(pb::Compress {
                excluded_content_types: vec![],
                included_content_types: vec![
                    "text/html; charset=utf-8".to_owned(),
                    "application/json".to_owned()
                ],
                min_response_body_bytes: 2048,
                encodings: vec!["gzip".to_owned(), "br".to_owned()],
                default_encoding: "gzip".to_owned(),
            })
        );
        assert_eq!(
            error_yaml(
                "compress: {excludedContentTypes: [text/event-stream], \
                 includedContentTypes: [text/html]}"
            ),
            "compress: excludedContentTypes and includedContentTypes are mutually exclusive"
        );
        assert_eq!(
            error_yaml("compress: {excludedContentTypes: ['text/a/b']}"),
            "compress.excludedContentTypes[0] `text/a/b`: invalid media type"
        );
        assert_eq!(
            error_yaml("compress: {encodings: [gzip, deflate]}"),
            "compress.encodings[1] `deflate`: unsupported encoding (expected zstd, br or gzip)"
        );
        assert_eq!(
            error_yaml("compress: {encodings: [gzip, gzip]}"),
            "compress.encodings[1] `gzip`: listed twice"
        );
        assert_eq!(
            error_yaml("compress: {encodings: []}"),
            "compress.encodings: at least one encoding is required (zstd, br, gzip)"
        );
        assert_eq!(
            error_yaml("compress: {encodings: [br], defaultEncoding: gzip}"),
            "compress.defaultEncoding `gzip`: not one of the encodings (br)"
        );
        assert_eq!(
            error_yaml("compress: {minResponseBodyBytes: -1}"),
            "compress.minResponseBodyBytes `-1`: must not be negative"
        );
    }

    #[test]
    fn media_types_and_tokens() {
        for valid in [
            "text/html",
            "text/html; charset=utf-8",
            "application/vnd.api+json",
            "text",
        ] {
            assert!(is_media_type(valid), "{valid}");
        }
        for invalid in ["", "text/", "/html", "text/a/b", "text html"] {
            assert!(!is_media_type(invalid), "{invalid}");
        }
    }
}
