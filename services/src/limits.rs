//! Per-caller limits, so a flood from one caller cannot starve the rest.
//!
//! - Rates: pings per second and PostAlert calls per second per caller, each
//!   a keyed GCRA limiter ([`governor`]); a ping batch is charged with one
//!   `check_key_n` for all its pings, not one check per ping.
//! - Streams: open ReportPositions and Watch streams per caller, and Watch
//!   subscribers on the node in total, each held by an RAII permit that lives
//!   in the handler (ReportPositions) or in the response stream tonic drops
//!   when the call ends or the client vanishes (Watch).
//!
//! Who a caller is: [`caller_key`]. The limiters remember a key only while
//! its state differs from a fresh one (about `burst / rate` seconds after its
//! last request); [`sweep`] forgets the others once a second, so memory is
//! bounded by the callers active in the last few seconds. The stream table
//! holds only callers with a stream open.
//!
//! Every refusal is a [`ServerError::RateLimited`] naming the caller and the
//! setting, counted in `patrol_rate_limited_total{what}` (by what was limited,
//! never by caller: callers are unbounded).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use patrol_dispatcher::Actor;

use crate::config::Config;
use crate::error::ServerError;
use crate::telemetry as m;

/// How often idle limiter keys are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The key a caller's limits are kept under: its identity (authenticated, or
/// until then its `x-patrol-actor`) when it has one, else its peer IP (without
/// the port: one host's connections are one caller).
pub(crate) fn caller_key(actor: &Actor) -> String {
    if !actor.identity.is_empty() {
        return actor.identity.clone();
    }
    match actor.peer.parse::<std::net::SocketAddr>() {
        Ok(addr) => addr.ip().to_string(),
        Err(_) if actor.peer.is_empty() => "(unknown peer)".to_string(),
        Err(_) => actor.peer.clone(),
    }
}

/// One rate: its limiter (none when the setting is 0) and how to name it.
struct Rate {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    per_second: u32,
    burst: u32,
    setting: &'static str,
    unit: &'static str,
    metric: &'static str,
}

impl Rate {
    fn new(
        per_second: u32,
        burst: u32,
        setting: &'static str,
        unit: &'static str,
        metric: &'static str,
    ) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self {
            limiter,
            per_second,
            burst,
            setting,
            unit,
            metric,
        }
    }

    /// Charges `n` to `caller`, all or nothing; `what` names the request in
    /// the refusal.
    fn charge(
        &self,
        caller: &str,
        n: usize,
        what: impl FnOnce() -> String,
    ) -> Result<(), ServerError> {
        let (Some(limiter), Some(cells)) = (
            &self.limiter,
            NonZeroU32::new(n.min(u32::MAX as usize) as u32),
        ) else {
            return Ok(());
        };
        // Keys are owned Strings; the lookup needs one (no borrowed form).
        let key = caller.to_string();
        let retry = match limiter.check_key_n(&key, cells) {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(not_until)) => {
                format!(
                    "; retry in {} ms",
                    not_until
                        .wait_time_from(DefaultClock::default().now())
                        .as_millis()
                        .max(1)
                )
            }
            // More at once than the burst: never fits.
            Err(_) => format!("; {n} {} at once can never pass", self.unit),
        };
        metrics::counter!(m::RATE_LIMITED, "what" => self.metric).increment(1);
        Err(ServerError::RateLimited {
            what: what(),
            caller: caller.to_string(),
            limit: format!(
                "over {} {}/s, burst {}{retry}",
                self.per_second, self.unit, self.burst
            ),
            setting: self.setting,
        })
    }

    fn keys(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }

    fn retain_recent(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// A node's limits. One per [`Hub`](crate::hub::Hub) (`hub.limits()`).
pub struct Limits {
    pings: Rate,
    alerts: Rate,
    /// Login attempts, keyed by peer IP.
    logins: Rate,
    /// Open ReportPositions + Watch streams per caller (callers with none
    /// are removed).
    streams: Mutex<HashMap<String, usize>>,
    max_streams_per_caller: usize,
    subscribers: AtomicUsize,
    max_subscribers: usize,
    idle_timeout: Option<Duration>,
}

/// What the limits hold now (for tests and operators).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitCounts {
    /// Callers the ping limiter remembers.
    pub ping_callers: usize,
    /// Callers the alert limiter remembers.
    pub alert_callers: usize,
    /// Open ReportPositions + Watch streams, all callers.
    pub streams: usize,
    /// Callers with a stream open.
    pub stream_callers: usize,
    /// Open Watch streams.
    pub watch_subscribers: usize,
}

impl Limits {
    pub(crate) fn new(config: &Config) -> Self {
        let l = &config.limits;
        Self {
            pings: Rate::new(
                l.pings_per_second_per_caller,
                l.ping_burst_per_caller,
                "limits.pings_per_second_per_caller",
                "pings",
                "pings",
            ),
            alerts: Rate::new(
                l.alerts_per_second_per_caller,
                l.alert_burst_per_caller,
                "limits.alerts_per_second_per_caller",
                "alerts",
                "alerts",
            ),
            logins: Rate::new(
                l.logins_per_second_per_peer,
                l.login_burst_per_peer,
                "limits.logins_per_second_per_peer",
                "logins",
                "logins",
            ),
            streams: Mutex::new(HashMap::new()),
            max_streams_per_caller: l.max_streams_per_caller,
            subscribers: AtomicUsize::new(0),
            max_subscribers: config.watch.max_subscribers,
            idle_timeout: (l.stream_idle_timeout_ms > 0)
                .then(|| Duration::from_millis(l.stream_idle_timeout_ms)),
        }
    }

    /// Charges a batch of `n` pings to `caller` (one check for the batch).
    pub(crate) fn charge_pings(
        &self,
        caller: &str,
        n: usize,
        what: impl FnOnce() -> String,
    ) -> Result<(), ServerError> {
        self.pings.charge(caller, n, what)
    }

    /// Charges one PostAlert to `caller`.
    pub(crate) fn charge_alert(&self, caller: &str) -> Result<(), ServerError> {
        self.alerts
            .charge(caller, 1, || "PostAlert refused".to_string())
    }

    /// Charges one Login attempt to the peer address `peer` ("ip:port").
    pub(crate) fn charge_login(&self, peer: &str) -> Result<(), ServerError> {
        let ip = peer
            .parse::<std::net::SocketAddr>()
            .map_or_else(|_| peer.to_string(), |a| a.ip().to_string());
        self.logins.charge(&ip, 1, || "Login refused".to_string())
    }

    /// How long a ReportPositions stream may stay silent (none: forever).
    pub(crate) fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// The error that ends a stream silent for the idle timeout (counted).
    pub(crate) fn idle(&self, caller: &str) -> ServerError {
        metrics::counter!(m::RATE_LIMITED, "what" => "idle_streams").increment(1);
        ServerError::RateLimited {
            what: "ReportPositions stream ended".to_string(),
            caller: caller.to_string(),
            limit: format!(
                "no message for {} ms",
                self.idle_timeout.map_or(0, |d| d.as_millis())
            ),
            setting: "limits.stream_idle_timeout_ms",
        }
    }

    /// Counts one more open stream for `caller` (`rpc` names it in a
    /// refusal) until the permit is dropped.
    pub(crate) fn open_stream(
        self: &Arc<Self>,
        caller: &str,
        rpc: &'static str,
    ) -> Result<StreamPermit, ServerError> {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let open = streams.entry(caller.to_string()).or_insert(0);
        if *open >= self.max_streams_per_caller {
            drop(streams);
            metrics::counter!(m::RATE_LIMITED, "what" => "streams").increment(1);
            return Err(ServerError::RateLimited {
                what: format!("{rpc} refused"),
                caller: caller.to_string(),
                limit: format!("{} streams already open", self.max_streams_per_caller),
                setting: "limits.max_streams_per_caller",
            });
        }
        *open += 1;
        Ok(StreamPermit {
            limits: self.clone(),
            caller: caller.to_string(),
        })
    }

    /// Admits one more Watch subscriber (node-wide cap, then `caller`'s
    /// streams) until the permit is dropped.
    pub(crate) fn open_watch(self: &Arc<Self>, caller: &str) -> Result<WatchPermit, ServerError> {
        let admitted = self
            .subscribers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_subscribers).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            metrics::counter!(m::RATE_LIMITED, "what" => "watch_subscribers").increment(1);
            return Err(ServerError::RateLimited {
                what: "Watch refused".to_string(),
                caller: caller.to_string(),
                limit: format!("command room full: {} subscribers", self.max_subscribers),
                setting: "watch.max_subscribers",
            });
        }
        let subscriber = SubscriberPermit {
            limits: self.clone(),
        };
        let stream = self.open_stream(caller, "Watch")?;
        Ok(WatchPermit {
            _stream: stream,
            _subscriber: subscriber,
        })
    }

    /// Forgets limiter keys whose state is as good as fresh.
    pub(crate) fn retain_recent(&self) {
        self.pings.retain_recent();
        self.alerts.retain_recent();
        self.logins.retain_recent();
    }

    /// What the limits hold now.
    pub fn counts(&self) -> LimitCounts {
        let streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        LimitCounts {
            ping_callers: self.pings.keys(),
            alert_callers: self.alerts.keys(),
            streams: streams.values().sum(),
            stream_callers: streams.len(),
            watch_subscribers: self.subscribers.load(Ordering::Acquire),
        }
    }
}

/// One open stream of a caller; dropping it closes the count.
pub(crate) struct StreamPermit {
    limits: Arc<Limits>,
    caller: String,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut streams = self
            .limits
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(open) = streams.get_mut(&self.caller) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                streams.remove(&self.caller);
            }
        }
    }
}

struct SubscriberPermit {
    limits: Arc<Limits>,
}

impl Drop for SubscriberPermit {
    fn drop(&mut self) {
        self.limits.subscribers.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One Watch subscriber: its place in the node-wide cap and in its caller's
/// streams.
pub(crate) struct WatchPermit {
    _stream: StreamPermit,
    _subscriber: SubscriberPermit,
}

/// Forgets idle limiter keys once a second, forever (a server ticker).
pub(crate) async fn sweep(limits: Arc<Limits>) {
    let mut interval = tokio::time::interval(SWEEP_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        limits.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn actor(identity: &str, peer: &str) -> Actor {
        Actor {
            identity: identity.into(),
            role: String::new(),
            peer: peer.into(),
            node: "n".into(),
        }
    }

    #[test]
    fn the_key_is_the_identity_else_the_peer_ip() {
        assert_eq!(caller_key(&actor("gw-1", "10.0.0.1:5000")), "gw-1");
        assert_eq!(caller_key(&actor("", "10.0.0.1:5000")), "10.0.0.1");
        assert_eq!(caller_key(&actor("", "[::1]:5000")), "::1");
        assert_eq!(caller_key(&actor("", "")), "(unknown peer)");
    }

    fn limits(edit: impl FnOnce(&mut Config)) -> Arc<Limits> {
        let mut config = Config::default();
        edit(&mut config);
        Arc::new(Limits::new(&config))
    }

    #[test]
    fn a_batch_is_one_check_and_callers_are_apart() {
        let l = limits(|c| {
            c.limits.pings_per_second_per_caller = 1;
            c.limits.ping_burst_per_caller = 10;
        });
        l.charge_pings("a", 10, String::new).unwrap();
        let err = l
            .charge_pings("a", 1, || "batch 1 refused".into())
            .unwrap_err();
        assert_eq!(
            tonic::Status::from(err.clone()).code(),
            Code::ResourceExhausted
        );
        let text = err.to_string();
        assert!(
            text.contains("\"a\"") && text.contains("limits.pings_per_second_per_caller"),
            "{text}"
        );
        // Another caller has its own burst; more than a burst never fits.
        l.charge_pings("b", 10, String::new).unwrap();
        assert!(l.charge_pings("c", 11, String::new).is_err());
        assert_eq!(l.counts().ping_callers, 2);
        // 0: no limit.
        let off = limits(|c| c.limits.pings_per_second_per_caller = 0);
        off.charge_pings("a", 1_000_000, String::new).unwrap();
        assert_eq!(off.counts().ping_callers, 0);
    }

    #[test]
    fn permits_count_until_dropped() {
        let l = limits(|c| {
            c.limits.max_streams_per_caller = 2;
            c.watch.max_subscribers = 2;
        });
        let a1 = l.open_stream("a", "ReportPositions").unwrap();
        let w1 = l.open_watch("a").unwrap();
        let err = l.open_stream("a", "ReportPositions").err().unwrap();
        assert!(
            err.to_string().contains("limits.max_streams_per_caller"),
            "{err}"
        );
        // A refused Watch holds nothing.
        assert!(l.open_watch("a").is_err());
        assert_eq!(l.counts().watch_subscribers, 1);
        let w2 = l.open_watch("b").unwrap();
        let full = l.open_watch("c").err().unwrap();
        assert!(
            full.to_string()
                .contains("command room full: 2 subscribers (watch.max_subscribers)"),
            "{full}"
        );
        assert_eq!(
            l.counts(),
            LimitCounts {
                streams: 3,
                stream_callers: 2,
                watch_subscribers: 2,
                ..Default::default()
            }
        );
        drop((a1, w1, w2));
        assert_eq!(l.counts(), LimitCounts::default());
    }
}
