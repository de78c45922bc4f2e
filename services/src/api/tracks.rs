use std::sync::Arc;

use patrol_proto::v1 as pb;
use pb::track_service_server::TrackService;
use tonic::{Request, Response, Status};

use super::origin;
use crate::clock::now_ms;
use crate::convert::{from_wire, to_wire};
use crate::error::ServerError;
use crate::hub::Hub;

/// A suspect followed from camera to camera: starting, sightings, closing
/// (commands through the log), reading and intercepts (queries).
pub struct TrackApi {
    hub: Arc<Hub>,
}

impl TrackApi {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

fn reply(track: &patrol_dispatcher::Track) -> Response<pb::TrackResponse> {
    Response::new(pb::TrackResponse {
        track: Some(to_wire::track(track)),
    })
}

fn track_id(id: &str) -> Result<(), ServerError> {
    patrol_dispatcher::error::validate_id("track_id", id).map_err(ServerError::from)
}

#[tonic::async_trait]
impl TrackService for TrackApi {
    async fn start_track(
        &self,
        request: Request<pb::StartTrackRequest>,
    ) -> Result<Response<pb::TrackResponse>, Status> {
        let origin = origin(&self.hub, &request)?;
        let new = from_wire::new_track(request.into_inner())?;
        let track = self.hub.start_track(origin, new).await?;
        Ok(reply(&track))
    }

    async fn add_sighting(
        &self,
        request: Request<pb::AddSightingRequest>,
    ) -> Result<Response<pb::TrackResponse>, Status> {
        let origin = origin(&self.hub, &request)?;
        let req = request.into_inner();
        track_id(&req.track_id)?;
        let sighting = from_wire::sighting("sighting", req.sighting)?;
        let track = self
            .hub
            .add_sighting(origin, req.track_id, sighting)
            .await?;
        Ok(reply(&track))
    }

    async fn close_track(
        &self,
        request: Request<pb::CloseTrackRequest>,
    ) -> Result<Response<pb::TrackResponse>, Status> {
        let origin = origin(&self.hub, &request)?;
        let req = request.into_inner();
        track_id(&req.track_id)?;
        if req.reason.len() > patrol_dispatcher::tracks::MAX_TEXT_LEN {
            return Err(ServerError::bad(
                "reason",
                format!("{} bytes", req.reason.len()),
                format!(
                    "must be at most {} bytes",
                    patrol_dispatcher::tracks::MAX_TEXT_LEN
                ),
            )
            .into());
        }
        let track = self
            .hub
            .close_track(origin, req.track_id, req.reason)
            .await?;
        Ok(reply(&track))
    }

    async fn get_track(
        &self,
        request: Request<pb::GetTrackRequest>,
    ) -> Result<Response<pb::TrackResponse>, Status> {
        let id = request.into_inner().track_id;
        let track = self
            .hub
            .read(|core| core.track(&id).cloned())
            .map_err(ServerError::from)?;
        Ok(reply(&track))
    }

    async fn list_tracks(
        &self,
        request: Request<pb::ListTracksRequest>,
    ) -> Result<Response<pb::ListTracksResponse>, Status> {
        let include_closed = request.into_inner().include_closed;
        let tracks = self.hub.read(|core| core.tracks(include_closed));
        Ok(Response::new(pb::ListTracksResponse {
            tracks: tracks.iter().map(to_wire::track).collect(),
        }))
    }

    async fn recommend_intercepts(
        &self,
        request: Request<pb::RecommendInterceptsRequest>,
    ) -> Result<Response<pb::RecommendInterceptsResponse>, Status> {
        let req = request.into_inner();
        let query = from_wire::intercept_query(&req)?;
        let now = now_ms();
        let found = self
            .hub
            .read(|core| core.recommend_intercepts(&req.track_id, &query, now))
            .map_err(ServerError::from)?;
        Ok(Response::new(to_wire::intercepts(&found)))
    }
}
