use std::pin::Pin;
use std::sync::Arc;

use patrol_dispatcher::error::validate_id;
use patrol_proto::shared::PingBatch;
use patrol_proto::shared::unit_service_server::UnitService;
use patrol_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::command::{Command, MAX_ITEMISED_REJECTIONS, Outcome, unexpected};
use crate::convert::{from_wire, to_wire};
use crate::hub::{Hub, ORDER_QUEUE, now_ms};
use crate::status::IntoStatus;
use crate::telemetry as m;

/// At most this many rejections are itemised in a ReportPositions reply.
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
        let req = request.into_inner();
        // Checked before it is logged, so bad input never reaches the log.
        from_wire::unit_profile(req.clone())?;
        let (unit, created) = match self.hub.execute(Command::RegisterUnit(req)).await? {
            Outcome::Unit { unit, created } => (unit, created),
            other => return Err(unexpected("RegisterUnit", &other)),
        };
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
            let count = batch.pings.len() as u64;
            if count == 0 {
                continue;
            }
            // In memory: applied now. With Redis: acknowledged only once the
            // batch is in the region's log (and applied here).
            let outcome = match self.hub.execute(Command::Pings(batch.pings)).await? {
                Outcome::Pings(outcome) => outcome,
                other => return Err(unexpected("ReportPositions", &other)),
            };
            for mut rejection in outcome.rejections {
                let reason = pb::PingRejectReason::try_from(rejection.reason).unwrap_or_default();
                metrics::counter!(m::PINGS_REJECTED, "reason" => reason.as_str_name()).increment(1);
                if reply.rejections.len() < MAX_ITEMISED_REJECTIONS {
                    rejection.index += index;
                    reply.rejections.push(rejection);
                }
            }
            index += count;
            reply.accepted += outcome.accepted;
            reply.duplicates += outcome.duplicates;
            reply.rejected += outcome.rejected;
            metrics::counter!(m::PINGS_ACCEPTED).increment(outcome.accepted);
            metrics::counter!(m::PINGS_DUPLICATE).increment(outcome.duplicates);
        }
        Ok(Response::new(reply))
    }

    async fn update_status(
        &self,
        request: Request<pb::UpdateStatusRequest>,
    ) -> Result<Response<pb::UpdateStatusResponse>, Status> {
        let req = request.into_inner();
        from_wire::unit_status("status", req.status)?;
        let unit = match self.hub.execute(Command::UpdateStatus(req)).await? {
            Outcome::Unit { unit, .. } => unit,
            other => return Err(unexpected("UpdateStatus", &other)),
        };
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
