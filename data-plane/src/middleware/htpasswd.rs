//! Password hashes of htpasswd files, as `htpasswd` and `openssl passwd`
//! write them, and their verification:
//! - `$apr1$` (Apache MD5) and `$1$` (MD5-crypt): 1000 MD5 rounds,
//!   implemented here;
//! - `$2y$`, `$2a$`, `$2b$`, `$2x$` (bcrypt), with the `bcrypt` crate;
//! - `{SHA}`: base64 of the SHA-1 of the password;
//! - `$5$` and `$6$` (SHA-256 / SHA-512 crypt, `rounds=` honoured), with the
//!   `sha-crypt` crate.
//!
//! Results are compared in constant time. Hashes are parsed once, when the
//! middleware is built; a malformed one fails the build (the error never
//! shows the hash).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use sha_crypt::{ROUNDS_DEFAULT, ROUNDS_MAX, ROUNDS_MIN, Sha256Params, Sha512Params};
use subtle::ConstantTimeEq;

/// Why a hash cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HtpasswdError {
    /// The scheme is not one this proxy verifies.
    #[error(
        "unsupported hash scheme (supported: $apr1$, $1$, $2y$/$2a$/$2b$/$2x$, {{SHA}}, $5$, $6$)"
    )]
    UnknownScheme,
    /// The hash has a known scheme but is malformed.
    #[error("malformed {0} hash")]
    Malformed(&'static str),
}

/// A parsed password hash.
#[derive(Debug)]
pub(crate) enum Hash {
    /// `$apr1$salt$digest` or `$1$salt$digest`: the whole string is compared.
    Md5Crypt {
        magic: &'static str,
        salt: String,
        full: String,
    },
    /// A bcrypt hash, verified by the `bcrypt` crate.
    Bcrypt(String),
    /// `{SHA}` + base64 of the SHA-1 digest.
    Sha1([u8; 20]),
    /// `$5$`: SHA-256 crypt.
    Sha256Crypt(ShaCrypt),
    /// `$6$`: SHA-512 crypt.
    Sha512Crypt(ShaCrypt),
}

/// The parts of a SHA-crypt hash.
#[derive(Debug)]
pub(crate) struct ShaCrypt {
    rounds: usize,
    salt: String,
    /// The encoded digest, as written.
    digest: String,
}

impl Hash {
    /// Parses a hash as written after `user:`.
    pub(crate) fn parse(text: &str) -> Result<Self, HtpasswdError> {
        if let Some(encoded) = text.strip_prefix("{SHA}") {
            let digest = STANDARD
                .decode(encoded)
                .ok()
                .and_then(|bytes| <[u8; 20]>::try_from(bytes).ok())
                .ok_or(HtpasswdError::Malformed("{SHA}"))?;
            return Ok(Self::Sha1(digest));
        }
        for (magic, name) in [("$apr1$", "$apr1$"), ("$1$", "$1$")] {
            if let Some(rest) = text.strip_prefix(magic) {
                let (salt, digest) = rest.split_once('$').ok_or(HtpasswdError::Malformed(name))?;
                if digest.len() != 22 || digest.contains('$') {
                    return Err(HtpasswdError::Malformed(name));
                }
                return Ok(Self::Md5Crypt {
                    magic,
                    salt: salt.to_owned(),
                    full: text.to_owned(),
                });
            }
        }
        if ["$2a$", "$2b$", "$2x$", "$2y$"]
            .iter()
            .any(|prefix| text.starts_with(prefix))
        {
            text.parse::<bcrypt::HashParts>()
                .map_err(|_| HtpasswdError::Malformed("bcrypt"))?;
            return Ok(Self::Bcrypt(text.to_owned()));
        }
        if let Some(rest) = text.strip_prefix("$5$") {
            return ShaCrypt::parse(rest)
                .map(Self::Sha256Crypt)
                .ok_or(HtpasswdError::Malformed("$5$"));
        }
        if let Some(rest) = text.strip_prefix("$6$") {
            return ShaCrypt::parse(rest)
                .map(Self::Sha512Crypt)
                .ok_or(HtpasswdError::Malformed("$6$"));
        }
        Err(HtpasswdError::UnknownScheme)
    }

    /// True when `password` hashes to this hash.
    pub(crate) fn verify(&self, password: &[u8]) -> bool {
        match self {
            Self::Md5Crypt { magic, salt, full } => {
                let computed = md5_crypt(password, salt.as_bytes(), magic);
                computed.as_bytes().ct_eq(full.as_bytes()).into()
            }
            Self::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            Self::Sha1(digest) => {
                let computed: [u8; 20] = sha1::Sha1::digest(password).into();
                computed.ct_eq(digest).into()
            }
            Self::Sha256Crypt(parts) => Sha256Params::new(parts.rounds)
                .ok()
                .and_then(|params| {
                    sha_crypt::sha256_crypt_b64(password, parts.salt.as_bytes(), &params).ok()
                })
                .is_some_and(|computed| computed.as_bytes().ct_eq(parts.digest.as_bytes()).into()),
            Self::Sha512Crypt(parts) => Sha512Params::new(parts.rounds)
                .ok()
                .and_then(|params| {
                    sha_crypt::sha512_crypt_b64(password, parts.salt.as_bytes(), &params).ok()
                })
                .is_some_and(|computed| computed.as_bytes().ct_eq(parts.digest.as_bytes()).into()),
        }
    }

    /// True when verifying takes long enough (bcrypt, SHA-crypt: from about
    /// a millisecond up) that it must not run on the proxy's async workers.
    pub(crate) fn is_slow(&self) -> bool {
        matches!(
            self,
            Self::Bcrypt(_) | Self::Sha256Crypt(_) | Self::Sha512Crypt(_)
        )
    }
}

impl ShaCrypt {
    /// `[rounds=N$]salt$digest`; rounds are clamped to the algorithm's range,
    /// as glibc does.
    fn parse(text: &str) -> Option<Self> {
        let (rounds, rest) = match text.strip_prefix("rounds=") {
            Some(rest) => {
                let (rounds, rest) = rest.split_once('$')?;
                let rounds: usize = rounds.parse().ok()?;
                (rounds.clamp(ROUNDS_MIN, ROUNDS_MAX), rest)
            }
            None => (ROUNDS_DEFAULT, text),
        };
        let (salt, digest) = rest.split_once('$')?;
        if digest.is_empty() || digest.contains('$') {
            return None;
        }
        Some(Self {
            rounds,
            salt: salt.to_owned(),
            digest: digest.to_owned(),
        })
    }
}

/// The crypt alphabet.
const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// MD5-crypt (Poul-Henning Kamp's, `magic` `$1$`; Apache's is the same with
/// `$apr1$`): `magic` + salt (8 bytes at most) + `$` + encoded digest.
fn md5_crypt(password: &[u8], salt: &[u8], magic: &str) -> String {
    let salt = &salt[..salt.len().min(8)];
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut context = Md5::new()
        .chain_update(password)
        .chain_update(magic.as_bytes())
        .chain_update(salt);
    for chunk in password.chunks(16) {
        context.update(&alternate[..chunk.len()]);
    }
    let mut bits = password.len();
    while bits > 0 {
        if bits & 1 == 1 {
            context.update([0u8]);
        } else {
            context.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut digest = context.finalize();
    for round in 0..1000 {
        let mut context = Md5::new();
        if round & 1 == 1 {
            context.update(password);
        } else {
            context.update(digest);
        }
        if round % 3 != 0 {
            context.update(salt);
        }
        if round % 7 != 0 {
            context.update(password);
        }
        if round & 1 == 1 {
            context.update(digest);
        } else {
            context.update(password);
        }
        digest = context.finalize();
    }
    let mut out = String::with_capacity(magic.len() + salt.len() + 23);
    out.push_str(magic);
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    let mut push = |value: u32, chars: usize| {
        let mut value = value;
        for _ in 0..chars {
            out.push(char::from(ITOA64[(value & 0x3f) as usize]));
            value >>= 6;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        push(
            u32::from(digest[a]) << 16 | u32::from(digest[b]) << 8 | u32::from(digest[c]),
            4,
        );
    }
    push(u32::from(digest[11]), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes of `secret` (and one of `p@ss:w0rd`), made with
    /// `openssl passwd -apr1 / -1 / -5 / -6`, `htpasswd -nbm`,
    /// `htpasswd -nbB -C 5` and `htpasswd -nbs`.
    const SECRET: [&str; 7] = [
        "$apr1$/stV9JQp$LyuTl06A9WFurhfodYmEx.",
        "$apr1$zSyPEMHt$5JiuZjw.wlZhca7gaNbgn1",
        "$1$y4h1fI7n$o17C4qsV6w0kB.KnJe3i71",
        "$2y$05$IT03vJ5JhPn9veh.OnZdneiwgZNjOyZboMC..UzTmtPYLfNr49w92",
        "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
        "$5$tJE9X1QoNxpsvVD2$dMEM0liXA2mZwUcNHU0Jf8NkQ0dfzvE3ZUqbjJFnLr.",
        "$6$htopiwjLgAd73jPY$fF9zbEteVvDhS9f4mBDXdNdOkEU.LZZYOL1uZMoGwjYvLC8fxqpuHOFJ/rZUcvzhER4Kqf/cREGsUS/FnyTjX.",
    ];

    #[test]
    fn every_scheme_verifies_the_right_password_only() {
        for text in SECRET {
            let hash = Hash::parse(text).unwrap();
            assert!(hash.verify(b"secret"), "{text}");
            assert!(!hash.verify(b"Secret"), "{text}");
            assert!(!hash.verify(b""), "{text}");
            assert!(!hash.verify(b"secret "), "{text}");
        }
        let bob =
            Hash::parse("$2y$05$p2HFV/M2Kh58FsxM6XSPuOQHvMKl5AvIH9tdhLtobMmkSjtwKAaGS").unwrap();
        assert!(bob.verify(b"p@ss:w0rd"));
    }

    #[test]
    fn sha_crypt_honours_rounds() {
        // From `crypt(3)` (glibc), whose salts stop at 16 characters.
        let hash = Hash::parse(
            "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
        )
        .unwrap();
        assert!(hash.verify(b"Hello world!"));
        let hash = Hash::parse(
            "$6$rounds=1000$saltstring$Zu2Vknok2/f53APfN687ADnzeNBLcsEgTwvcBHMD2./07rZQAt8vsuKVufD15dyZh.LOLB/uZKf6I3GyON4bp/",
        )
        .unwrap();
        assert!(hash.verify(b"Hello world!"));
        assert!(!hash.verify(b"Hello world"));
    }

    #[test]
    fn md5_crypt_matches_the_reference() {
        assert_eq!(
            md5_crypt(b"secret", b"/stV9JQp", "$apr1$"),
            "$apr1$/stV9JQp$LyuTl06A9WFurhfodYmEx."
        );
        // A password longer than 16 bytes takes the chunked path.
        let long = md5_crypt(b"a password longer than sixteen bytes", b"salt", "$1$");
        assert!(
            long.starts_with("$1$salt$") && long.len() == 8 + 22,
            "{long}"
        );
    }

    #[test]
    fn unusable_hashes_are_errors() {
        for (text, error) in [
            (
                "plain",
                "unsupported hash scheme (supported: $apr1$, $1$, $2y$/$2a$/$2b$/$2x$, {SHA}, $5$, $6$)",
            ),
            ("{SHA}abc", "malformed {SHA} hash"),
            ("$apr1$salt", "malformed $apr1$ hash"),
            ("$apr1$salt$short", "malformed $apr1$ hash"),
            ("$2y$05$short", "malformed bcrypt hash"),
            ("$6$rounds=x$salt$digest", "malformed $6$ hash"),
            ("$5$salt", "malformed $5$ hash"),
        ] {
            assert_eq!(Hash::parse(text).unwrap_err().to_string(), error, "{text}");
        }
    }
}
