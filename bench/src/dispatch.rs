//! Dispatch round trip: from calling `Dispatch` to the order arriving on the
//! unit's `ReceiveOrders` stream. A pool of available units keeps their order
//! streams open (as terminals do); each round creates an incident next to one
//! of them, dispatches it, waits for its order, then closes the incident, which
//! frees the unit for a later round (its stream then carries the order again as
//! RELEASED, which the timing ignores).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use patrol_proto::v1 as pb;
use pb::incident_service_client::IncidentServiceClient;
use tokio::sync::mpsc;
use tonic::transport::Channel;

use crate::city::SimUnit;
use crate::load::unit_client;
use crate::report::Latencies;

/// Units whose order streams stay open.
pub const POOL: usize = 16;

/// Latencies of the whole round trip and of the `Dispatch` call alone.
#[derive(Debug, Clone, Default)]
pub struct DispatchOutcome {
    pub round_trip: Latencies,
    pub rpc: Latencies,
}

struct Arrival {
    unit: usize,
    incident_id: String,
    at: Instant,
}

/// Runs `rounds` dispatches (plus one unrecorded warm-up per pooled unit).
pub async fn run(channel: &Channel, units: &[SimUnit], rounds: usize) -> Result<DispatchOutcome> {
    let pool: Vec<&SimUnit> = units.iter().filter(|u| !u.busy).take(POOL).collect();
    if pool.is_empty() {
        bail!("no available units to dispatch");
    }
    let (tx, mut rx) = mpsc::channel::<Arrival>(1024);
    let mut readers = Vec::new();
    for (i, u) in pool.iter().enumerate() {
        let mut client = unit_client(channel);
        let mut stream = client
            .receive_orders(pb::ReceiveOrdersRequest {
                unit_id: u.id.clone(),
            })
            .await
            .with_context(|| format!("ReceiveOrders for {}", u.id))?
            .into_inner();
        let tx = tx.clone();
        readers.push(tokio::spawn(async move {
            while let Ok(Some(order)) = stream.message().await {
                // A RELEASED order (the unit freed) is not a dispatch.
                if order.state == pb::OrderState::Released as i32 {
                    continue;
                }
                let arrival = Arrival {
                    unit: i,
                    incident_id: order.incident_id,
                    at: Instant::now(),
                };
                if tx.send(arrival).await.is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let mut incidents = IncidentServiceClient::new(channel.clone());
    let mut out = DispatchOutcome::default();
    let warmup = pool.len();
    for round in 0..warmup + rounds {
        let slot = round % pool.len();
        let unit = pool[slot];
        let incident = incidents
            .create_incident(pb::CreateIncidentRequest {
                request_id: Default::default(),
                r#type: "theft".into(),
                priority: 2,
                location: Some(pb::LonLat {
                    lon: unit.lon + 0.001,
                    lat: unit.lat,
                }),
                source: pb::IncidentSource::Call as i32,
                description: format!("bench round {round}"),
            })
            .await
            .context("CreateIncident")?
            .into_inner()
            .incident
            .ok_or_else(|| anyhow!("CreateIncident returned no incident"))?;
        let start = Instant::now();
        incidents
            .dispatch(pb::DispatchRequest {
                request_id: Default::default(),
                incident_id: incident.id.clone(),
                unit_ids: vec![unit.id.clone()],
                note: String::new(),
                intercept: Default::default(),
            })
            .await
            .with_context(|| format!("Dispatch {} to {}", unit.id, incident.id))?;
        let rpc = start.elapsed();
        let arrived = loop {
            let a = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .map_err(|_| anyhow!("no order for {} on ReceiveOrders within 10 s", unit.id))?
                .ok_or_else(|| anyhow!("ReceiveOrders streams ended"))?;
            if a.unit == slot && a.incident_id == incident.id {
                break a.at;
            }
        };
        if round >= warmup {
            out.round_trip.record(arrived - start);
            out.rpc.record(rpc);
        }
        incidents
            .update_incident(pb::UpdateIncidentRequest {
                request_id: Default::default(),
                id: incident.id.clone(),
                status: pb::IncidentStatus::Closed as i32,
                note: "bench".into(),
            })
            .await
            .context("closing the bench incident")?;
    }
    for r in readers {
        r.abort();
    }
    Ok(out)
}
