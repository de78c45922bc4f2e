//! Bringing a server to a known state through the public API: register the
//! city's units, send every unit's current position once, and mark the busy
//! ones busy. Many requests are in flight at once (HTTP/2 multiplexing over a
//! few connections), as a fleet gateway would do.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use patrol_proto::auth::{Authed, Bearer, authed};
use patrol_proto::v1 as pb;
use pb::unit_service_client::UnitServiceClient;
use tonic::transport::Channel;

use crate::city::SimUnit;
use crate::server::MAX_MESSAGE_BYTES;

/// Requests in flight while loading.
pub const LOAD_CONCURRENCY: usize = 256;

/// A connection the loaders ride: a plain channel, or one whose calls carry
/// a credential (the `secure` phase). Either way the loaders get the same
/// client type.
pub trait Link: Send + Sync {
    fn units(&self) -> UnitServiceClient<Authed>;
}

impl Link for Channel {
    fn units(&self) -> UnitServiceClient<Authed> {
        sized(UnitServiceClient::new(authed(
            self.clone(),
            Bearer::default(),
        )))
    }
}

impl Link for Authed {
    fn units(&self) -> UnitServiceClient<Authed> {
        sized(UnitServiceClient::new(self.clone()))
    }
}

fn sized(client: UnitServiceClient<Authed>) -> UnitServiceClient<Authed> {
    client
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

pub fn unit_client(ch: &Channel) -> UnitServiceClient<Channel> {
    UnitServiceClient::new(ch.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Unix time now, milliseconds.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Unix time now, microseconds.
pub fn unix_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Registers every unit; returns how long it took.
pub async fn register_units(channels: &[impl Link], units: &[SimUnit]) -> Result<Duration> {
    register_units_with(channels, units, LOAD_CONCURRENCY).await
}

/// [`register_units`] with at most `concurrency` requests in flight (below a
/// durable server's `redis.max_in_flight`, so loading is never refused).
pub async fn register_units_with(
    channels: &[impl Link],
    units: &[SimUnit],
    concurrency: usize,
) -> Result<Duration> {
    let start = Instant::now();
    let clients: Vec<_> = channels.iter().map(Link::units).collect();
    stream::iter(units.iter().enumerate())
        .map(|(i, u)| {
            let mut client = clients[i % clients.len()].clone();
            let req = pb::RegisterUnitRequest {
                id: u.id.clone(),
                call_sign: format!("P-{}", &u.id[5..]),
                kind: u.kind.to_proto() as i32,
                capabilities: Vec::new(),
            };
            async move {
                client
                    .register_unit(req)
                    .await
                    .with_context(|| format!("registering {}", u.id))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok(start.elapsed())
}

/// Sends every unit's current position once (fix time now), split over the
/// channels, in batches of `batch`. Fails unless every ping is accepted.
pub async fn send_positions(
    channels: &[impl Link],
    units: &mut [SimUnit],
    batch: usize,
) -> Result<Duration> {
    let start = Instant::now();
    let now = unix_ms();
    let per = units.len().div_ceil(channels.len().max(1)).max(1);
    let mut tasks = Vec::new();
    for (chunk, ch) in units.chunks_mut(per).zip(channels.iter().cycle()) {
        let requests: Vec<pb::ReportPositionsRequest> = chunk
            .chunks_mut(batch.max(1))
            .map(|b| pb::ReportPositionsRequest {
                pings: b.iter_mut().map(|u| u.ping(now)).collect(),
            })
            .collect();
        let expected = chunk.len() as u64;
        let mut client = ch.units();
        tasks.push(tokio::spawn(async move {
            let resp = client
                .report_positions(stream::iter(requests))
                .await?
                .into_inner();
            anyhow::Ok((expected, resp))
        }));
    }
    for t in tasks {
        let (expected, resp) = t.await??;
        if resp.accepted != expected {
            bail!(
                "position load: {} of {expected} pings accepted ({} duplicates, {} rejected; first rejection: {:?})",
                resp.accepted,
                resp.duplicates,
                resp.rejected,
                resp.rejections.first().map(|r| &r.message)
            );
        }
    }
    Ok(start.elapsed())
}

/// Sets every unit marked busy to BUSY.
pub async fn mark_busy(channels: &[Channel], units: &[SimUnit]) -> Result<Duration> {
    mark_busy_with(channels, units, LOAD_CONCURRENCY).await
}

/// [`mark_busy`] with at most `concurrency` requests in flight.
pub async fn mark_busy_with(
    channels: &[Channel],
    units: &[SimUnit],
    concurrency: usize,
) -> Result<Duration> {
    let start = Instant::now();
    let clients: Vec<_> = channels.iter().map(unit_client).collect();
    stream::iter(units.iter().filter(|u| u.busy).enumerate())
        .map(|(i, u)| {
            let mut client = clients[i % clients.len()].clone();
            let req = pb::UpdateStatusRequest {
                unit_id: u.id.clone(),
                status: pb::UnitStatus::Busy as i32,
            };
            async move {
                client
                    .update_status(req)
                    .await
                    .with_context(|| format!("marking {} busy", u.id))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok(start.elapsed())
}
