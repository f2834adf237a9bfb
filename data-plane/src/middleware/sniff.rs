//! Content type detection from the first bytes of a body: Go's
//! `http.DetectContentType` (the WHATWG MIME sniffing algorithm, Go's
//! subset), which is what Traefik's `contentType` middleware turns on.

/// Bytes looked at, at most.
pub(crate) const SNIFF_LEN: usize = 512;

/// One signature of Go's table.
enum Signature {
    /// Case-insensitive HTML tag, after leading whitespace, followed by a
    /// space or `>`.
    Html(&'static [u8]),
    /// A masked pattern, optionally after leading whitespace.
    Masked {
        mask: &'static [u8],
        pattern: &'static [u8],
        skip_whitespace: bool,
        content_type: &'static str,
    },
    /// An exact prefix.
    Exact(&'static [u8], &'static str),
    /// The MP4 `ftyp` box.
    Mp4,
    /// No binary bytes after leading whitespace.
    Text,
}

const HTML: &str = "text/html; charset=utf-8";

const fn masked(
    mask: &'static [u8],
    pattern: &'static [u8],
    content_type: &'static str,
) -> Signature {
    Signature::Masked {
        mask,
        pattern,
        skip_whitespace: false,
        content_type,
    }
}

/// Go's `sniffSignatures`, in order.
const SIGNATURES: &[Signature] = &[
    Signature::Html(b"<!DOCTYPE HTML"),
    Signature::Html(b"<HTML"),
    Signature::Html(b"<HEAD"),
    Signature::Html(b"<SCRIPT"),
    Signature::Html(b"<IFRAME"),
    Signature::Html(b"<H1"),
    Signature::Html(b"<DIV"),
    Signature::Html(b"<FONT"),
    Signature::Html(b"<TABLE"),
    Signature::Html(b"<A"),
    Signature::Html(b"<STYLE"),
    Signature::Html(b"<TITLE"),
    Signature::Html(b"<B"),
    Signature::Html(b"<BODY"),
    Signature::Html(b"<BR"),
    Signature::Html(b"<P"),
    Signature::Html(b"<!--"),
    Signature::Masked {
        mask: b"\xFF\xFF\xFF\xFF\xFF",
        pattern: b"<?xml",
        skip_whitespace: true,
        content_type: "text/xml; charset=utf-8",
    },
    Signature::Exact(b"%PDF-", "application/pdf"),
    Signature::Exact(b"%!PS-Adobe-", "application/postscript"),
    masked(b"\xFF\xFF\x00\x00", b"\xFE\xFF\x00\x00", "text/plain; charset=utf-16be"),
    masked(b"\xFF\xFF\x00\x00", b"\xFF\xFE\x00\x00", "text/plain; charset=utf-16le"),
    masked(b"\xFF\xFF\xFF\x00", b"\xEF\xBB\xBF\x00", "text/plain; charset=utf-8"),
    Signature::Exact(b"\x00\x00\x01\x00", "image/x-icon"),
    Signature::Exact(b"\x00\x00\x02\x00", "image/x-icon"),
    Signature::Exact(b"BM", "image/bmp"),
    Signature::Exact(b"GIF87a", "image/gif"),
    Signature::Exact(b"GIF89a", "image/gif"),
    masked(
        b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF\xFF\xFF",
        b"RIFF\x00\x00\x00\x00WEBPVP",
        "image/webp",
    ),
    Signature::Exact(b"\x89PNG\x0D\x0A\x1A\x0A", "image/png"),
    Signature::Exact(b"\xFF\xD8\xFF", "image/jpeg"),
    masked(b"\xFF\xFF\xFF\xFF", b".snd", "audio/basic"),
    masked(
        b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF",
        b"FORM\x00\x00\x00\x00AIFF",
        "audio/aiff",
    ),
    masked(b"\xFF\xFF\xFF", b"ID3", "audio/mpeg"),
    masked(b"\xFF\xFF\xFF\xFF\xFF", b"OggS\x00", "application/ogg"),
    masked(
        b"\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF",
        b"MThd\x00\x00\x00\x06",
        "audio/midi",
    ),
    masked(
        b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF",
        b"RIFF\x00\x00\x00\x00AVI ",
        "video/avi",
    ),
    masked(
        b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF",
        b"RIFF\x00\x00\x00\x00WAVE",
        "audio/wave",
    ),
    Signature::Mp4,
    Signature::Exact(b"\x1A\x45\xDF\xA3", "video/webm"),
    masked(
        b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xFF\xFF",
        b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00LP",
        "application/vnd.ms-fontobject",
    ),
    Signature::Exact(b"\x00\x01\x00\x00", "font/ttf"),
    Signature::Exact(b"OTTO", "font/otf"),
    Signature::Exact(b"ttcf", "font/collection"),
    Signature::Exact(b"wOFF", "font/woff"),
    Signature::Exact(b"wOF2", "font/woff2"),
    Signature::Exact(b"\x1F\x8B\x08", "application/x-gzip"),
    Signature::Exact(b"PK\x03\x04", "application/zip"),
    Signature::Exact(b"Rar!\x1A\x07\x00", "application/x-rar-compressed"),
    Signature::Exact(b"Rar!\x1A\x07\x01\x00", "application/x-rar-compressed"),
    Signature::Exact(b"\x00\x61\x73\x6D", "application/wasm"),
    Signature::Text,
];

/// The content type of a body starting with `data` (`application/octet-stream`
/// when nothing matches).
pub(crate) fn detect(data: &[u8]) -> &'static str {
    let data = &data[..data.len().min(SNIFF_LEN)];
    let first_non_ws = data
        .iter()
        .position(|&b| !is_whitespace(b))
        .unwrap_or(data.len());
    SIGNATURES
        .iter()
        .find_map(|signature| signature.matches(data, first_non_ws))
        .unwrap_or("application/octet-stream")
}

fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

impl Signature {
    fn matches(&self, data: &[u8], first_non_ws: usize) -> Option<&'static str> {
        match self {
            Self::Html(tag) => {
                let data = &data[first_non_ws..];
                if data.len() < tag.len() + 1 {
                    return None;
                }
                let same = tag.iter().zip(data).all(|(&t, &d)| {
                    let d = if t.is_ascii_uppercase() { d & 0xDF } else { d };
                    t == d
                });
                (same && matches!(data[tag.len()], b' ' | b'>')).then_some(HTML)
            }
            Self::Masked {
                mask,
                pattern,
                skip_whitespace,
                content_type,
            } => {
                let data = if *skip_whitespace {
                    &data[first_non_ws..]
                } else {
                    data
                };
                if data.len() < pattern.len() {
                    return None;
                }
                pattern
                    .iter()
                    .zip(mask.iter())
                    .zip(data)
                    .all(|((&p, &m), &d)| d & m == p)
                    .then_some(content_type)
            }
            Self::Exact(prefix, content_type) => data.starts_with(prefix).then_some(content_type),
            Self::Mp4 => {
                if data.len() < 12 {
                    return None;
                }
                let box_size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
                if data.len() < box_size || !box_size.is_multiple_of(4) || &data[4..8] != b"ftyp" {
                    return None;
                }
                (8..box_size)
                    .step_by(4)
                    .filter(|&start| start != 12)
                    .any(|start| &data[start..start + 3] == b"mp4")
                    .then_some("video/mp4")
            }
            Self::Text => data[first_non_ws..]
                .iter()
                .all(|&b| !matches!(b, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F))
                .then_some("text/plain; charset=utf-8"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_detect_content_type_cases() {
        // From Go's `sniff_test.go`.
        for (data, expected) in [
            (&b""[..], "text/plain; charset=utf-8"),
            (b"\x01\x02\x03", "application/octet-stream"),
            (b"<HtMl><bOdY>blah blah blah</body></html>", HTML),
            (b"\n<html>blah", HTML),
            (b"<html>", HTML),
            (b"<htmlx", "text/plain; charset=utf-8"),
            (b"   <!DOCTYPE HTML>...", HTML),
            (b"<!-- comment -->", HTML),
            (b"\n <?xml!", "text/xml; charset=utf-8"),
            (b"%PDF-1.4", "application/pdf"),
            (b"\xFE\xFF\x00\x61", "text/plain; charset=utf-16be"),
            (b"\xEF\xBB\xBFhi", "text/plain; charset=utf-8"),
            (b"GIF89a...", "image/gif"),
            (b"\x89PNG\x0D\x0A\x1A\x0A", "image/png"),
            (b"\xFF\xD8\xFF\xE0", "image/jpeg"),
            (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
            (b"ID3\x03", "audio/mpeg"),
            (
                b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom<\x06t\xbfmdat",
                "video/mp4",
            ),
            (b"\x1F\x8B\x08\x00", "application/x-gzip"),
            (b"PK\x03\x04", "application/zip"),
            (b"wOF2", "font/woff2"),
            (b"\x00asm\x01", "application/wasm"),
            (b"{\"json\": true}", "text/plain; charset=utf-8"),
        ] {
            assert_eq!(
                detect(data),
                expected,
                "{:?}",
                String::from_utf8_lossy(data)
            );
        }
    }

    #[test]
    fn looks_at_512_bytes_at_most() {
        let mut data = vec![b'a'; SNIFF_LEN];
        data.push(0x01);
        assert_eq!(detect(&data), "text/plain; charset=utf-8");
    }
}
