//! Read routing over several ClickHouse nodes (the role chproxy plays in
//! front of a cluster): console and API queries go to a node that answers;
//! one that refuses a connection or fails its ping is taken out of rotation
//! and tried again after a back-off, and the query goes to the next.
//!
//! The routing lives in the connection layer, under the `clickhouse`
//! client: every query the store sends, whatever module builds it, goes
//! through [`Failover`], so no call site can forget it. Connections are not
//! pooled here: a pooled connection to a node marked down would be reused
//! regardless, and a fresh TCP connection per query costs little next to
//! the query. The writer does not go through this: it keeps its own node
//! (`clickhouse.url`), so its offsets and its inserts stay on one server.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::{info, warn};

use crate::backoff::Backoff;
use crate::config::redact_url;

/// How long one node may take to accept a connection before the next is
/// tried: long enough for a busy node, short enough that with every node
/// down the console says so within a few seconds.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A node out of rotation is tried again after this, doubling while it
/// keeps failing, up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The nodes, in the configured order of preference, and what is known of
/// each.
pub struct Nodes {
    nodes: Vec<Node>,
}

struct Node {
    /// `host:port`, what the connector dials.
    address: Uri,
    /// For logs and pages: the URL without credentials.
    shown: String,
    health: Mutex<Health>,
}

struct Health {
    /// `None` while in rotation.
    out_until: Option<Instant>,
    /// The one retry policy (`crate::backoff`), without jitter: one process
    /// retrying its own connection has nobody to desynchronise from.
    backoff: Backoff,
    /// Consecutive failures, to log once when a node leaves.
    failures: u32,
    last_error: Option<String>,
}

impl Default for Health {
    fn default() -> Health {
        Health {
            out_until: None,
            backoff: Backoff::new(BACKOFF_FIRST, BACKOFF_MAX).without_jitter(),
            failures: 0,
            last_error: None,
        }
    }
}

/// A node as the pipeline page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub node: String,
    pub in_rotation: bool,
    pub last_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("no ClickHouse node answers: {0}")]
pub struct AllNodesDown(String);

impl Nodes {
    /// `urls` were checked to be http(s) URLs at start-up.
    pub fn new(urls: &[String]) -> Result<Nodes, String> {
        let nodes = urls
            .iter()
            .map(|url| {
                let uri: Uri = url
                    .parse()
                    .map_err(|e| format!("{}: {e}", redact_url(url)))?;
                let authority = uri
                    .authority()
                    .ok_or_else(|| format!("{}: no host", redact_url(url)))?;
                let port = authority.port_u16().unwrap_or(8123);
                let address: Uri = format!("http://{}:{port}", authority.host())
                    .parse()
                    .map_err(|e| format!("{}: {e}", redact_url(url)))?;
                Ok(Node {
                    address,
                    shown: redact_url(url),
                    health: Mutex::new(Health::default()),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if nodes.is_empty() {
            return Err("at least one ClickHouse node is needed".into());
        }
        Ok(Nodes { nodes })
    }

    /// Indices to try, in order: nodes in rotation (or whose back-off has
    /// passed) in configured order, then the others, soonest back first, so
    /// that with every node out a query still tries rather than fails
    /// without asking.
    fn order(&self, now: Instant) -> Vec<usize> {
        let mut ready = Vec::new();
        let mut waiting = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            match lock(&node.health).out_until {
                Some(until) if until > now => waiting.push((until, i)),
                _ => ready.push(i),
            }
        }
        waiting.sort();
        ready.extend(waiting.into_iter().map(|(_, i)| i));
        ready
    }

    fn succeeded(&self, i: usize) {
        let node = &self.nodes[i];
        let mut health = lock(&node.health);
        if health.out_until.is_some() || health.failures > 0 {
            info!(node = %node.shown, "ClickHouse node answers again; back in rotation");
        }
        *health = Health::default();
    }

    fn failed(&self, i: usize, error: &str, now: Instant) {
        let node = &self.nodes[i];
        let mut health = lock(&node.health);
        health.failures = health.failures.saturating_add(1);
        let backoff = health.backoff.next_delay();
        if health.out_until.is_none() {
            warn!(node = %node.shown, %error, retry_in_s = backoff.as_secs(), "ClickHouse node out of rotation");
        }
        health.out_until = Some(now + backoff);
        health.last_error = Some(error.to_owned());
    }

    /// Records the outcome of a ping (the health loop asks every node,
    /// whether in rotation or not, so a hung node leaves rotation before a
    /// query waits on it).
    pub fn record_ping(&self, i: usize, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.succeeded(i),
            Err(error) => self.failed(i, &error, Instant::now()),
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node reads go to now: the first in [`Nodes::order`].
    pub fn serving(&self) -> usize {
        self.order(Instant::now()).first().copied().unwrap_or(0)
    }

    pub fn states(&self) -> Vec<NodeState> {
        let now = Instant::now();
        self.nodes
            .iter()
            .map(|node| {
                let health = lock(&node.health);
                NodeState {
                    node: node.shown.clone(),
                    in_rotation: health.out_until.is_none_or(|until| until <= now),
                    last_error: health.last_error.clone(),
                }
            })
            .collect()
    }
}

/// The node health is plain data; a panic while holding it cannot leave it
/// inconsistent, so a poisoned lock is used as is.
fn lock(health: &Mutex<Health>) -> std::sync::MutexGuard<'_, Health> {
    health
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The connector under the store's HTTP client: whatever the request's URI
/// says, it connects to the first node that accepts.
#[derive(Clone)]
pub struct Failover {
    nodes: Arc<Nodes>,
    tcp: HttpConnector,
}

impl Failover {
    pub fn new(nodes: Arc<Nodes>) -> Failover {
        let mut tcp = HttpConnector::new();
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        tcp.set_nodelay(true);
        Failover { nodes, tcp }
    }
}

type Connecting =
    Pin<Box<dyn Future<Output = Result<TokioIo<TcpStream>, AllNodesDown>> + Send + 'static>>;

impl tower::Service<Uri> for Failover {
    type Response = TokioIo<TcpStream>;
    type Error = AllNodesDown;
    type Future = Connecting;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _ignored: Uri) -> Self::Future {
        let (nodes, mut tcp) = (self.nodes.clone(), self.tcp.clone());
        Box::pin(async move {
            let mut tried = Vec::new();
            for i in nodes.order(Instant::now()) {
                let node = &nodes.nodes[i];
                // The connector's own timeout covers the TCP handshake; this
                // one also covers name resolution.
                let attempt = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    tower::Service::call(&mut tcp, node.address.clone()),
                )
                .await;
                let error = match attempt {
                    Ok(Ok(connection)) => {
                        nodes.succeeded(i);
                        return Ok(connection);
                    }
                    Ok(Err(error)) => error.to_string(),
                    Err(_) => format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()),
                };
                nodes.failed(i, &error, Instant::now());
                tried.push(format!("{} ({error})", node.shown));
            }
            Err(AllNodesDown(tried.join("; ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Nodes {
        let urls: Vec<String> = (0..n)
            .map(|i| format!("http://user:secret@node{i}:8123"))
            .collect();
        Nodes::new(&urls).expect("valid")
    }

    #[test]
    fn configured_order_while_all_answer() {
        assert_eq!(nodes(3).order(Instant::now()), [0, 1, 2]);
    }

    #[test]
    fn a_failed_node_goes_last_until_its_backoff_passes() {
        let n = nodes(3);
        let now = Instant::now();
        n.failed(0, "refused", now);
        assert_eq!(n.order(now), [1, 2, 0]);
        assert_eq!(n.serving(), 1);
        assert_eq!(n.order(now + BACKOFF_FIRST), [0, 1, 2]);
        n.failed(0, "refused", now);
        assert_eq!(n.order(now + BACKOFF_FIRST), [1, 2, 0], "backoff doubled");
        n.succeeded(0);
        assert_eq!(n.order(now), [0, 1, 2]);
    }

    #[test]
    fn with_every_node_out_the_soonest_back_comes_first() {
        let n = nodes(2);
        let now = Instant::now();
        n.failed(0, "refused", now);
        n.failed(0, "refused", now);
        n.failed(1, "refused", now);
        assert_eq!(n.order(now), [1, 0]);
    }

    #[test]
    fn backoff_is_capped() {
        let n = nodes(1);
        let now = Instant::now();
        for _ in 0..40 {
            n.failed(0, "refused", now);
        }
        assert_eq!(n.order(now + BACKOFF_MAX), [0]);
    }

    #[test]
    fn states_never_show_credentials() {
        let n = nodes(1);
        n.failed(0, "refused", Instant::now());
        let shown = format!("{:?}", n.states());
        assert!(!shown.contains("secret"), "{shown}");
        assert!(!n.states()[0].in_rotation);
    }
}
