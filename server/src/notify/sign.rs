//! How a receiver knows a delivery came from Attest: an HMAC-SHA256 of the
//! exact body bytes under the webhook's own secret, sent as
//! `X-Attest-Signature: sha256=<hex>`, beside `X-Attest-Timestamp` (epoch
//! seconds of the attempt) so a receiver can refuse stale deliveries.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "x-attest-signature";
pub const TIMESTAMP_HEADER: &str = "x-attest-timestamp";

/// `sha256=<lowercase hex of HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable_key(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + digest.len() * 2);
    out.push_str("sha256=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cold]
fn unreachable_key() -> ! {
    // hmac's `InvalidLength` is only for fixed-key MACs; HMAC has none.
    panic!("HMAC-SHA256 accepts keys of every length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rfc_4231_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn depends_on_every_byte_and_the_secret() {
        let a = signature(b"secret-one", br#"{"state":"firing"}"#);
        assert_ne!(a, signature(b"secret-two", br#"{"state":"firing"}"#));
        assert_ne!(a, signature(b"secret-one", br#"{"state":"firinG"}"#));
        assert_eq!(a.len(), "sha256=".len() + 64);
    }
}
