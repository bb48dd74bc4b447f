//! What the console asks of the browsers that use it: no state change that
//! another site started, no framing, no sniffing, no referrers, scripts only
//! from this server. One middleware over every console route, so a new page
//! or server function is covered without remembering to be.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// The policy of a rendered page. Leptos puts its hydration and resource
/// scripts inline with this request's nonce; the WASM module needs
/// `wasm-unsafe-eval` to be compiled. Inline `style` attributes (progress
/// bars, chart SVG) are allowed: styles cannot run code.
pub fn page_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Everything else (JSON, CSV, static files) runs nothing.
const DEFAULT_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Refuses state-changing requests that another site (or another port of
/// this host) made a browser send, then adds the security headers.
pub async fn guard(request: Request, next: Next) -> Response {
    let changes_state = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if changes_state && cross_site(request.headers()) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({
                "error": "forbidden",
                "message": "requests started by another site are refused"
            })),
        )
            .into_response();
    }
    let is_asset = request.uri().path().starts_with("/pkg/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(DEFAULT_POLICY));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Nothing leaves for other sites; the console's own requests keep
    // theirs (under `no-referrer` a browser posts forms with `Origin: null`).
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if is_asset {
        // The bundle's names do not change between builds, so the browser
        // revalidates (a 304 when unchanged) instead of running stale code.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    } else {
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    response
}

/// Whether a browser sent this on another site's behalf. `Sec-Fetch-Site`
/// (every current browser) says so directly and is decisive when present:
/// `same-site` counts as another site, since another port of the same host
/// is another origin. Only without it is `Origin` compared with `Host` (an
/// older browser's cross-origin post; `Origin: null` counts as foreign).
/// Requests with neither (curl, services) are not a browser being misused.
pub fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return !matches!(site, "same-origin" | "none");
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (None, _) => false,
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            !origin_host.eq_ignore_ascii_case(host)
        }
        (Some(_), None) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn requests_from_other_sites_are_told_apart() {
        assert!(!cross_site(&headers(&[("host", "127.0.0.1:3030")])));
        assert!(!cross_site(&headers(&[
            ("host", "127.0.0.1:3030"),
            ("origin", "http://127.0.0.1:3030"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(!cross_site(&headers(&[
            ("host", "Attest.example"),
            ("origin", "https://attest.example")
        ])));
        for origin in ["https://evil.example", "null", "http://127.0.0.1:3031"] {
            assert!(cross_site(&headers(&[
                ("host", "127.0.0.1:3030"),
                ("origin", origin)
            ])));
        }
        for site in ["cross-site", "same-site"] {
            assert!(cross_site(&headers(&[
                ("host", "127.0.0.1:3030"),
                ("sec-fetch-site", site)
            ])));
        }
        // A browser's own form post under a strict referrer policy: the
        // fetch metadata says same-origin, whatever `Origin` says.
        assert!(!cross_site(&headers(&[
            ("host", "127.0.0.1:3030"),
            ("origin", "null"),
            ("sec-fetch-site", "same-origin")
        ])));
    }

    #[test]
    fn the_page_policy_allows_only_this_servers_scripts() {
        let policy = page_policy("abc");
        assert!(policy.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval';"));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(!policy.contains("'unsafe-eval'"));
    }
}
