//! The metrics endpoint: `/metrics` (Prometheus text) and `/healthz`.
//!
//! Anyone on the node can connect, so the endpoint bounds what a client can hold: at
//! most [`MAX_CONNECTIONS`] are served at once (one more is accepted and closed at
//! once, rather than left to queue behind clients that never speak), each must send its
//! request head within [`HEADER_READ_TIMEOUT`] (also between keep-alive requests), and
//! none lives past [`CONNECTION_LIFETIME`] (a client that never reads its answer). A
//! flood of half-open connections thus costs a bounded number of file descriptors, and
//! the daemon keeps the rest for its own work: reloading its config, importing.
//! `/healthz` answers again as soon as the flood's connections time out.
//!
//! [`Endpoint::bind`] binds at once (a taken port is an error the caller reports) and
//! serves in the background until the [`Endpoint`] is dropped; a reload that moves
//! `metrics_address` binds the new one ([`Bound`]) before stopping the old, and serves
//! it after.
//!
//! `/healthz` answers 503 with the reason when the daemon is wedged ([`Health`]).
//!
//! Not here: the metrics themselves ([`Metrics`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::health::Health;
use super::metrics::Metrics;

/// Connections served at once: a scraper or two and a few people with curl.
const MAX_CONNECTIONS: usize = 64;
/// A client sends its request head within this, or is disconnected (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a connection is kept, however it is used.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
/// After a failed `accept` (EMFILE, ENFILE), wait this long rather than spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The endpoint serving in the background; stops listening when dropped.
#[derive(Debug)]
pub struct Endpoint {
    address: SocketAddr,
    server: JoinHandle<()>,
}

impl Endpoint {
    /// Binds `address` now and serves `metrics` and `health` on it.
    pub async fn bind(
        address: SocketAddr,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> anyhow::Result<Self> {
        Ok(Bound::bind(address).await?.serve(metrics, health))
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops listening, and returns once the listener is closed.
    pub async fn stop(&mut self) {
        self.server.abort();
        // The accept task owns the listener: it is closed once the task is dropped.
        let _ = (&mut self.server).await;
    }
}

/// An address bound but not served yet: a reload binds the new address first (a taken
/// one refuses the whole config) and serves it once the old endpoint has stopped, so
/// the two never answer at once.
#[derive(Debug)]
pub struct Bound {
    listener: TcpListener,
    address: SocketAddr,
}

impl Bound {
    /// Binds `address` (connections wait in the backlog until [`serve`](Self::serve)).
    pub async fn bind(address: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("listening on {address} for metrics"))?;
        let address = listener.local_addr()?;
        Ok(Self { listener, address })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves `metrics` and `health` in the background.
    pub fn serve(self, metrics: Arc<Metrics>, health: Arc<Health>) -> Endpoint {
        let server = tokio::spawn(accept(self.listener, routes(metrics, health)));
        Endpoint {
            address: self.address,
            server,
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // Closes the listener; connections being served end on their own timeouts.
        self.server.abort();
    }
}

fn routes(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = Arc::clone(&metrics);
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        metrics.render(),
                    )
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let health = Arc::clone(&health);
                async move {
                    match health.check().await {
                        Ok(()) => (StatusCode::OK, "ok\n".to_owned()),
                        Err(problem) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("unhealthy: {problem}\n"),
                        ),
                    }
                }
            }),
        )
}

/// Accepts connections for ever, serving each in its own task while a slot is free.
async fn accept(listener: TcpListener, app: Router) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut full = false;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint cannot accept a connection");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => {
                full = false;
                tokio::spawn(serve(stream, app.clone(), slot));
            }
            Err(_) => {
                if !full {
                    tracing::warn!(
                        limit = MAX_CONNECTIONS,
                        "metrics endpoint at its connection limit; closing new connections until some end"
                    );
                }
                full = true;
                drop(stream);
            }
        }
    }
}

/// Serves one connection (HTTP/1.1, keep-alive) within its timeouts; frees `_slot`.
async fn serve(stream: TcpStream, app: Router, _slot: OwnedSemaphorePermit) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    match tokio::time::timeout(CONNECTION_LIFETIME, connection).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "metrics connection ended"),
        Err(_) => tracing::debug!("metrics connection closed at its lifetime"),
    }
}
