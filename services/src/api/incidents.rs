use std::sync::Arc;
use std::time::Instant;

use patrol_proto::v1 as pb;
use pb::incident_service_server::IncidentService;
use tonic::{Request, Response, Status};

use super::origin;
use crate::clock::now_ms;
use crate::convert::{from_wire, to_wire};
use crate::error::ServerError;
use crate::hub::Hub;
use crate::telemetry as m;

const DEFAULT_LIST: usize = 1000;

pub struct IncidentApi {
    hub: Arc<Hub>,
}

impl IncidentApi {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

#[tonic::async_trait]
impl IncidentService for IncidentApi {
    async fn create_incident(
        &self,
        request: Request<pb::CreateIncidentRequest>,
    ) -> Result<Response<pb::CreateIncidentResponse>, Status> {
        let origin = origin(&self.hub, &request)?;
        let new = from_wire::new_incident(request.into_inner())?;
        let incident = self.hub.create_incident(origin, new).await?;
        tracing::info!(incident = %incident.id, kind = %incident.kind, priority = incident.priority, "incident created");
        Ok(Response::new(pb::CreateIncidentResponse {
            incident: Some(to_wire::incident(&incident)),
        }))
    }

    async fn get_incident(
        &self,
        request: Request<pb::GetIncidentRequest>,
    ) -> Result<Response<pb::GetIncidentResponse>, Status> {
        let id = request.into_inner().id;
        let incident = self
            .hub
            .read(|core| core.incident(&id).map(to_wire::incident))
            .map_err(ServerError::from)?;
        Ok(Response::new(pb::GetIncidentResponse {
            incident: Some(incident),
        }))
    }

    async fn list_incidents(
        &self,
        request: Request<pb::ListIncidentsRequest>,
    ) -> Result<Response<pb::ListIncidentsResponse>, Status> {
        let req = request.into_inner();
        let statuses = req
            .statuses
            .iter()
            .enumerate()
            .map(|(i, s)| from_wire::incident_status(&format!("statuses[{i}]"), *s))
            .collect::<Result<Vec<_>, _>>()?;
        let limit = if req.limit == 0 {
            DEFAULT_LIST
        } else {
            req.limit as usize
        };
        let incidents = self.hub.read(|core| core.list_incidents(&statuses, limit));
        Ok(Response::new(pb::ListIncidentsResponse {
            incidents: incidents.iter().map(to_wire::incident).collect(),
        }))
    }

    async fn recommend(
        &self,
        request: Request<pb::RecommendRequest>,
    ) -> Result<Response<pb::RecommendResponse>, Status> {
        let started = Instant::now();
        let (target, query) = from_wire::recommend(request.into_inner())?;
        let recommendation = self
            .hub
            .read(|core| core.recommend(&target, &query, now_ms()))
            .map_err(ServerError::from)?;
        let reply = to_wire::recommendation(&recommendation);
        metrics::histogram!(m::RECOMMEND_SECONDS).record(started.elapsed().as_secs_f64());
        Ok(Response::new(reply))
    }

    async fn dispatch(
        &self,
        request: Request<pb::DispatchRequest>,
    ) -> Result<Response<pb::DispatchResponse>, Status> {
        let started = Instant::now();
        let origin = origin(&self.hub, &request)?;
        let dispatch = from_wire::dispatch_request(request.into_inner())?;
        let unit_ids = dispatch.unit_ids.clone();
        let (incident, orders) = self.hub.dispatch(origin, dispatch).await?;
        metrics::histogram!(m::DISPATCH_SECONDS).record(started.elapsed().as_secs_f64());
        tracing::info!(incident = %incident.id, units = ?unit_ids, "dispatched");
        Ok(Response::new(pb::DispatchResponse {
            incident: Some(to_wire::incident(&incident)),
            orders: orders
                .iter()
                .map(|o| to_wire::order(o, pb::OrderState::Active))
                .collect(),
        }))
    }

    async fn update_incident(
        &self,
        request: Request<pb::UpdateIncidentRequest>,
    ) -> Result<Response<pb::UpdateIncidentResponse>, Status> {
        let origin = origin(&self.hub, &request)?;
        let update = from_wire::incident_update(request.into_inner())?;
        let status = update.status;
        let incident = self.hub.update_incident(origin, update).await?;
        tracing::info!(incident = %incident.id, status = status.as_str(), "incident updated");
        Ok(Response::new(pb::UpdateIncidentResponse {
            incident: Some(to_wire::incident(&incident)),
        }))
    }
}
