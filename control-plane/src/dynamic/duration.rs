//! Durations as Traefik writes them: Go duration strings (`10s`, `1m30s`,
//! `250ms`, `1.5h`) or a bare integer meaning seconds.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A non-negative duration read from Traefik configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// Parses a Go duration string, or an integer number of seconds.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty duration".to_owned());
        }
        if let Ok(seconds) = text.parse::<u64>() {
            return Ok(Self(std::time::Duration::from_secs(seconds)));
        }
        if text == "0" {
            return Ok(Self::default());
        }
        let mut rest = text;
        let mut total = 0f64;
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| {
                    format!("duration `{text}` is missing a unit (ns, us, ms, s, m, h)")
                })?;
            let number: f64 = rest[..number_len]
                .parse()
                .map_err(|_| format!("invalid number in duration `{text}`"))?;
            rest = &rest[number_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let seconds_per_unit = match &rest[..unit_len] {
                "ns" => 1e-9,
                "us" | "µs" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                unit => {
                    return Err(format!(
                        "unknown unit `{unit}` in duration `{text}` (expected ns, us, ms, s, m or h)"
                    ));
                }
            };
            total += number * seconds_per_unit;
            rest = &rest[unit_len..];
        }
        Ok(Self(std::time::Duration::from_secs_f64(total)))
    }

    /// Whole milliseconds, for the snapshot.
    pub fn as_millis(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `10s` or `250ms`, or a number of seconds")
            }
            fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<Duration, E> {
                Ok(Duration(std::time::Duration::from_secs(seconds)))
            }
            fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<Duration, E> {
                u64::try_from(seconds)
                    .map(|s| Duration(std::time::Duration::from_secs(s)))
                    .map_err(|_| E::custom(format!("negative duration {seconds}")))
            }
            fn visit_f64<E: de::Error>(self, seconds: f64) -> Result<Duration, E> {
                std::time::Duration::try_from_secs_f64(seconds)
                    .map(Duration)
                    .map_err(|_| E::custom(format!("invalid duration {seconds}")))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
                Duration::parse(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations_and_seconds() {
        let ms = |text| Duration::parse(text).unwrap().as_millis();
        assert_eq!(ms("10s"), 10_000);
        assert_eq!(ms("250ms"), 250);
        assert_eq!(ms("1m30s"), 90_000);
        assert_eq!(ms("1.5h"), 5_400_000);
        assert_eq!(ms("42"), 42_000);
        assert_eq!(ms("0"), 0);
    }

    #[test]
    fn rejects_unknown_units_naming_the_text() {
        let error = Duration::parse("10 parsecs").unwrap_err();
        assert!(error.contains("10 parsecs"), "{error}");
        assert!(Duration::parse("10").is_ok());
        assert!(Duration::parse("ten").unwrap_err().contains("ten"));
    }
}
