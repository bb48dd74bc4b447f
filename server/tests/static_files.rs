//! The console's bundle (WASM, JS, CSS under `/pkg`) as a browser gets it:
//! the precompressed copy the release build stores beside a file, the file
//! compressed on the fly when there is none, and a revalidation answered
//! 304 when the file has not changed (the assets are sent `no-cache`, so a
//! browser asks again on every visit; without the 304 it downloaded the
//! whole WASM each time).

mod common;

use leptos::config::LeptosOptions;
use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, IF_MODIFIED_SINCE, LAST_MODIFIED,
};

#[tokio::test]
async fn the_bundle_is_sent_precompressed_and_revalidated() {
    let site = std::env::temp_dir().join(format!("attest-test-site-{}", common::unique()));
    let pkg = site.join("pkg");
    std::fs::create_dir_all(&pkg).expect("site dir");
    let wasm = vec![0u8; 64 * 1024];
    // Not real brotli: the server must send the stored copy byte for byte,
    // never compress it again.
    let wasm_br = b"stored brotli copy".to_vec();
    std::fs::write(pkg.join("attest.wasm"), &wasm).expect("wasm");
    std::fs::write(pkg.join("attest.wasm.br"), &wasm_br).expect("wasm.br");
    std::fs::write(
        pkg.join("attest.js"),
        "export function hydrate() {}\n".repeat(200),
    )
    .expect("js");
    let leptos = LeptosOptions::builder()
        .output_name("attest")
        .site_root(site.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .build();
    let server = common::start_with(common::test_config(), leptos).await;
    let url = |path: &str| format!("{}{path}", server.base_url);

    // The stored brotli copy, as it is.
    let first = server
        .http
        .get(url("/pkg/attest.wasm"))
        .header(ACCEPT_ENCODING, "gzip, deflate, br")
        .send()
        .await
        .expect("GET wasm");
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()[CONTENT_ENCODING], "br");
    assert_eq!(first.headers()["content-type"], "application/wasm");
    assert_eq!(first.headers()[CACHE_CONTROL], "no-cache");
    let modified = first
        .headers()
        .get(LAST_MODIFIED)
        .expect("Last-Modified, for revalidation")
        .clone();
    assert_eq!(
        first.bytes().await.expect("body").as_ref(),
        wasm_br.as_slice()
    );

    // A client that accepts no compression gets the file itself.
    let plain = server
        .http
        .get(url("/pkg/attest.wasm"))
        .send()
        .await
        .expect("GET wasm without Accept-Encoding");
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get(CONTENT_ENCODING).is_none());
    assert_eq!(plain.bytes().await.expect("body").len(), wasm.len());

    // Revalidation of an unchanged file: 304, no body.
    let again = server
        .http
        .get(url("/pkg/attest.wasm"))
        .header(ACCEPT_ENCODING, "gzip, deflate, br")
        .header(IF_MODIFIED_SINCE, modified)
        .send()
        .await
        .expect("revalidate wasm");
    assert_eq!(
        again.status(),
        304,
        "an unchanged asset must be revalidated, not sent again"
    );
    assert!(again.bytes().await.expect("body").is_empty());

    // Without a stored copy the file is compressed on the fly.
    let js = server
        .http
        .get(url("/pkg/attest.js"))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .expect("GET js");
    assert_eq!(js.status(), 200);
    assert_eq!(js.headers()[CONTENT_ENCODING], "gzip");

    let missing = server
        .http
        .get(url("/pkg/nothing.js"))
        .send()
        .await
        .expect("GET missing");
    assert_eq!(missing.status(), 404);

    server.stop().await;
    let _ = std::fs::remove_dir_all(&site);
}
