//! OpenPGP verification of the archive's `InRelease` (or `Release` +
//! `Release.gpg`) against a keyring: the root of the hash chain.
//!
//! The keyring is, in order: `$LINUXKIT_DEBIAN_KEYRING`; the apt source's
//! `Signed-By` when it is a file; else Debian's archive keyring,
//! `/usr/share/keyrings/debian-archive-keyring.gpg` (the
//! `debian-archive-keyring` package). Binary and ASCII-armoured keyrings
//! both work. A release file is accepted when at least one of its
//! signatures was made by a key (primary or subkey) of the keyring and
//! verifies; the text that is then parsed is the text the signature
//! covers, never the bytes around it. Key expiry and revocation are not
//! checked: the keyring file is trusted as it is, as apt's `Signed-By` is.
//!
//! Verification uses [rPGP](https://github.com/rpgp/rpgp), a pure-Rust
//! OpenPGP implementation (RSA and Ed25519 keys, as Debian uses).

use std::path::{Path, PathBuf};

use pgp::composed::{CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey};
use pgp::packet::Signature;
use pgp::types::VerifyingKey;

use super::error::{DebianError, Result};

/// The environment variable that overrides the keyring.
pub const KEYRING_ENV: &str = "LINUXKIT_DEBIAN_KEYRING";
/// Debian's archive keyring, from the `debian-archive-keyring` package.
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// The keyring to verify with: [`KEYRING_ENV`], else `signed_by` (an apt
/// source's `Signed-By`) if it names a file, else [`DEFAULT_KEYRING`].
pub fn keyring_path(signed_by: Option<&str>) -> PathBuf {
    if let Some(p) = std::env::var_os(KEYRING_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    match signed_by.map(str::trim) {
        Some(s) if s.starts_with('/') && !s.contains('\n') => PathBuf::from(s),
        _ => PathBuf::from(DEFAULT_KEYRING),
    }
}

/// Whether `sig` names `key` as its issuer and verifies over `data` with it.
fn by(sig: &Signature, key: &impl VerifyingKey, data: &[u8]) -> bool {
    let named = sig
        .issuer_key_id()
        .iter()
        .any(|i| **i == key.legacy_key_id())
        || sig
            .issuer_fingerprint()
            .iter()
            .any(|f| **f == key.fingerprint());
    named && sig.verify(key, data).is_ok()
}

/// The public keys of a keyring file.
#[derive(Debug)]
pub struct Keyring {
    path: PathBuf,
    keys: Vec<SignedPublicKey>,
}

fn bad(what: &str, keyring: &Path, reason: impl Into<String>) -> DebianError {
    DebianError::BadSignature {
        what: what.to_owned(),
        keyring: keyring.to_owned(),
        keyring_env: KEYRING_ENV,
        reason: reason.into(),
    }
}

impl Keyring {
    /// Reads the keys of `path` (binary or armoured).
    pub fn load(path: &Path) -> Result<Keyring> {
        let data = std::fs::read(path).map_err(|e| DebianError::Keyring {
            path: path.to_owned(),
            reason: format!(
                "cannot read it ({e}); install the debian-archive-keyring package or set {KEYRING_ENV}"
            ),
        })?;
        let keyring_err = |reason: String| DebianError::Keyring {
            path: path.to_owned(),
            reason,
        };
        let (keys, _) = SignedPublicKey::from_reader_many(&data[..])
            .map_err(|e| keyring_err(format!("not an OpenPGP keyring: {e}")))?;
        // Keys this implementation cannot read are skipped, as gpgv does.
        let keys: Vec<SignedPublicKey> = keys.filter_map(|k| k.ok()).collect();
        if keys.is_empty() {
            return Err(keyring_err("no usable public key in it".into()));
        }
        Ok(Keyring {
            path: path.to_owned(),
            keys,
        })
    }

    /// The keyring file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `sig` over `data` was made by a key of this keyring.
    fn check(&self, sig: &Signature, data: &[u8]) -> bool {
        self.keys
            .iter()
            .any(|k| by(sig, k, data) || k.public_subkeys.iter().any(|s| by(sig, s, data)))
    }

    /// Verifies a clear-signed message (`InRelease`); returns the signed
    /// text (dash-unescaped, `\n` line ends). `what` names it in errors.
    pub fn verify_cleartext(&self, text: &str, what: &str) -> Result<String> {
        let (msg, _) = CleartextSignedMessage::from_string(text)
            .map_err(|e| bad(what, &self.path, format!("not a clear-signed message: {e}")))?;
        let signed = msg.signed_text();
        if !msg
            .signatures()
            .iter()
            .any(|s| self.check(s, signed.as_bytes()))
        {
            return Err(bad(
                what,
                &self.path,
                format!(
                    "none of its {} signature(s) is a valid signature by a key of the keyring",
                    msg.signatures().len()
                ),
            ));
        }
        Ok(signed.replace("\r\n", "\n"))
    }

    /// Verifies a detached signature (`Release.gpg`) over `data`.
    pub fn verify_detached(&self, data: &[u8], signature: &[u8], what: &str) -> Result<()> {
        let (sigs, _) = DetachedSignature::from_reader_many(signature)
            .map_err(|e| bad(what, &self.path, format!("unreadable signature: {e}")))?;
        let sigs: Vec<DetachedSignature> = sigs.filter_map(|s| s.ok()).collect();
        if sigs.iter().any(|s| self.check(&s.signature, data)) {
            Ok(())
        } else {
            Err(bad(
                what,
                &self.path,
                "no valid signature by a key of the keyring",
            ))
        }
    }
}
