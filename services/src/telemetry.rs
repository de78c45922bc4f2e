//! Metrics (Prometheus text on the HTTP port's `/metrics`) and the HTTP server.
//!
//! Names are constants here so every part records the same series.

use std::sync::OnceLock;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

pub const PINGS_ACCEPTED: &str = "patrol_pings_accepted_total";
pub const PINGS_DUPLICATE: &str = "patrol_pings_duplicate_total";
pub const PINGS_REJECTED: &str = "patrol_pings_rejected_total";
pub const UNITS: &str = "patrol_units";
pub const WATCH_SUBSCRIBERS: &str = "patrol_watch_subscribers";
pub const WATCH_LAG: &str = "patrol_watch_lag_events";
pub const WATCH_RESYNCS: &str = "patrol_watch_resyncs_total";
pub const POSITIONS_PUBLISHED: &str = "patrol_positions_published_total";
pub const RECOMMEND_SECONDS: &str = "patrol_recommend_seconds";
pub const DISPATCH_SECONDS: &str = "patrol_dispatch_seconds";
pub const ORDERS_DELIVERED: &str = "patrol_orders_delivered_total";
pub const ORDERS_QUEUE_FULL: &str = "patrol_orders_queue_full_total";
pub const ALERTS: &str = "patrol_alerts_total";
pub const FRIGATE_EVENTS: &str = "patrol_frigate_events_total";
pub const REDIS_APPEND_SECONDS: &str = "patrol_redis_append_seconds";
pub const REDIS_ERRORS: &str = "patrol_redis_errors_total";
pub const REDIS_QUEUE_FULL: &str = "patrol_redis_queue_full_total";
pub const LOG_ENTRIES_APPLIED: &str = "patrol_log_entries_applied_total";
pub const CHECKPOINT_SECONDS: &str = "patrol_checkpoint_seconds";
pub const LOG_RELOADS: &str = "patrol_log_reloads_total";
pub const WATCH_SNAPSHOTS: &str = "patrol_watch_snapshots_total";
pub const MESSAGES_TOO_LARGE: &str = "patrol_messages_too_large_total";
pub const AUTH_FAILURES: &str = "patrol_auth_failures_total";
pub const AUTH_DENIED: &str = "patrol_auth_denied_total";
pub const AUTH_LOCKOUTS: &str = "patrol_auth_lockouts_total";
pub const AUTH_LOGINS: &str = "patrol_auth_logins_total";
pub const AUTH_STREAMS_ENDED: &str = "patrol_auth_streams_ended_total";
pub const RATE_LIMITED: &str = "patrol_rate_limited_total";
pub const TLS_RELOADS: &str = "patrol_tls_reloads_total";
pub const TLS_HANDSHAKE_FAILURES: &str = "patrol_tls_handshake_failures_total";
pub const AUDIT_RECORDS: &str = "patrol_audit_records_total";
pub const AUDIT_DROPPED: &str = "patrol_audit_dropped_total";
pub const AUDIT_WRITE_ERRORS: &str = "patrol_audit_write_errors_total";

/// The process-wide Prometheus recorder (installed once, shared by every server
/// in the process, e.g. several in one test binary).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let latency = [
            0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
            0.025, 0.05, 0.1, 0.25, 1.0,
        ];
        let lag = [
            0.0, 1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(WATCH_LAG.into()), &lag))
            .expect("bucket lists are non-empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "a metrics recorder was already installed; /metrics shows only this one's series"
            );
        }
        describe();
        handle
    })
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(PINGS_ACCEPTED, "pings that moved their unit");
    describe_counter!(PINGS_DUPLICATE, "pings repeating the fix already held");
    describe_counter!(PINGS_REJECTED, "pings refused, by reason");
    describe_gauge!(UNITS, "units by effective status");
    describe_gauge!(WATCH_SUBSCRIBERS, "open command-room streams");
    describe_histogram!(
        WATCH_LAG,
        "events between the log head and a subscriber's cursor when it reads"
    );
    describe_counter!(
        WATCH_RESYNCS,
        "subscribers that fell behind the history and were resynced"
    );
    describe_counter!(
        POSITIONS_PUBLISHED,
        "coalesced unit positions published to the stream"
    );
    describe_histogram!(RECOMMEND_SECONDS, Unit::Seconds, "Recommend handling time");
    describe_histogram!(DISPATCH_SECONDS, Unit::Seconds, "Dispatch handling time");
    describe_counter!(ORDERS_DELIVERED, "orders pushed to a connected terminal");
    describe_counter!(
        ORDERS_QUEUE_FULL,
        "orders not pushed because the terminal's queue was full"
    );
    describe_counter!(
        ALERTS,
        "camera alerts, by whether they opened, joined or raised no incident"
    );
    describe_counter!(
        FRIGATE_EVENTS,
        "Frigate MQTT events, by what the bridge did with them (posted, duplicate, below_score, unmapped_camera, bad_json, ...)"
    );
    describe_histogram!(
        REDIS_APPEND_SECONDS,
        Unit::Seconds,
        "time to append a change to the region's Redis log"
    );
    describe_counter!(REDIS_ERRORS, "failed Redis operations, by operation");
    describe_counter!(
        REDIS_QUEUE_FULL,
        "changes refused because too many were already waiting for Redis"
    );
    describe_counter!(
        LOG_ENTRIES_APPLIED,
        "region log entries applied on this node"
    );
    describe_histogram!(
        CHECKPOINT_SECONDS,
        Unit::Seconds,
        "time to write a checkpoint to Redis"
    );
    describe_counter!(
        LOG_RELOADS,
        "times this node fell behind the log's trim point and rebuilt from the checkpoint"
    );
    describe_counter!(
        WATCH_SNAPSHOTS,
        "snapshots sent to new or resynced subscribers, by whether one was built or shared"
    );
    describe_counter!(
        AUTH_FAILURES,
        "calls refused for their credential, by reason (missing, bad_secret, expired, revoked, locked, ...)"
    );
    describe_counter!(
        AUTH_DENIED,
        "authenticated calls refused by role or scope, by why"
    );
    describe_counter!(AUTH_LOCKOUTS, "identities locked after repeated failures");
    describe_counter!(AUTH_LOGINS, "Login calls, by outcome");
    describe_counter!(
        AUTH_STREAMS_ENDED,
        "long streams ended because their credential was revoked, expired or locked"
    );
    describe_counter!(
        MESSAGES_TOO_LARGE,
        "requests refused for exceeding limits.max_message_bytes"
    );
    describe_counter!(
        RATE_LIMITED,
        "requests and streams refused or ended by a per-caller limit or a node-wide cap, by what was limited (pings, alerts, streams, watch_subscribers, idle_streams)"
    );
    describe_counter!(
        TLS_RELOADS,
        "changed TLS files seen, by result: ok (new connections use them) or error (the previous certificate kept)"
    );
    describe_counter!(
        TLS_HANDSHAKE_FAILURES,
        "TLS handshakes that failed or timed out (tls.handshake_timeout_ms), by port and reason"
    );
    describe_counter!(
        AUDIT_RECORDS,
        "audit records kept (in memory, or written to Redis)"
    );
    describe_counter!(
        AUDIT_DROPPED,
        "audit records lost, by reason: queue_full (the Redis writer fell behind) or ring_full (the oldest in-memory record made room)"
    );
    describe_counter!(
        AUDIT_WRITE_ERRORS,
        "failed attempts to write a batch of audit records to Redis (the batch is retried)"
    );
}

/// The HTTP port's listener: plain TCP, or the TLS accept loop
/// ([`crate::tls::incoming`]) with the same certificates as gRPC.
pub(crate) enum HttpListener {
    Plain(TcpListener),
    Tls(crate::tls::TlsIncoming),
}

/// Serves `/metrics` and `/healthz` until `shutdown` resolves. Neither needs
/// a credential: monitoring reaches them with TLS alone.
pub(crate) async fn serve_http(
    listener: HttpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = prometheus();
    let app = Router::new()
        .route("/metrics", get(move || async move { handle.render() }))
        .route("/healthz", get(|| async { "ok\n" }));
    match listener {
        HttpListener::Plain(listener) => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        HttpListener::Tls(listener) => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}
