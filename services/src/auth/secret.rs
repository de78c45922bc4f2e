//! Making and checking secrets. Bearer tokens are `pt_<id>_<secret>`: the id
//! (64 random bits, hex) finds the credential, the secret (256 random bits,
//! hex) proves it; only HMAC-SHA-256(key, secret) is stored, compared in
//! constant time. Login secrets are hashed with Argon2id (the PHC string is
//! stored), since a person may choose a weak one.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use hmac::{Mac, SimpleHmac};
use sha2::Sha256;

type HmacSha256 = SimpleHmac<Sha256>;

/// Shortest login secret a person may set.
pub(crate) const MIN_LOGIN_SECRET: usize = 12;

/// `n` random bytes from the operating system, as lowercase hex.
pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    hex(&bytes)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A new credential id.
pub(crate) fn new_id() -> String {
    random_hex(8)
}

/// A new bearer token for credential `id`: (token, secret part).
pub(crate) fn new_token(id: &str) -> (String, String) {
    let secret = random_hex(32);
    (format!("pt_{id}_{secret}"), secret)
}

/// Splits a bearer token into (credential id, secret); `None` if it is not
/// one of ours.
pub(crate) fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("pt_")?;
    let (id, secret) = rest.split_once('_')?;
    let hexish = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexish(id, 16) && hexish(secret, 64)).then_some((id, secret))
}

/// The stored form of a token secret.
pub(crate) fn token_hash(key: &[u8], secret: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(secret.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Whether `secret` hashes to `stored`, in constant time.
pub(crate) fn token_matches(key: &[u8], secret: &str, stored: &[u8]) -> bool {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(secret.as_bytes());
    mac.verify_slice(stored).is_ok()
}

/// A login secret made for a person: 20 characters from an unambiguous
/// alphabet (about 100 bits).
pub(crate) fn new_login_secret() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The Argon2id PHC string of a login secret.
pub(crate) fn login_hash(secret: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the operating system's random source");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
    argon2::Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .expect("argon2 with default parameters")
        .to_string()
}

/// Whether `secret` matches the stored PHC string.
pub(crate) fn login_matches(secret: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        argon2::Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_only_their_secret_matches() {
        let id = new_id();
        let (token, secret) = new_token(&id);
        assert_eq!(parse_token(&token), Some((id.as_str(), secret.as_str())));
        let stored = token_hash(b"key", &secret);
        assert!(token_matches(b"key", &secret, &stored));
        assert!(!token_matches(b"other key", &secret, &stored));
        let (_, other) = new_token(&id);
        assert!(!token_matches(b"key", &other, &stored));
        assert_eq!(parse_token("pt_short_abc"), None);
        assert_eq!(parse_token("Bearer xyz"), None);
    }

    #[test]
    fn login_secrets_hash_with_argon2() {
        let secret = new_login_secret();
        assert_eq!(secret.len(), 20);
        let stored = login_hash(&secret);
        assert!(stored.starts_with("$argon2id$"));
        assert!(login_matches(&secret, &stored));
        assert!(!login_matches("not the secret", &stored));
        assert!(!login_matches(&secret, "garbage"));
    }
}
