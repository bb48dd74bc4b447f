//! Webhooks over https: the system's root certificates, plus, per webhook,
//! the CAs of its `ca_file` (PEM) for a receiver behind a private CA. The
//! file is read and checked when the configuration is validated, so a
//! missing or broken one stops start-up naming its key; the client is
//! built from it again when the workers start.
//!
//! A failed handshake is told apart from other failures in the attempts:
//! an untrusted certificate says so, never "delivered".

use std::path::Path;

/// Most bytes read from a `ca_file`: a bundle of every public CA is about
/// 200 KiB; anything far larger is not a CA file.
const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The certificates of a PEM file, or why it cannot be used.
pub fn load_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{} cannot be read: {e}", path.display()))?
        .len();
    if size > MAX_CA_FILE_BYTES {
        return Err(format!(
            "{} is {size} bytes, more than a CA file holds (at most {MAX_CA_FILE_BYTES})",
            path.display()
        ));
    }
    let pem = std::fs::read(path).map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
    // reqwest parses lazily in places; an empty or PEM-less file would
    // silently add nothing, so the blocks are counted first.
    let blocks = String::from_utf8_lossy(&pem)
        .matches("-----BEGIN CERTIFICATE-----")
        .count();
    if blocks == 0 {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|_| format!("{} holds a certificate that does not parse", path.display()))?;
    if certificates.len() != blocks {
        return Err(format!(
            "{} holds {blocks} PEM certificate(s) but only {} parse",
            path.display(),
            certificates.len()
        ));
    }
    Ok(certificates)
}

/// The HTTP client of one webhook: shared settings, the system roots, and
/// the webhook's own CAs.
pub fn client(
    timeout: std::time::Duration,
    ca_file: Option<&Path>,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        // A receiver's redirect is not followed: the signature was made
        // for this receiver.
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = ca_file {
        for certificate in load_ca_file(path)? {
            builder = builder.add_root_certificate(certificate);
        }
    }
    // A certificate whose DER is not one is refused only here, when the
    // roots are built.
    builder.build().map_err(|e| match ca_file {
        Some(path) => format!("{} cannot be used as roots: {e}", path.display()),
        None => format!("the HTTP client cannot be built: {e}"),
    })
}

/// Checks a webhook's `ca_file` as the workers will use it.
pub fn check_ca_file(path: &Path) -> Result<(), String> {
    client(std::time::Duration::from_secs(1), Some(path)).map(|_| ())
}

/// What went wrong with the TLS handshake, if that is what failed: the
/// text of the innermost error that names a certificate. Only the sources
/// are read, never reqwest's own text, which holds the URL (a credential
/// for chat webhooks).
pub fn certificate_problem(error: &reqwest::Error) -> Option<String> {
    let mut found = None;
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        let text = inner.to_string();
        if text.to_ascii_lowercase().contains("certificate") && !text.contains("://") {
            found = Some(text);
        }
        source = inner.source();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_certificates_that_parse() {
        let dir = std::env::temp_dir().join(format!("attest-ca-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        assert!(load_ca_file(&missing)
            .unwrap_err()
            .contains("cannot be read"));
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        assert!(load_ca_file(&empty)
            .unwrap_err()
            .contains("no PEM certificate"));
        let broken = dir.join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(check_ca_file(&broken).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
