//! The role table: which roles may call each gRPC method. Methods not named
//! here are admin-only (deny by default), so a new RPC is closed until it is
//! given a line.

use super::Role;

/// Who may make a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// No credential (health checks, Login).
    Open,
    /// Any authenticated caller (WhoAmI, Logout, reflection).
    Anyone,
    /// These roles; admins always may.
    Roles(&'static [Role]),
}

const READERS: &[Role] = &[Role::Viewer, Role::Operator];
const OPERATORS: &[Role] = &[Role::Operator];
const TERMINALS: &[Role] = &[Role::Terminal];
const TERMINALS_AND_OPERATORS: &[Role] = &[Role::Terminal, Role::Operator];
const CAMERA_SYSTEMS: &[Role] = &[Role::CameraSystem];
const ADMINS: &[Role] = &[];

/// What `path` (`/package.Service/Method`) needs.
pub(crate) fn need(path: &str) -> Need {
    let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
        return Need::Roles(ADMINS);
    };
    if service == "grpc.health.v1.Health" {
        return Need::Open;
    }
    if service.starts_with("grpc.reflection.") {
        return Need::Anyone;
    }
    let roles = match (service, method) {
        ("patrol.v1.AuthService", "Login") => return Need::Open,
        ("patrol.v1.AuthService", "Logout" | "WhoAmI") => return Need::Anyone,
        ("patrol.v1.AuthService", _) => ADMINS,

        ("patrol.v1.UnitService", "ReportPositions" | "ReceiveOrders" | "AcknowledgeOrder") => {
            TERMINALS
        }
        // Operators set a unit's status from the console too.
        ("patrol.v1.UnitService", "UpdateStatus") => TERMINALS_AND_OPERATORS,
        // A terminal reads its own unit (the handler checks which).
        ("patrol.v1.UnitService", "GetUnit") => &[Role::Terminal, Role::Viewer, Role::Operator],
        ("patrol.v1.UnitService", "ListUnits") => READERS,
        ("patrol.v1.UnitService", "RegisterUnit") => ADMINS,

        ("patrol.v1.CameraService", "RegisterCamera" | "PostAlert" | "ReportCameraHealth") => {
            CAMERA_SYSTEMS
        }
        (
            "patrol.v1.CameraService",
            "ListCameras" | "CamerasSeeing" | "CamerasAlong" | "Coverage",
        ) => READERS,
        ("patrol.v1.CameraService", "AimCamera" | "AimCameras" | "FollowUnit") => OPERATORS,

        ("patrol.v1.IncidentService", "GetIncident" | "ListIncidents") => READERS,
        (
            "patrol.v1.IncidentService",
            "CreateIncident" | "Recommend" | "Dispatch" | "UpdateIncident",
        ) => OPERATORS,

        ("patrol.v1.CommandRoom", "Watch") => READERS,

        ("patrol.v1.TrackService", "GetTrack" | "ListTracks") => READERS,
        (
            "patrol.v1.TrackService",
            "StartTrack" | "AddSighting" | "CloseTrack" | "RecommendIntercepts",
        ) => OPERATORS,

        ("patrol.v1.ZoneService", "GetZone" | "ListZones" | "ZonesAt") => READERS,
        ("patrol.v1.ZoneService", "PutZone" | "RemoveZone" | "SetHomeZone") => ADMINS,
        _ => ADMINS,
    };
    Need::Roles(roles)
}

/// Whether `role` satisfies `need` (an authenticated caller).
pub(crate) fn allows(need: Need, role: Role) -> bool {
    match need {
        Need::Open | Need::Anyone => true,
        Need::Roles(roles) => role == Role::Admin || roles.contains(&role),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_gets_exactly_its_methods() {
        let cases = [
            (
                "/patrol.v1.UnitService/ReportPositions",
                Role::Terminal,
                true,
            ),
            (
                "/patrol.v1.UnitService/ReportPositions",
                Role::Operator,
                false,
            ),
            (
                "/patrol.v1.UnitService/ReportPositions",
                Role::CameraSystem,
                false,
            ),
            ("/patrol.v1.UnitService/UpdateStatus", Role::Operator, true),
            ("/patrol.v1.UnitService/UpdateStatus", Role::Viewer, false),
            ("/patrol.v1.UnitService/RegisterUnit", Role::Operator, false),
            ("/patrol.v1.UnitService/RegisterUnit", Role::Admin, true),
            (
                "/patrol.v1.CameraService/PostAlert",
                Role::CameraSystem,
                true,
            ),
            ("/patrol.v1.CameraService/PostAlert", Role::Terminal, false),
            ("/patrol.v1.CameraService/AimCameras", Role::Operator, true),
            ("/patrol.v1.CameraService/AimCameras", Role::Viewer, false),
            (
                "/patrol.v1.CameraService/AimCameras",
                Role::CameraSystem,
                false,
            ),
            ("/patrol.v1.IncidentService/Dispatch", Role::Operator, true),
            ("/patrol.v1.IncidentService/Dispatch", Role::Viewer, false),
            ("/patrol.v1.IncidentService/Dispatch", Role::Terminal, false),
            (
                "/patrol.v1.IncidentService/ListIncidents",
                Role::Viewer,
                true,
            ),
            ("/patrol.v1.CommandRoom/Watch", Role::Viewer, true),
            ("/patrol.v1.CommandRoom/Watch", Role::Terminal, false),
            ("/patrol.v1.TrackService/StartTrack", Role::Operator, true),
            ("/patrol.v1.TrackService/StartTrack", Role::Viewer, false),
            ("/patrol.v1.ZoneService/PutZone", Role::Operator, false),
            ("/patrol.v1.ZoneService/PutZone", Role::Admin, true),
            (
                "/patrol.v1.AuthService/IssueCredential",
                Role::Operator,
                false,
            ),
            ("/patrol.v1.AuthService/IssueCredential", Role::Admin, true),
            ("/patrol.v1.AuthService/WhoAmI", Role::Terminal, true),
            ("/patrol.v1.Unknown/Thing", Role::Operator, false),
            ("/patrol.v1.Unknown/Thing", Role::Admin, true),
        ];
        for (path, role, allowed) in cases {
            assert_eq!(allows(need(path), role), allowed, "{path} as {role:?}");
        }
        assert_eq!(need("/grpc.health.v1.Health/Check"), Need::Open);
        assert_eq!(need("/patrol.v1.AuthService/Login"), Need::Open);
    }
}
