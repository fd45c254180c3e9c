//! The operators' listener: `/metrics` (OpenMetrics text), `/healthz` (the process runs),
//! `/readyz` (200 while serving; 503 with the reason while shutting down or while the
//! journal is lost or cannot take writes), and the live status page at `/` (see
//! [`super::status`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

use crate::journal::Health;
use crate::metrics::Metrics;

/// What the endpoints read and serve besides the metrics.
pub struct Endpoints {
    /// The journal's health (`/readyz`).
    pub health: Arc<Health>,
    /// The network HSMs, when configured (`/readyz`).
    pub hsm: Option<Arc<crate::hsm::RemoteHsm>>,
    /// Who may see the status page.
    pub access: super::status::Access,
    /// The admin routes.
    pub admin: Router,
}

/// Serves the endpoints on `listener` until `stop` turns true; from `draining` on,
/// `/readyz` answers 503.
pub async fn serve<L>(
    listener: L,
    metrics: Arc<Metrics>,
    endpoints: Endpoints,
    mut draining: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let Endpoints {
        health,
        hsm,
        access,
        admin,
    } = endpoints;
    let ready = Arc::new(AtomicBool::new(true));
    let app = {
        let r = Arc::clone(&ready);
        let declines_metrics = Arc::clone(&metrics);
        Router::new()
            .route(
                "/metrics",
                get(move || {
                    let m = Arc::clone(&metrics);
                    async move {
                        (
                            [(
                                "content-type",
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            m.encode(),
                        )
                    }
                }),
            )
            .route("/", {
                let access = access.clone();
                get(move |headers: axum::http::HeaderMap| {
                    let access = access.clone();
                    async move {
                        match access.check(&headers) {
                            Some(refused) => refused,
                            None => axum::response::Html(super::status::PAGE).into_response(),
                        }
                    }
                })
            })
            .route("/status/declines", {
                let m = declines_metrics;
                get(move |headers: axum::http::HeaderMap| {
                    let access = access.clone();
                    let m = Arc::clone(&m);
                    async move {
                        match access.check(&headers) {
                            Some(refused) => refused,
                            None => (
                                [(axum::http::header::CONTENT_TYPE, "application/json")],
                                serde_json::to_string(&m.last_declines.list())
                                    .unwrap_or_else(|_| "[]".into()),
                            )
                                .into_response(),
                        }
                    }
                })
            })
            .route("/healthz", get(|| async { "ok\n" }))
            .route(
                "/readyz",
                get(move || {
                    let r = Arc::clone(&r);
                    let health = Arc::clone(&health);
                    let hsm = hsm.clone();
                    async move {
                        if !r.load(Ordering::Relaxed) {
                            return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into());
                        }
                        let hsm_ready = hsm.as_ref().map_or(Ok(()), |h| h.ready());
                        match health.ready().and(hsm_ready) {
                            Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
                            Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
                        }
                    }
                }),
            )
    }
    .merge(admin);
    // Draining (the terminal listener closed, requests finishing): not ready, but still
    // answering, so probes see 503 rather than a refused connection until the last
    // terminal connection is gone; then `stop`.
    let shutdown = async move {
        let _ = draining.wait_for(|s| *s).await;
        ready.store(false, Ordering::Relaxed);
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "metrics listener failed");
    }
}
