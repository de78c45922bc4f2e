use std::sync::Arc;

use patrol_proto::v1 as pb;
use pb::camera_service_server::CameraService;
use tonic::{Request, Response, Status};

use super::origin;
use crate::convert::{from_wire, to_wire};
use crate::hub::Hub;
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
        let camera = from_wire::camera(request.into_inner().camera)?;
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
        let cameras = self.hub.read(|core| core.cameras(bbox.as_ref()));
        Ok(Response::new(pb::ListCamerasResponse {
            cameras: cameras.iter().map(to_wire::camera).collect(),
        }))
    }

    async fn post_alert(
        &self,
        request: Request<pb::PostAlertRequest>,
    ) -> Result<Response<pb::PostAlertResponse>, Status> {
        let origin = origin(&self.hub, &request)?;
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
}
