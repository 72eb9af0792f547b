//! Authentication of a key-value connection with the job secret: the server sends a random
//! nonce, the client answers with HMAC-SHA256(secret, "zerorank-kvs-v1" || nonce), the
//! server checks it in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const CONTEXT: &[u8] = b"zerorank-kvs-v1";

fn mac(secret: &[u8; 32], nonce: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail for a 32-byte key.
    let mut m = <HmacSha256 as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    m.update(CONTEXT);
    m.update(nonce);
    m
}

/// A fresh random nonce, hex encoded.
pub fn new_nonce() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The client's answer to `nonce_hex`, hex encoded.
pub fn answer(secret: &[u8; 32], nonce_hex: &str) -> String {
    hex::encode(mac(secret, nonce_hex.as_bytes()).finalize().into_bytes())
}

/// Whether `answer_hex` is the right answer to `nonce_hex` (constant-time comparison).
pub fn verify(secret: &[u8; 32], nonce_hex: &str, answer_hex: &str) -> bool {
    match hex::decode(answer_hex) {
        Ok(tag) => mac(secret, nonce_hex.as_bytes()).verify_slice(&tag).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_verifies_only_with_the_right_secret() {
        let s = [7u8; 32];
        let n = new_nonce();
        let a = answer(&s, &n);
        assert!(verify(&s, &n, &a));
        assert!(!verify(&[8u8; 32], &n, &a));
        assert!(!verify(&s, &new_nonce(), &a));
        assert!(!verify(&s, &n, "zz"));
        assert!(!verify(&s, &n, ""));
    }
}
