//! The `Date` a response gets when it has none (RFC 9110 §6.6.1): formatted
//! once per second per thread, not per response.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// `date: <IMF-fixdate>\r\n`.
const LINE_LENGTH: usize = "date: Sun, 06 Nov 1994 08:49:37 GMT\r\n".len();

struct Cached {
    second: u64,
    line: [u8; LINE_LENGTH],
}

thread_local! {
    static CACHED: RefCell<Cached> = const {
        RefCell::new(Cached {
            second: u64::MAX,
            line: [0; LINE_LENGTH],
        })
    };
}

/// Calls `write` with the `date:` header line for now.
pub(crate) fn with_date_line<R>(write: impl FnOnce(&[u8]) -> R) -> R {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.second != second {
            let text = format!("date: {}\r\n", httpdate::fmt_http_date(now));
            if text.len() == LINE_LENGTH {
                cached.line.copy_from_slice(text.as_bytes());
                cached.second = second;
            }
        }
        write(&cached.line)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_an_http_date() {
        let line = with_date_line(<[u8]>::to_vec);
        let text = String::from_utf8(line).unwrap();
        let value = text
            .strip_prefix("date: ")
            .and_then(|v| v.strip_suffix("\r\n"))
            .unwrap();
        let parsed = httpdate::parse_http_date(value).unwrap();
        let drift = SystemTime::now().duration_since(parsed).unwrap();
        assert!(drift.as_secs() < 5, "{text}");
    }
}
