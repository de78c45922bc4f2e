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

use super::origin;
use crate::auth;
use crate::clock::now_ms;
use crate::command::MAX_ITEMISED_REJECTIONS;
use crate::convert::{from_wire, to_wire};
use crate::error::ServerError;
use crate::hub::Hub;
use crate::limits::caller_key;
use crate::node::routes::ORDER_QUEUE;
use crate::telemetry as m;

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
    inner: auth::Lapsing<ReceiverStream<Result<pb::DispatchOrder, Status>>>,
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
        self.hub.node().close_orders(&self.unit_id, self.connection);
    }
}

#[tonic::async_trait]
impl UnitService for UnitApi {
    async fn register_unit(
        &self,
        request: Request<pb::RegisterUnitRequest>,
    ) -> Result<Response<pb::RegisterUnitResponse>, Status> {
        let origin = origin(&self.hub, &request)?;
        let profile = from_wire::unit_profile(request.into_inner())?;
        let (unit, created) = self.hub.register_unit(origin, profile).await?;
        Ok(Response::new(pb::RegisterUnitResponse {
            unit: Some(to_wire::unit(&unit)),
            created,
        }))
    }

    async fn report_positions(
        &self,
        request: Request<Streaming<PingBatch>>,
    ) -> Result<Response<pb::ReportPositionsResponse>, Status> {
        let origin = origin(&self.hub, &request)?;
        let principal = auth::principal(&request).cloned();
        let mut lapsed = auth::lapsed(&request);
        let limits = self.hub.limits();
        let caller = caller_key(&origin.actor);
        // Held while this handler runs: tonic drops it when the call ends,
        // also when the client vanishes.
        let _permit = limits.open_stream(&caller, "ReportPositions")?;
        let idle = limits.idle_timeout();
        let mut stream = request.into_inner();
        let mut reply = pb::ReportPositionsResponse::default();
        let mut index: u64 = 0;
        let limit = self.hub.config.limits.max_batch_pings;
        let tolerance = self.hub.config.units.future_tolerance_ms;
        loop {
            let message = async {
                match idle {
                    None => Ok(stream.message().await),
                    Some(idle) => tokio::time::timeout(idle, stream.message())
                        .await
                        .map_err(|_| limits.idle(&caller)),
                }
            };
            // A revoked or expired credential ends the stream; the batches
            // before it are kept.
            let next = tokio::select! {
                biased;
                err = &mut lapsed => return Err(err.into()),
                next = message => next?,
            };
            let Some(batch) = next.map_err(ServerError::from_stream)? else {
                break;
            };
            let count = batch.pings.len() as u64;
            if count == 0 {
                continue;
            }
            if batch.pings.len() > limit {
                return Err(ServerError::TooLarge {
                    what: format!("ping batch {}", index),
                    size: format!("{count} pings"),
                    limit: format!("{limit} pings"),
                    setting: "limits.max_batch_pings",
                }
                .into());
            }
            // One check for the whole batch; over the caller's quota the
            // stream ends here, the batches before it kept.
            limits.charge_pings(&caller, batch.pings.len(), || {
                format!("ping batch {index} ({count} pings) refused")
            })?;
            let mut origin = origin.clone();
            origin.time = now_ms();
            // The stateless checks here, so only pings that can apply reach the
            // log; the rest is decided when the batch is applied.
            let checked =
                from_wire::pings(
                    batch.pings,
                    origin.time,
                    tolerance,
                    |unit_id| match &principal {
                        Some(p) if !p.covers(unit_id) => {
                            metrics::counter!(m::AUTH_DENIED, "why" => "scope").increment(1);
                            Err(format!(
                                "{:?} may not report for unit {unit_id:?}: not in its scope",
                                p.identity
                            ))
                        }
                        _ => Ok(()),
                    },
                );
            let mut outcome = checked.refused;
            if !checked.kept.is_empty() {
                // In memory: applied now. With Redis: acknowledged only once
                // the batch is in the region's log (and applied here).
                let applied = self.hub.report_pings(origin, checked.kept).await?;
                outcome.accepted = applied.accepted;
                outcome.duplicates = applied.duplicates;
                outcome.rejected += applied.rejected;
                for mut rejection in applied.rejections {
                    rejection.index = u64::from(checked.index[rejection.index as usize]);
                    outcome.rejections.push(rejection);
                }
                outcome.rejections.sort_by_key(|r| r.index);
            }
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
        let origin = origin(&self.hub, &request)?;
        auth::check_covers(&request, "unit_id", &request.get_ref().unit_id)?;
        let (unit_id, status) = from_wire::status_report(request.into_inner())?;
        let unit = self.hub.update_status(origin, unit_id, status).await?;
        Ok(Response::new(pb::UpdateStatusResponse {
            unit: Some(to_wire::unit(&unit)),
        }))
    }

    async fn get_unit(
        &self,
        request: Request<pb::GetUnitRequest>,
    ) -> Result<Response<pb::GetUnitResponse>, Status> {
        auth::check_covers(&request, "id", &request.get_ref().id)?;
        let id = request.into_inner().id;
        let unit = self
            .hub
            .read(|core| core.unit(&id, now_ms()))
            .map_err(ServerError::from)?;
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
                return Err(
                    ServerError::bad("limit", n, format!("must be at most {MAX_PAGE}")).into(),
                );
            }
            n => n,
        };
        let start = if req.page_token.is_empty() {
            0
        } else {
            req.page_token.parse::<usize>().map_err(|_| {
                ServerError::bad(
                    "page_token",
                    format!("{:?}", req.page_token),
                    "not a token this server issued",
                )
            })?
        };
        let (units, next) = self
            .hub
            .read(|core| core.list_units(&filter, start, limit, now_ms()));
        Ok(Response::new(pb::ListUnitsResponse {
            units: units.iter().map(to_wire::unit).collect(),
            next_page_token: next.map(|n| n.to_string()).unwrap_or_default(),
        }))
    }

    async fn acknowledge_order(
        &self,
        request: Request<pb::AcknowledgeOrderRequest>,
    ) -> Result<Response<pb::AcknowledgeOrderResponse>, Status> {
        let origin = origin(&self.hub, &request)?;
        auth::check_covers(&request, "unit_id", &request.get_ref().unit_id)?;
        let req = request.into_inner();
        validate_id("unit_id", &req.unit_id).map_err(ServerError::from)?;
        validate_id("order_id", &req.order_id).map_err(ServerError::from)?;
        let order = self
            .hub
            .acknowledge_order(origin, req.unit_id, req.order_id)
            .await?;
        Ok(Response::new(pb::AcknowledgeOrderResponse {
            order: Some(to_wire::order(&order, pb::OrderState::Active)),
        }))
    }

    type ReceiveOrdersStream =
        Pin<Box<dyn Stream<Item = Result<pb::DispatchOrder, Status>> + Send>>;

    async fn receive_orders(
        &self,
        request: Request<pb::ReceiveOrdersRequest>,
    ) -> Result<Response<Self::ReceiveOrdersStream>, Status> {
        auth::check_covers(&request, "unit_id", &request.get_ref().unit_id)?;
        let lapsed = auth::lapsed(&request);
        let unit_id = request.into_inner().unit_id;
        validate_id("unit_id", &unit_id).map_err(ServerError::from)?;
        let (tx, rx) = mpsc::channel(ORDER_QUEUE);
        let (connection, current) = self.hub.node().open_orders(&unit_id, tx.clone())?;
        if let Some(order) = current {
            // The queue is new and empty: this cannot be full.
            let _ = tx.try_send(Ok(to_wire::order(&order, pb::OrderState::Active)));
        }
        drop(tx);
        Ok(Response::new(Box::pin(OrderStream {
            inner: auth::Lapsing::with(ReceiverStream::new(rx), lapsed),
            hub: self.hub.clone(),
            unit_id,
            connection,
        })))
    }
}
