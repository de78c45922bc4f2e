use std::sync::Arc;

use patrol_proto::v1 as pb;
use pb::camera_service_server::CameraService;
use tonic::{Request, Response, Status};

use super::origin;
use crate::auth;
use crate::clock::now_ms;
use crate::convert::{from_wire, to_wire};
use crate::error::ServerError;
use crate::hub::Hub;
use crate::limits::caller_key;
use crate::telemetry as m;

pub struct CameraApi {
    hub: Arc<Hub>,
}

impl CameraApi {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

#[tonic::async_trait]
impl CameraService for CameraApi {
    async fn register_camera(
        &self,
        request: Request<pb::RegisterCameraRequest>,
    ) -> Result<Response<pb::RegisterCameraResponse>, Status> {
        let origin = origin(&self.hub, &request)?;
        let camera = from_wire::camera(request.get_ref().camera.clone())?;
        auth::check_covers(&request, "camera.id", &camera.id)?;
        let (camera, created) = self.hub.register_camera(origin, camera).await?;
        Ok(Response::new(pb::RegisterCameraResponse {
            camera: Some(to_wire::camera(&camera)),
            created,
        }))
    }

    async fn list_cameras(
        &self,
        request: Request<pb::ListCamerasRequest>,
    ) -> Result<Response<pb::ListCamerasResponse>, Status> {
        let bbox = from_wire::bbox("bbox", request.into_inner().bbox.as_ref())?;
        let now = now_ms();
        let cameras = self.hub.read(|core| {
            core.cameras(bbox.as_ref())
                .iter()
                .map(|c| to_wire::camera_at(c, core.camera_online(c, now)))
                .collect()
        });
        Ok(Response::new(pb::ListCamerasResponse { cameras }))
    }

    async fn post_alert(
        &self,
        request: Request<pb::PostAlertRequest>,
    ) -> Result<Response<pb::PostAlertResponse>, Status> {
        let origin = origin(&self.hub, &request)?;
        auth::check_covers(&request, "camera_id", &request.get_ref().camera_id)?;
        self.hub.limits().charge_alert(&caller_key(&origin.actor))?;
        let alert = from_wire::new_alert(
            request.into_inner(),
            origin.time,
            self.hub.config.units.future_tolerance_ms,
        )?;
        let outcome = self.hub.post_alert(origin, alert).await?;
        let result = match (&outcome.alert.incident_id, outcome.incident_created) {
            (Some(_), true) => "opened_incident",
            (Some(_), false) => "joined_incident",
            (None, _) => "no_incident",
        };
        metrics::counter!(m::ALERTS, "result" => result).increment(1);
        Ok(Response::new(pb::PostAlertResponse {
            alert_id: outcome.alert.id,
            incident_id: outcome.alert.incident_id.unwrap_or_default(),
            incident_created: outcome.incident_created,
        }))
    }

    async fn cameras_seeing(
        &self,
        request: Request<pb::CamerasSeeingRequest>,
    ) -> Result<Response<pb::CamerasSeeingResponse>, Status> {
        let req = request.into_inner();
        let target = from_wire::camera_target("target", req.target)?;
        let limit = from_wire::limit("limit", req.limit, 20)?;
        let now = now_ms();
        let (point, sights) = self
            .hub
            .read(|core| {
                let point = core.target_point(&target)?;
                core.cameras_seeing(point, now, limit).map(|s| (point, s))
            })
            .map_err(ServerError::from)?;
        Ok(Response::new(pb::CamerasSeeingResponse {
            target: Some(to_wire::lonlat(point)),
            cameras: sights.iter().map(to_wire::sight).collect(),
        }))
    }

    async fn aim_camera(
        &self,
        request: Request<pb::AimCameraRequest>,
    ) -> Result<Response<pb::AimCameraResponse>, Status> {
        let origin = origin(&self.hub, &request)?;
        let req = request.into_inner();
        patrol_dispatcher::error::validate_id("camera_id", &req.camera_id)
            .map_err(ServerError::from)?;
        let target = from_wire::camera_target("target", req.target)?;
        let height = from_wire::target_height(req.target_height_m)?;
        let (_, aims) = self
            .hub
            .aim_cameras(
                origin,
                target,
                height,
                vec![req.camera_id.clone()],
                1,
                req.dry_run,
            )
            .await?;
        let (id, aim, applied) = aims
            .into_iter()
            .next()
            .ok_or_else(|| ServerError::Internal("aiming one camera gave no aim".into()))?;
        let now = now_ms();
        let camera = self
            .hub
            .read(|core| {
                core.camera(&id)
                    .map(|c| to_wire::camera_at(c, core.camera_online(c, now)))
            })
            .map_err(ServerError::from)?;
        Ok(Response::new(pb::AimCameraResponse {
            aim: Some(to_wire::aim(&id, &aim, applied)),
            camera: Some(camera),
        }))
    }

    async fn aim_cameras(
        &self,
        request: Request<pb::AimCamerasRequest>,
    ) -> Result<Response<pb::AimCamerasResponse>, Status> {
        let origin = origin(&self.hub, &request)?;
        let req = request.into_inner();
        let target = from_wire::camera_target("target", req.target)?;
        let height = from_wire::target_height(req.target_height_m)?;
        let limit = from_wire::limit("limit", req.limit, 20)?;
        let (point, aims) = self
            .hub
            .aim_cameras(origin, target, height, Vec::new(), limit, req.dry_run)
            .await?;
        Ok(Response::new(pb::AimCamerasResponse {
            target: Some(to_wire::lonlat(point)),
            aims: aims
                .iter()
                .map(|(id, aim, applied)| to_wire::aim(id, aim, *applied))
                .collect(),
        }))
    }

    async fn follow_unit(
        &self,
        request: Request<pb::FollowUnitRequest>,
    ) -> Result<Response<pb::FollowUnitResponse>, Status> {
        let origin = origin(&self.hub, &request)?;
        let req = request.into_inner();
        patrol_dispatcher::error::validate_id("unit_id", &req.unit_id)
            .map_err(ServerError::from)?;
        let follow = self
            .hub
            .follow_unit(origin, req.unit_id.clone(), req.camera_ids, req.stop)
            .await?;
        Ok(Response::new(pb::FollowUnitResponse {
            unit_id: req.unit_id,
            following: follow.is_some(),
            camera_ids: follow.map(|f| f.camera_ids).unwrap_or_default(),
        }))
    }

    async fn report_camera_health(
        &self,
        request: Request<pb::ReportCameraHealthRequest>,
    ) -> Result<Response<pb::ReportCameraHealthResponse>, Status> {
        let origin = origin(&self.hub, &request)?;
        for id in &request.get_ref().camera_ids {
            auth::check_covers(&request, "camera_ids", id)?;
        }
        let req = request.into_inner();
        if req.camera_ids.len() > 10_000 {
            return Err(ServerError::bad(
                "camera_ids",
                format!("{} ids", req.camera_ids.len()),
                "at most 10000 per report",
            )
            .into());
        }
        for (i, id) in req.camera_ids.iter().enumerate() {
            patrol_dispatcher::error::validate_id(&format!("camera_ids[{i}]"), id)
                .map_err(ServerError::from)?;
        }
        let time = if req.time_unix_ms == 0 {
            origin.time
        } else {
            req.time_unix_ms
        };
        let updated = self.hub.camera_health(origin, req.camera_ids, time).await?;
        Ok(Response::new(pb::ReportCameraHealthResponse {
            updated: updated as u32,
        }))
    }

    async fn cameras_along(
        &self,
        request: Request<pb::CamerasAlongRequest>,
    ) -> Result<Response<pb::CamerasAlongResponse>, Status> {
        let req = request.into_inner();
        let corridor = if req.corridor_m == 0.0 {
            10.0
        } else {
            req.corridor_m
        };
        let limit = from_wire::limit("limit", req.limit, 50)?;
        let now = now_ms();
        let sights = self
            .hub
            .read(|core| {
                let path: Vec<patrol_dispatcher::LonLat> = match &req.path {
                    Some(pb::cameras_along_request::Path::UnitId(id)) => core
                        .current_order(id)?
                        .map(|o| o.route)
                        .filter(|r| !r.is_empty())
                        .ok_or_else(|| {
                            patrol_dispatcher::Error::FailedPrecondition(format!(
                                "unit {id} has no order with a route"
                            ))
                        })?,
                    Some(pb::cameras_along_request::Path::Points(p)) => p
                        .points
                        .iter()
                        .map(|p| patrol_dispatcher::LonLat::new(p.lon, p.lat))
                        .collect(),
                    None => {
                        return Err(patrol_dispatcher::Error::invalid(
                            "path",
                            "none",
                            "give unit_id or points",
                        ));
                    }
                };
                core.cameras_along(&path, corridor, now, limit)
            })
            .map_err(ServerError::from)?;
        Ok(Response::new(pb::CamerasAlongResponse {
            cameras: sights.iter().map(to_wire::path_sight).collect(),
        }))
    }

    async fn coverage(
        &self,
        request: Request<pb::CoverageRequest>,
    ) -> Result<Response<pb::CoverageResponse>, Status> {
        let query = from_wire::coverage_query(&request.into_inner())?;
        let now = now_ms();
        // Copies of the network (shared) and the cameras under the core
        // lock; the walk over every street runs outside it, off the async
        // workers.
        let (network, cameras, config) = self.hub.read(|core| {
            let index = core.camera_index();
            (
                core.config().network.clone(),
                index.in_slot_order().to_vec(),
                *index.config(),
            )
        });
        let coverage = tokio::task::spawn_blocking(move || {
            let index = patrol_dispatcher::CameraIndex::from_slot_order(
                config,
                cameras.into_iter().map(|c| (c, false)).collect(),
            )?;
            patrol_dispatcher::coverage_of(network.as_ref(), &index, &query, now)
        })
        .await
        .map_err(|e| Status::internal(format!("coverage: {e}")))?
        .map_err(ServerError::from)?;
        Ok(Response::new(to_wire::coverage(
            &coverage,
            query.include_segments,
        )))
    }
}
