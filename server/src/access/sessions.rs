//! Console sessions: a signed cookie `<access id>.<session id>.<expiry
//! ms>.<hex HMAC-SHA256 of the rest>`.
//!
//! Every request checks the signature, the expiry, the grant (revoked grants
//! end all their sessions) and that this session was not signed out. A
//! sign-out is stored in ClickHouse (`attest_console_sign_outs`) and every
//! server process re-reads the sign-outs of unexpired sessions every
//! `console.access_refresh`, like the grants: a signed-out cookie stops
//! working on the process that signed it out at once, and on every other
//! one within that interval. Only sessions that have not expired are kept,
//! so the list is bounded by the sign-outs of one session lifetime.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{Viewer, COOKIE};
use crate::ingest::now_ms;
use crate::keys::{random_hex, AuthError, KeyRing};
use crate::store::{AccessRow, SignOutRow, Store, StoreError};

/// Why a session cookie does not sign anyone in.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("not signed in")]
    Missing,
    #[error("the session cookie is malformed or its signature is wrong")]
    Forged,
    #[error("the session has expired")]
    Expired,
    #[error("the session was signed out")]
    SignedOut,
    #[error("the access key was revoked")]
    Revoked,
    #[error("console access cannot be checked right now")]
    Unavailable(#[source] StoreError),
}

/// The parts of a cookie whose signature checked out.
struct Signed<'a> {
    access_id: &'a str,
    session_id: &'a str,
    expires: i64,
}

/// Issues and checks session cookies.
pub struct Sessions {
    key: Vec<u8>,
    ttl: Duration,
    secure: bool,
    ring: Arc<KeyRing<AccessRow>>,
    store: Store,
    /// Session ids signed out and not yet expired, as last read (plus the
    /// ones this process signed out since).
    signed_out: RwLock<HashSet<String>>,
}

impl Sessions {
    /// `secret` empty: a random key for this process only.
    pub fn new(
        secret: &str,
        ttl: Duration,
        secure: bool,
        ring: Arc<KeyRing<AccessRow>>,
        store: Store,
    ) -> Sessions {
        let key = if secret.is_empty() {
            random_hex(32).into_bytes()
        } else {
            secret.as_bytes().to_vec()
        };
        Sessions {
            key,
            ttl,
            secure,
            ring,
            store,
            signed_out: RwLock::default(),
        }
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        // HMAC takes a key of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(payload.as_bytes());
        mac
    }

    /// A new session for `access_id`: `<access id>.<session id>.<expiry
    /// ms>.<tag>`. The session id (128 random bits) is what a sign-out ends.
    pub fn issue(&self, access_id: &str, now_ms: i64) -> String {
        let ttl = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let expires = now_ms.saturating_add(ttl);
        let payload = format!("{access_id}.{}.{expires}", random_hex(16));
        let tag: String = self
            .mac(&payload)
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{payload}.{tag}")
    }

    /// The `Set-Cookie` value that signs a browser in.
    pub fn cookie(&self, value: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            self.ttl.as_secs()
        )
    }

    /// The `Set-Cookie` value that signs a browser out.
    pub fn clear_cookie(&self) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}")
    }

    /// Checks a presented access key and returns who it signs in.
    pub async fn sign_in(&self, presented: &str) -> Result<Viewer, AuthError> {
        self.ring.verify(presented).await.map(Viewer::from_row)
    }

    /// The signed parts of a cookie value, if its signature is ours and it
    /// has not expired.
    fn verify<'a>(&self, value: &'a str, now_ms: i64) -> Result<Signed<'a>, SessionError> {
        let (payload, tag) = value.rsplit_once('.').ok_or(SessionError::Forged)?;
        let tag = decode_hex(tag).ok_or(SessionError::Forged)?;
        // Constant-time comparison inside `verify_slice`.
        self.mac(payload)
            .verify_slice(&tag)
            .map_err(|_| SessionError::Forged)?;
        let mut parts = payload.split('.');
        let (Some(access_id), Some(session_id), Some(expires), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SessionError::Forged);
        };
        let expires: i64 = expires.parse().map_err(|_| SessionError::Forged)?;
        if expires <= now_ms {
            return Err(SessionError::Expired);
        }
        Ok(Signed {
            access_id,
            session_id,
            expires,
        })
    }

    /// The viewer a cookie value signs in, checked against the current
    /// grant and the sign-outs.
    pub async fn viewer(&self, value: &str, now_ms: i64) -> Result<Viewer, SessionError> {
        let signed = self.verify(value, now_ms)?;
        if self.is_signed_out(signed.session_id) {
            return Err(SessionError::SignedOut);
        }
        match self.ring.find(signed.access_id).await {
            Ok(row) if row.revoked_at == 0 => Ok(Viewer::from_row(row)),
            Ok(_) | Err(AuthError::Revoked) => Err(SessionError::Revoked),
            Err(AuthError::Unavailable(error)) => Err(SessionError::Unavailable(error)),
            Err(_) => Err(SessionError::Forged),
        }
    }

    fn is_signed_out(&self, session_id: &str) -> bool {
        self.signed_out
            .read()
            .map_or(true, |ended| ended.contains(session_id))
    }

    /// Ends the session of a cookie value on every server process. A cookie
    /// that is forged or already expired ends nothing (there is nothing to
    /// end). Stored before it counts here, so a failure is reported rather
    /// than ending the session on this process only.
    pub async fn sign_out(&self, value: &str, now_ms: i64) -> Result<(), StoreError> {
        let Ok(signed) = self.verify(value, now_ms) else {
            return Ok(());
        };
        let row = SignOutRow {
            session_id: signed.session_id.to_owned(),
            access_id: signed.access_id.to_owned(),
            signed_out_at: now_ms,
            expires_at: signed.expires,
        };
        self.store.record_sign_out(&row).await?;
        if let Ok(mut ended) = self.signed_out.write() {
            ended.insert(row.session_id);
        }
        Ok(())
    }

    /// Re-reads the sign-outs of unexpired sessions.
    pub async fn refresh(&self) -> Result<usize, StoreError> {
        let ids = self.store.signed_out_sessions(now_ms()).await?;
        let count = ids.len();
        if let Ok(mut ended) = self.signed_out.write() {
            *ended = ids.into_iter().collect();
        }
        Ok(count)
    }

    /// [`Sessions::refresh`] every `every` until `stop`.
    pub async fn run_refresh(self: Arc<Self>, every: Duration, stop: CancellationToken) {
        crate::periodic::every(every, stop, || async {
            if let Err(error) = self.refresh().await {
                warn!(%error, "cannot re-read console sign-outs; keeping the last list");
            }
        })
        .await;
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The value of the session cookie in a `Cookie` header, if any.
pub fn session_cookie(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions_with(secret: &str) -> Sessions {
        sessions_over(secret, false)
    }

    fn sessions_over(secret: &str, secure: bool) -> Sessions {
        let store = Store::new(&crate::config::ClickHouseConfig::default());
        Sessions::new(
            secret,
            Duration::from_secs(3600),
            secure,
            Arc::new(KeyRing::new(store.clone())),
            store,
        )
    }

    #[tokio::test]
    async fn a_session_cookie_cannot_be_forged_or_extended() {
        let secret = "s".repeat(32);
        let sessions = sessions_with(&secret);
        let now = 1_795_435_200_000;
        let value = sessions.issue("0123456789abcdef", now);
        let (payload, tag) = value.rsplit_once('.').unwrap();
        let session_id = payload.split('.').nth(1).unwrap();
        assert_eq!(session_id.len(), 32, "128 random bits");

        // Each of these fails on the signature or the expiry, before any
        // lookup of the grant (which would need ClickHouse).
        let later = payload.replace(
            &(now + 3_600_000).to_string(),
            &(now + 99_999_999).to_string(),
        );
        let other = payload.replace("0123456789abcdef", "fedcba9876543210");
        let other_session = payload.replace(session_id, &"0".repeat(32));
        for (forged, why) in [
            (format!("{later}.{tag}"), "extended expiry"),
            (format!("{other}.{tag}"), "other access id"),
            (format!("{other_session}.{tag}"), "other session id"),
            (format!("{payload}.{}", "0".repeat(64)), "zero tag"),
            (format!("{payload}."), "empty tag"),
            (format!("{payload}.zz"), "not hex"),
            (payload.to_owned(), "no tag"),
            (String::new(), "empty"),
        ] {
            let result = sessions.viewer(&forged, now).await;
            assert!(
                matches!(result, Err(SessionError::Forged)),
                "{why}: {result:?}"
            );
        }
        // The same cookie under another server's key is forged too.
        let elsewhere = sessions_with(&"t".repeat(32));
        assert!(matches!(
            elsewhere.viewer(&value, now).await,
            Err(SessionError::Forged)
        ));
        assert!(matches!(
            sessions.viewer(&value, now + 3_600_000).await,
            Err(SessionError::Expired)
        ));
        // Two sign-ins of one key are two sessions.
        assert_ne!(sessions.issue("0123456789abcdef", now), value);
    }

    #[tokio::test]
    async fn a_signed_out_session_is_refused_before_the_grant_is_read() {
        let sessions = sessions_with(&"s".repeat(32));
        let now = 1_795_435_200_000;
        let value = sessions.issue("0123456789abcdef", now);
        let session_id = value.split('.').nth(1).unwrap().to_owned();
        sessions.signed_out.write().unwrap().insert(session_id);
        assert!(matches!(
            sessions.viewer(&value, now).await,
            Err(SessionError::SignedOut)
        ));
    }

    #[test]
    fn cookies_are_http_only_and_found_among_others() {
        let sessions = sessions_with("");
        let cookie = sessions.cookie("v");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        assert!(!cookie.contains("Secure"));
        assert!(sessions.clear_cookie().contains("Max-Age=0"));
        let behind_tls = sessions_over("", true);
        assert!(behind_tls.cookie("v").ends_with("; Secure"));
        assert!(behind_tls.clear_cookie().ends_with("; Secure"));
        assert_eq!(
            session_cookie("a=1; attest_session=abc.1.ff; b=2"),
            Some("abc.1.ff")
        );
        assert_eq!(session_cookie("attest_session="), None);
        assert_eq!(session_cookie("other=1"), None);
    }
}
