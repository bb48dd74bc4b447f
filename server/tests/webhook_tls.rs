//! Webhooks over https: a local TLS receiver whose certificate is signed by
//! a CA made here (so no system root trusts it) gets one signed delivery
//! when the webhook's `ca_file` holds that CA; without the `ca_file` every
//! attempt is listed as failed with a certificate error, and nothing
//! arrives. No Kafka or ClickHouse: this is the notifier and a receiver.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::alerts_model::DeliveryAttempt;
use attest_server::config::{Config, DeliveryConfig, WebhookConfig, WebhookFormat};
use attest_server::notify::{sign, AttemptLog, Message, Notifier};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "tls-test-secret-0123456789";

/// What the receiver got: `(signature header, body)` per request.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

#[derive(Default)]
struct Attempts(Mutex<Vec<DeliveryAttempt>>);

/// The notifier's log, shared with the test.
struct Log(Arc<Attempts>);

impl AttemptLog for Log {
    fn record(&self, attempt: DeliveryAttempt) {
        self.0 .0.lock().unwrap().push(attempt);
    }
}

impl Attempts {
    fn of(&self, webhook: &str) -> Vec<DeliveryAttempt> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.webhook == webhook)
            .cloned()
            .collect()
    }
}

/// A CA's PEM, and a server certificate for 127.0.0.1 signed by it.
fn certificates() -> (String, ServerConfig) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Attest webhook test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let server_key = KeyPair::generate().expect("server key");
    let mut server = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    server
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    server
        .distinguished_name
        .push(DnType::CommonName, "webhook receiver");
    let server_cert = server
        .signed_by(&server_key, &ca_cert, &ca_key)
        .expect("server certificate");
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let tls = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .expect("server TLS config");
    (ca_cert.pem(), tls)
}

async fn hook(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> &'static str {
    let signature = headers
        .get(sign::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    received.lock().unwrap().push((signature, body.to_vec()));
    "ok"
}

/// An https receiver on a free port, until `stop`.
async fn receiver(tls: ServerConfig, received: Received, stop: CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(received);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                _ = stop.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(_) => continue,
                },
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                // A client that does not trust the certificate ends the
                // handshake: nothing is served on that connection.
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
                    .await;
            });
        }
    });
    addr
}

fn webhook(name: &str, addr: SocketAddr, ca_file: Option<std::path::PathBuf>) -> WebhookConfig {
    WebhookConfig {
        name: name.into(),
        url: format!("https://{addr}/hook"),
        secret: SECRET.into(),
        format: WebhookFormat::Json,
        ca_file,
    }
}

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_webhooks_trust_their_ca_file_and_refuse_unknown_certificates() {
    let (ca_pem, tls) = certificates();
    let dir = std::env::temp_dir().join(format!("attest-webhook-tls-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).expect("CA file");
    let stop = CancellationToken::new();
    let received = Received::default();
    let addr = receiver(tls, received.clone(), stop.clone()).await;

    // The CA file passes start-up validation as configured.
    let trusted = webhook("private-ca", addr, Some(ca_file.clone()));
    let untrusted = webhook("system-roots-only", addr, None);
    let mut config = Config::default();
    config.detections.webhooks = vec![trusted.clone(), untrusted.clone()];
    config
        .validate()
        .expect("an https webhook with a usable ca_file");

    let settings = DeliveryConfig {
        attempts: 2,
        timeout: Duration::from_secs(5),
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(100),
    };
    let attempts = Arc::new(Attempts::default());
    let metrics = Arc::new(attest_server::metrics::Metrics::new());
    let message = Message {
        subject: "alert:tls-1:firing".into(),
        json: serde_json::json!({"state": "firing", "summary": "over https"}),
        text: "[FIRING] over https".into(),
        colour: "",
    };

    // With the webhook's CA: delivered once, signed over the exact body.
    let notifier = Notifier::start(
        std::slice::from_ref(&trusted),
        &settings,
        Arc::new(Log(attempts.clone())),
        metrics.clone(),
        stop.clone(),
    );
    notifier.deliver(&message);
    wait_until("a delivered attempt", || {
        attempts
            .of("private-ca")
            .iter()
            .any(DeliveryAttempt::delivered)
    })
    .await;
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "one delivery");
    let (signature, body) = &got[0];
    assert_eq!(*signature, sign::signature(SECRET.as_bytes(), body));
    let sent: serde_json::Value = serde_json::from_slice(body).expect("JSON body");
    assert_eq!(sent, message.json);
    let tried = attempts.of("private-ca");
    assert_eq!(tried.len(), 1, "{tried:?}");
    assert_eq!(tried[0].status, 200);

    // Without it: the system roots do not know this CA; both attempts are
    // failures naming the certificate, and nothing reaches the receiver.
    let notifier = Notifier::start(
        std::slice::from_ref(&untrusted),
        &settings,
        Arc::new(Log(attempts.clone())),
        metrics,
        stop.clone(),
    );
    notifier.deliver(&message);
    wait_until("both attempts made", || {
        attempts.of("system-roots-only").len() == 2
    })
    .await;
    for attempt in attempts.of("system-roots-only") {
        assert!(!attempt.delivered(), "{attempt:?}");
        assert_eq!(attempt.status, 0, "{attempt:?}");
        assert!(
            attempt.error.contains("certificate is not trusted"),
            "{attempt:?}"
        );
        assert!(!attempt.error.contains("https://"), "no URL: {attempt:?}");
    }
    assert_eq!(received.lock().unwrap().len(), 1, "nothing more arrived");

    stop.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}
