//! Secrets at rest (provider API keys and headers) are sealed with ChaCha20-Poly1305 under
//! the server's key: `v1:` + base64(nonce ‖ ciphertext). A database dump alone reveals none.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

const VERSION: &str = "v1:";
const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn new(key: [u8; 32]) -> Sealer {
        Sealer {
            cipher: ChaCha20Poly1305::new(&Key::from(key)),
        }
    }

    /// A fresh random key.
    pub fn generate_key() -> [u8; 32] {
        ChaCha20Poly1305::generate_key(&mut OsRng).into()
    }

    pub fn seal(&self, plaintext: &str) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .expect("ChaCha20-Poly1305 encryption does not fail for in-memory input");
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        format!("{VERSION}{}", B64.encode(bytes))
    }

    /// `None` when it was not sealed with this key (or was tampered with).
    pub fn open(&self, sealed: &str) -> Option<String> {
        let bytes = B64.decode(sealed.strip_prefix(VERSION)?).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let plain = self.cipher.decrypt(&Nonce::from(nonce), ciphertext).ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let sealer = Sealer::new(Sealer::generate_key());
        let sealed = sealer.seal("sk-secret");
        assert!(!sealed.contains("sk-secret"));
        assert_ne!(sealed, sealer.seal("sk-secret"), "a fresh nonce each time");
        assert_eq!(sealer.open(&sealed).as_deref(), Some("sk-secret"));
        assert_eq!(Sealer::new(Sealer::generate_key()).open(&sealed), None);
        assert_eq!(sealer.open("v1:AAAA"), None);
    }
}
