use std::pin::Pin;
use std::sync::Arc;

use patrol_dispatcher::PingOutcome;
use patrol_dispatcher::error::validate_id;
use patrol_proto::shared::unit_service_server::UnitService;
use patrol_proto::shared::{PingBatch, PingParseError, parse_ping};
use patrol_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::convert::{from_wire, to_wire};
use crate::hub::{Hub, ORDER_QUEUE, now_ms};
use crate::status::IntoStatus;
use crate::telemetry as m;

/// At most this many rejections are itemised in a ReportPositions reply.
const MAX_ITEMISED_REJECTIONS: usize = 1000;
/// ListUnits page sizes.
const DEFAULT_PAGE: usize = 1000;
const MAX_PAGE: usize = 10_000;

pub struct UnitApi {
    hub: Arc<Hub>,
}

impl UnitApi {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

/// Counts a rejected ping and itemises it while there is room.
fn reject(
    reply: &mut pb::ReportPositionsResponse,
    index: u64,
    unit_id: &str,
    reason: pb::PingRejectReason,
    message: String,
) {
    metrics::counter!(m::PINGS_REJECTED, "reason" => reason.as_str_name()).increment(1);
    reply.rejected += 1;
    if reply.rejections.len() < MAX_ITEMISED_REJECTIONS {
        reply.rejections.push(pb::PingRejection {
            index,
            unit_id: unit_id.chars().take(128).collect(),
            reason: reason as i32,
            message,
        });
    }
}

/// Ends the terminal's order route when its stream is dropped.
struct OrderStream {
    inner: ReceiverStream<Result<pb::DispatchOrder, Status>>,
    hub: Arc<Hub>,
    unit_id: String,
    connection: u64,
}

impl Stream for OrderStream {
    type Item = Result<pb::DispatchOrder, Status>;
    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl Drop for OrderStream {
    fn drop(&mut self) {
        self.hub.close_orders(&self.unit_id, self.connection);
    }
}

#[tonic::async_trait]
impl UnitService for UnitApi {
    async fn register_unit(
        &self,
        request: Request<pb::RegisterUnitRequest>,
    ) -> Result<Response<pb::RegisterUnitResponse>, Status> {
        let profile = from_wire::unit_profile(request.into_inner())?;
        let (unit, created) = self
            .hub
            .with_core_mut(|core, now| core.register_unit(profile, now))
            .into_status()?;
        Ok(Response::new(pb::RegisterUnitResponse {
            unit: Some(to_wire::unit(&unit)),
            created,
        }))
    }

    async fn report_positions(
        &self,
        request: Request<Streaming<PingBatch>>,
    ) -> Result<Response<pb::ReportPositionsResponse>, Status> {
        let mut stream = request.into_inner();
        let mut reply = pb::ReportPositionsResponse::default();
        let mut index: u64 = 0;
        while let Some(batch) = stream.message().await? {
            // Parse outside the lock; the views borrow the request buffer.
            let pings: Vec<_> = batch.pings.iter().map(|raw| parse_ping(raw)).collect();
            let (mut accepted, mut duplicates) = (0u64, 0u64);
            let mut rejected = Vec::new();
            {
                let mut core = self.hub.core();
                let now = now_ms();
                for (i, ping) in pings.iter().enumerate() {
                    let outcome = match ping {
                        Ok(view) => core.apply_ping(&from_wire::ping(view), now),
                        Err(_) => continue,
                    };
                    match outcome {
                        Ok(PingOutcome::Moved) => accepted += 1,
                        Ok(PingOutcome::Duplicate) => duplicates += 1,
                        Err(rejection) => rejected.push((i, rejection)),
                    }
                }
                self.hub.commit(&mut core);
            }
            // Rejections are rare: explain them after the lock is released.
            let malformed = pings
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.as_ref().err().map(|e| (i, e)));
            for (i, error) in malformed {
                let message = match error {
                    PingParseError::UnitIdNotUtf8 => "unit_id is not valid UTF-8".to_string(),
                    PingParseError::Malformed(why) => format!("not a valid Ping: {why}"),
                };
                reject(
                    &mut reply,
                    index + i as u64,
                    "",
                    pb::PingRejectReason::Malformed,
                    message,
                );
            }
            for (i, rejection) in rejected {
                let unit_id = pings[i].as_ref().map_or("", |p| p.unit_id);
                let reason = to_wire::ping_reject_reason(&rejection);
                reject(
                    &mut reply,
                    index + i as u64,
                    unit_id,
                    reason,
                    rejection.message(unit_id),
                );
            }
            reply.rejections.sort_by_key(|r| r.index);
            index += pings.len() as u64;
            reply.accepted += accepted;
            reply.duplicates += duplicates;
            metrics::counter!(m::PINGS_ACCEPTED).increment(accepted);
            metrics::counter!(m::PINGS_DUPLICATE).increment(duplicates);
        }
        Ok(Response::new(reply))
    }

    async fn update_status(
        &self,
        request: Request<pb::UpdateStatusRequest>,
    ) -> Result<Response<pb::UpdateStatusResponse>, Status> {
        let req = request.into_inner();
        let status = from_wire::unit_status("status", req.status)?;
        let unit = self
            .hub
            .with_core_mut(|core, now| core.update_unit_status(&req.unit_id, status, now))
            .into_status()?;
        Ok(Response::new(pb::UpdateStatusResponse {
            unit: Some(to_wire::unit(&unit)),
        }))
    }

    async fn get_unit(
        &self,
        request: Request<pb::GetUnitRequest>,
    ) -> Result<Response<pb::GetUnitResponse>, Status> {
        let id = request.into_inner().id;
        let unit = self.hub.core().unit(&id, now_ms()).into_status()?;
        Ok(Response::new(pb::GetUnitResponse {
            unit: Some(to_wire::unit(&unit)),
        }))
    }

    async fn list_units(
        &self,
        request: Request<pb::ListUnitsRequest>,
    ) -> Result<Response<pb::ListUnitsResponse>, Status> {
        let req = request.into_inner();
        let filter = from_wire::unit_filter(&req)?;
        let limit = match req.limit as usize {
            0 => DEFAULT_PAGE,
            n if n > MAX_PAGE => {
                return Err(Status::invalid_argument(format!(
                    "invalid limit = {n}: must be at most {MAX_PAGE}"
                )));
            }
            n => n,
        };
        let start = if req.page_token.is_empty() {
            0
        } else {
            req.page_token.parse::<usize>().map_err(|_| {
                Status::invalid_argument(format!(
                    "invalid page_token = {:?}: not a token this server issued",
                    req.page_token
                ))
            })?
        };
        let (units, next) = self.hub.core().list_units(&filter, start, limit, now_ms());
        Ok(Response::new(pb::ListUnitsResponse {
            units: units.iter().map(to_wire::unit).collect(),
            next_page_token: next.map(|n| n.to_string()).unwrap_or_default(),
        }))
    }

    type ReceiveOrdersStream =
        Pin<Box<dyn Stream<Item = Result<pb::DispatchOrder, Status>> + Send>>;

    async fn receive_orders(
        &self,
        request: Request<pb::ReceiveOrdersRequest>,
    ) -> Result<Response<Self::ReceiveOrdersStream>, Status> {
        let unit_id = request.into_inner().unit_id;
        validate_id("unit_id", &unit_id).into_status()?;
        let (tx, rx) = mpsc::channel(ORDER_QUEUE);
        let (connection, current) = self.hub.open_orders(&unit_id, tx.clone()).into_status()?;
        if let Some(order) = current {
            // The queue is new and empty: this cannot be full.
            let _ = tx.try_send(Ok(to_wire::order(&order, pb::OrderState::Active)));
        }
        drop(tx);
        Ok(Response::new(Box::pin(OrderStream {
            inner: ReceiverStream::new(rx),
            hub: self.hub.clone(),
            unit_id,
            connection,
        })))
    }
}
