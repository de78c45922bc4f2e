use std::sync::Arc;

use patrol_proto::v1 as pb;
use pb::zone_service_server::ZoneService;
use tonic::{Request, Response, Status};

use super::origin;
use crate::convert::{from_wire, to_wire};
use crate::error::ServerError;
use crate::hub::Hub;

/// Patrol zones: putting, removing and home zones (commands through the
/// log), reading and point lookups (queries).
pub struct ZoneApi {
    hub: Arc<Hub>,
}

impl ZoneApi {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

fn reply(zone: &patrol_dispatcher::Zone) -> Response<pb::ZoneResponse> {
    Response::new(pb::ZoneResponse {
        zone: Some(to_wire::zone(zone)),
    })
}

fn zone_id(field: &str, id: &str) -> Result<(), ServerError> {
    patrol_dispatcher::error::validate_id(field, id).map_err(ServerError::from)
}

#[tonic::async_trait]
impl ZoneService for ZoneApi {
    async fn put_zone(
        &self,
        request: Request<pb::PutZoneRequest>,
    ) -> Result<Response<pb::ZoneResponse>, Status> {
        let origin = origin(&self.hub, &request)?;
        let spec = from_wire::zone_spec(&request.into_inner())?;
        let zone = self.hub.put_zone(origin, spec).await?;
        Ok(reply(&zone))
    }

    async fn remove_zone(
        &self,
        request: Request<pb::RemoveZoneRequest>,
    ) -> Result<Response<pb::ZoneResponse>, Status> {
        let origin = origin(&self.hub, &request)?;
        let id = request.into_inner().zone_id;
        zone_id("zone_id", &id)?;
        let zone = self.hub.remove_zone(origin, id).await?;
        Ok(reply(&zone))
    }

    async fn get_zone(
        &self,
        request: Request<pb::GetZoneRequest>,
    ) -> Result<Response<pb::ZoneResponse>, Status> {
        let id = request.into_inner().zone_id;
        zone_id("zone_id", &id)?;
        let zone = self
            .hub
            .read(|core| core.zone(&id).cloned())
            .map_err(ServerError::from)?;
        Ok(reply(&zone))
    }

    async fn list_zones(
        &self,
        _request: Request<pb::ListZonesRequest>,
    ) -> Result<Response<pb::ListZonesResponse>, Status> {
        let zones = self.hub.read(|core| core.zones());
        Ok(Response::new(pb::ListZonesResponse {
            zones: zones.iter().map(to_wire::zone).collect(),
        }))
    }

    async fn set_home_zone(
        &self,
        request: Request<pb::SetHomeZoneRequest>,
    ) -> Result<Response<pb::SetHomeZoneResponse>, Status> {
        let origin = origin(&self.hub, &request)?;
        let req = request.into_inner();
        zone_id("unit_id", &req.unit_id)?;
        let zone = if req.zone_id.is_empty() {
            None
        } else {
            zone_id("zone_id", &req.zone_id)?;
            Some(req.zone_id)
        };
        self.hub
            .set_home_zone(origin, req.unit_id.clone(), zone)
            .await?;
        let (home, zones) = self
            .hub
            .read(|core| {
                Ok::<_, patrol_dispatcher::error::Error>((
                    core.home_zone(&req.unit_id)?.map(str::to_string),
                    core.unit_zones(&req.unit_id)?,
                ))
            })
            .map_err(ServerError::from)?;
        Ok(Response::new(pb::SetHomeZoneResponse {
            unit_id: req.unit_id,
            home_zone_id: home.unwrap_or_default(),
            zone_ids: zones,
        }))
    }

    async fn zones_at(
        &self,
        request: Request<pb::ZonesAtRequest>,
    ) -> Result<Response<pb::ZonesAtResponse>, Status> {
        use pb::zones_at_request::Target;
        let reply = match request.into_inner().target {
            None => return Err(ServerError::missing("target").into()),
            Some(Target::Point(p)) => {
                let at = from_wire::lonlat("point", Some(&p))?;
                self.hub.read(|core| pb::ZonesAtResponse {
                    zones: core
                        .zone_index()
                        .containing_smallest_first(at)
                        .into_iter()
                        .map(to_wire::zone)
                        .collect(),
                    home_zone_id: String::new(),
                })
            }
            Some(Target::UnitId(id)) => {
                zone_id("unit_id", &id)?;
                self.hub
                    .read(|core| {
                        let home = core.home_zone(&id)?.map(str::to_string);
                        let zones = core
                            .unit_zones(&id)?
                            .iter()
                            .filter_map(|z| core.zone(z).ok().map(to_wire::zone))
                            .collect();
                        Ok::<_, patrol_dispatcher::error::Error>(pb::ZonesAtResponse {
                            zones,
                            home_zone_id: home.unwrap_or_default(),
                        })
                    })
                    .map_err(ServerError::from)?
            }
        };
        Ok(Response::new(reply))
    }
}
