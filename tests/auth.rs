//! Credentials and roles over real TLS connections (certificates made by the
//! test): each role allowed and refused exactly as the role table says, a
//! terminal's pings for another unit refused while the rest of its batch is
//! kept, a terminal that authenticates with its client certificate (mutual
//! TLS), expired sessions, lockout after repeated failures and its lifting by
//! an admin, long streams ended when their credential is revoked, and (with
//! Redis) a revocation on one node refused by another without a restart.

use std::time::{Duration, Instant};

use patrol_proto::v1 as pb;
use patrol_services::auth::{Kind, Role};
use patrol_services::config::TlsConfig;
use patrol_services::{Config, RunningServer};
use patrol_tests::pki::{Ca, Dir};
use patrol_tests::processes::RedisServer;
use patrol_tests::{Caller, now_ms, ping, test_config, tls_channel};
use tonic::Code;
use tonic::transport::Channel;

const LON: f64 = 24.94;
const LAT: f64 = 60.17;

/// A node with credentials required, over TLS (client certificates optional,
/// verified against the test CA), and a TLS channel to it.
struct Node {
    server: RunningServer,
    channel: Channel,
    ca: Ca,
    _dir: Dir,
}

async fn start(configure: impl FnOnce(&mut Config)) -> Node {
    let ca = Ca::new("patrol auth test CA");
    let dir = Dir::new("auth");
    let pair = ca.server();
    let mut config = test_config();
    config.auth.required = true;
    config.tls = TlsConfig {
        cert: dir.write("server.crt", &pair.cert),
        key: dir.write("server.key", &pair.key),
        client_ca: dir.write("clients.crt", &ca.pem),
        require_client_cert: false,
        plaintext: false,
        ..TlsConfig::default()
    };
    configure(&mut config);
    let server = patrol_services::start(config)
        .await
        .expect("a TLS node starts");
    let channel = tls_channel(server.grpc_addr(), "localhost", &ca.pem, None)
        .await
        .expect("connects over TLS");
    Node {
        server,
        channel,
        ca,
        _dir: dir,
    }
}

/// An admin key issued straight into the node's store (the first admin of a
/// deployment comes from `auth.admin_token_file` the same way).
async fn admin_token(node: &Node) -> String {
    node.server
        .credentials()
        .issue(
            "root",
            Role::Admin,
            vec![],
            Kind::Key,
            "test".into(),
            0,
            None,
            now_ms(),
        )
        .await
        .expect("issue admin")
        .2
}

async fn issue(
    admin: &mut Caller,
    identity: &str,
    role: pb::Role,
    kind: pb::CredentialKind,
    scope: &[&str],
) -> String {
    admin
        .auth
        .issue_credential(pb::IssueCredentialRequest {
            identity: identity.into(),
            role: role as i32,
            scope: scope.iter().map(|s| s.to_string()).collect(),
            kind: kind as i32,
            ttl_ms: 0,
            secret: String::new(),
            label: "test".into(),
        })
        .await
        .unwrap_or_else(|s| panic!("issue {identity}: {s:?}"))
        .into_inner()
        .secret
}

async fn login(caller: &mut Caller, identity: &str, secret: &str) -> Result<String, tonic::Status> {
    caller
        .auth
        .login(pb::LoginRequest {
            identity: identity.into(),
            secret: secret.into(),
        })
        .await
        .map(|r| r.into_inner().token)
}

fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> Code {
    match result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

fn new_incident() -> pb::CreateIncidentRequest {
    pb::CreateIncidentRequest {
        r#type: "theft".into(),
        priority: 2,
        location: Some(pb::LonLat { lon: LON, lat: LAT }),
        source: pb::IncidentSource::Call as i32,
        description: String::new(),
        request_id: String::new(),
    }
}

fn register_unit(id: &str) -> pb::RegisterUnitRequest {
    pb::RegisterUnitRequest {
        id: id.into(),
        call_sign: id.into(),
        kind: pb::UnitKind::Car as i32,
        capabilities: vec![],
    }
}

fn camera(id: &str) -> pb::RegisterCameraRequest {
    pb::RegisterCameraRequest {
        camera: Some(pb::Camera {
            id: id.into(),
            name: id.into(),
            lon: LON,
            lat: LAT,
            mount_height_m: 6.0,
            heading_deg: 90.0,
            fov_deg: 90.0,
            range_m: 80.0,
            ..Default::default()
        }),
    }
}

fn alert(camera_id: &str) -> pb::PostAlertRequest {
    pb::PostAlertRequest {
        camera_id: camera_id.into(),
        label: "person".into(),
        confidence: 0.9,
        ..Default::default()
    }
}

async fn report(
    caller: &mut Caller,
    pings: Vec<pb::Ping>,
) -> Result<pb::ReportPositionsResponse, tonic::Status> {
    caller
        .units
        .report_positions(tokio_stream::iter([pb::ReportPositionsRequest { pings }]))
        .await
        .map(|r| r.into_inner())
}

/// The people and machines of one test node: (admin, operator, viewer,
/// terminal of unit-1, camera system of cam-a*).
async fn cast(node: &Node) -> (Caller, Caller, Caller, Caller, Caller) {
    let channel = &node.channel;
    let mut admin = Caller::new(channel, Some(&admin_token(node).await));
    let operator_secret = issue(
        &mut admin,
        "olivia",
        pb::Role::Operator,
        pb::CredentialKind::Login,
        &[],
    )
    .await;
    let viewer_secret = issue(
        &mut admin,
        "victor",
        pb::Role::Viewer,
        pb::CredentialKind::Login,
        &[],
    )
    .await;
    let terminal = issue(
        &mut admin,
        "car-1",
        pb::Role::Terminal,
        pb::CredentialKind::Key,
        &["unit-1"],
    )
    .await;
    let cameras = issue(
        &mut admin,
        "vms-a",
        pb::Role::CameraSystem,
        pb::CredentialKind::Key,
        &["cam-a*"],
    )
    .await;
    let mut anonymous = Caller::new(channel, None);
    let operator = login(&mut anonymous, "olivia", &operator_secret)
        .await
        .expect("operator logs in");
    let viewer = login(&mut anonymous, "victor", &viewer_secret)
        .await
        .expect("viewer logs in");
    for id in ["unit-1", "unit-2"] {
        admin
            .units
            .register_unit(register_unit(id))
            .await
            .expect("admin registers units");
    }
    admin
        .cameras
        .register_camera(camera("cam-b1"))
        .await
        .expect("admin registers any camera");
    (
        admin,
        Caller::new(channel, Some(&operator)),
        Caller::new(channel, Some(&viewer)),
        Caller::new(channel, Some(&terminal)),
        Caller::new(channel, Some(&cameras)),
    )
}

#[tokio::test]
async fn no_credential_gets_nothing_but_health() {
    let node = start(|_| {}).await;
    let mut anonymous = Caller::new(&node.channel, None);
    let refused = anonymous
        .units
        .list_units(pb::ListUnitsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(
        refused.message().contains("authorization: Bearer"),
        "{}",
        refused.message()
    );
    let mut forged = Caller::new(
        &node.channel,
        Some(
            "pt_0123456789abcdef_00000000000000000000000000000000000000000000000000000000deadbeef",
        ),
    );
    assert_eq!(
        code(forged.incidents.create_incident(new_incident()).await),
        Code::Unauthenticated
    );
    let mut junk = Caller::new(&node.channel, Some("letmein"));
    assert_eq!(
        code(junk.room.watch(pb::WatchRequest::default()).await),
        Code::Unauthenticated
    );
    // Monitoring needs no credential.
    let mut health = tonic_health::pb::health_client::HealthClient::new(node.channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "patrol.v1.UnitService".into(),
        })
        .await
        .expect("health is open")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test]
async fn each_role_is_allowed_and_refused_exactly() {
    let node = start(|_| {}).await;
    let (mut admin, mut operator, mut viewer, mut terminal, mut cameras) = cast(&node).await;

    // Operator: incidents, dispatch, cameras, tracks, watch; not units, zones,
    // credentials or terminal work.
    let incident = operator
        .incidents
        .create_incident(new_incident())
        .await
        .expect("operator creates incidents")
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(
        code(operator.room.watch(pb::WatchRequest::default()).await),
        Code::Ok
    );
    assert_eq!(
        code(
            operator
                .incidents
                .recommend(pb::RecommendRequest {
                    target: Some(pb::recommend_request::Target::IncidentId(
                        incident.id.clone()
                    )),
                    k: 3,
                    ..Default::default()
                })
                .await
        ),
        Code::Ok
    );
    assert_eq!(
        code(
            operator
                .cameras
                .aim_cameras(pb::AimCamerasRequest {
                    target: Some(pb::CameraTarget {
                        target: Some(pb::camera_target::Target::IncidentId(incident.id.clone())),
                    }),
                    dry_run: true,
                    ..Default::default()
                })
                .await
        ),
        Code::Ok
    );
    assert_eq!(
        code(operator.units.register_unit(register_unit("unit-9")).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(operator.zones.put_zone(pb::PutZoneRequest::default()).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(report(&mut operator, vec![ping("unit-1", now_ms(), LON, LAT)]).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            operator
                .auth
                .issue_credential(pb::IssueCredentialRequest::default())
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(operator.cameras.post_alert(alert("cam-a1")).await),
        Code::PermissionDenied
    );

    // Viewer: watch and read only.
    assert_eq!(
        code(viewer.room.watch(pb::WatchRequest::default()).await),
        Code::Ok
    );
    assert_eq!(
        code(
            viewer
                .incidents
                .list_incidents(pb::ListIncidentsRequest::default())
                .await
        ),
        Code::Ok
    );
    assert_eq!(
        code(
            viewer
                .units
                .list_units(pb::ListUnitsRequest::default())
                .await
        ),
        Code::Ok
    );
    assert_eq!(
        code(viewer.incidents.create_incident(new_incident()).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            viewer
                .incidents
                .dispatch(pb::DispatchRequest {
                    incident_id: incident.id.clone(),
                    unit_ids: vec!["unit-1".into()],
                    ..Default::default()
                })
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            viewer
                .cameras
                .aim_cameras(pb::AimCamerasRequest {
                    target: Some(pb::CameraTarget {
                        target: Some(pb::camera_target::Target::IncidentId(incident.id.clone())),
                    }),
                    ..Default::default()
                })
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            viewer
                .units
                .update_status(pb::UpdateStatusRequest {
                    unit_id: "unit-1".into(),
                    status: pb::UnitStatus::OffDuty as i32,
                })
                .await
        ),
        Code::PermissionDenied
    );

    // Terminal of unit-1: its own unit only; the batch's other pings kept.
    let now = now_ms();
    let reply = report(
        &mut terminal,
        vec![
            ping("unit-1", now, LON, LAT),
            ping("unit-2", now, LON + 0.01, LAT),
        ],
    )
    .await
    .expect("a terminal reports positions");
    assert_eq!(reply.accepted, 1, "{reply:?}");
    assert_eq!(reply.rejected, 1, "{reply:?}");
    assert_eq!(reply.rejections[0].unit_id, "unit-2");
    assert_eq!(reply.rejections[0].index, 1);
    assert_eq!(
        reply.rejections[0].reason,
        pb::PingRejectReason::PermissionDenied as i32
    );
    let units = admin
        .units
        .list_units(pb::ListUnitsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .units;
    let position = |id: &str| units.iter().find(|u| u.id == id).and_then(|u| u.fix);
    assert!(position("unit-1").is_some(), "the allowed ping was kept");
    assert!(position("unit-2").is_none(), "the other unit did not move");
    assert_eq!(
        code(
            terminal
                .units
                .update_status(pb::UpdateStatusRequest {
                    unit_id: "unit-1".into(),
                    status: pb::UnitStatus::OffDuty as i32,
                })
                .await
        ),
        Code::Ok
    );
    assert_eq!(
        code(
            terminal
                .units
                .update_status(pb::UpdateStatusRequest {
                    unit_id: "unit-2".into(),
                    status: pb::UnitStatus::OffDuty as i32,
                })
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            terminal
                .units
                .receive_orders(pb::ReceiveOrdersRequest {
                    unit_id: "unit-2".into()
                })
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            terminal
                .units
                .receive_orders(pb::ReceiveOrdersRequest {
                    unit_id: "unit-1".into()
                })
                .await
        ),
        Code::Ok
    );
    assert_eq!(
        code(
            terminal
                .units
                .get_unit(pb::GetUnitRequest {
                    id: "unit-2".into()
                })
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            terminal
                .units
                .get_unit(pb::GetUnitRequest {
                    id: "unit-1".into()
                })
                .await
        ),
        Code::Ok
    );
    assert_eq!(
        code(terminal.room.watch(pb::WatchRequest::default()).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(terminal.incidents.create_incident(new_incident()).await),
        Code::PermissionDenied
    );

    // Camera system of cam-a*: its own cameras and their alerts.
    assert_eq!(
        code(cameras.cameras.register_camera(camera("cam-a1")).await),
        Code::Ok
    );
    assert_eq!(
        code(cameras.cameras.register_camera(camera("cam-b2")).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(cameras.cameras.post_alert(alert("cam-a1")).await),
        Code::Ok
    );
    let denied = cameras
        .cameras
        .post_alert(alert("cam-b1"))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(denied.message().contains("cam-b1"), "{}", denied.message());
    assert_eq!(
        code(cameras.incidents.create_incident(new_incident()).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            cameras
                .cameras
                .aim_cameras(pb::AimCamerasRequest {
                    target: Some(pb::CameraTarget {
                        target: Some(pb::camera_target::Target::IncidentId(incident.id.clone())),
                    }),
                    ..Default::default()
                })
                .await
        ),
        Code::PermissionDenied
    );

    // Operator dispatches; the timeline says who, with the role.
    operator
        .incidents
        .dispatch(pb::DispatchRequest {
            incident_id: incident.id.clone(),
            unit_ids: vec!["unit-1".into()],
            ..Default::default()
        })
        .await
        .map(|_| ())
        .or_else(|s| {
            if s.code() == Code::FailedPrecondition {
                Ok(())
            } else {
                Err(s)
            }
        })
        .expect("operator may dispatch");
    let shown = viewer
        .incidents
        .get_incident(pb::GetIncidentRequest {
            id: incident.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    let created = shown.audit.first().expect("an audit trail");
    let actor = created.actor.clone().unwrap();
    assert_eq!(
        (actor.identity.as_str(), actor.role.as_str()),
        ("olivia", "operator")
    );

    // Admin: everything.
    assert_eq!(
        code(admin.units.register_unit(register_unit("unit-9")).await),
        Code::Ok
    );
    assert_eq!(
        code(admin.cameras.post_alert(alert("cam-b1")).await),
        Code::Ok
    );
    let who = admin
        .auth
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner()
        .principal
        .unwrap();
    assert_eq!(
        (who.identity.as_str(), who.role),
        ("root", pb::Role::Admin as i32)
    );
}

#[tokio::test]
async fn bad_credential_requests_name_the_field() {
    let node = start(|_| {}).await;
    let mut admin = Caller::new(&node.channel, Some(&admin_token(&node).await));
    let unscoped = admin
        .auth
        .issue_credential(pb::IssueCredentialRequest {
            identity: "car-7".into(),
            role: pb::Role::Terminal as i32,
            kind: pb::CredentialKind::Key as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unscoped.code(), Code::InvalidArgument);
    assert!(
        unscoped.message().contains("scope"),
        "{}",
        unscoped.message()
    );
    let forever = admin
        .auth
        .issue_credential(pb::IssueCredentialRequest {
            identity: "olga".into(),
            role: pb::Role::Operator as i32,
            kind: pb::CredentialKind::Key as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(forever.code(), Code::InvalidArgument);
    assert!(
        forever.message().contains("ttl_ms"),
        "{}",
        forever.message()
    );
    let short = admin
        .auth
        .issue_credential(pb::IssueCredentialRequest {
            identity: "olga".into(),
            role: pb::Role::Operator as i32,
            kind: pb::CredentialKind::Login as i32,
            secret: "short".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(short.message().contains("secret"), "{}", short.message());
    // A login secret is not a bearer token.
    let secret = issue(
        &mut admin,
        "olga",
        pb::Role::Operator,
        pb::CredentialKind::Login,
        &[],
    )
    .await;
    let mut misuse = Caller::new(&node.channel, Some(&secret));
    assert_eq!(
        code(misuse.incidents.create_incident(new_incident()).await),
        Code::Unauthenticated
    );
    // The listing never shows secrets or hashes, and says who is locked.
    let listed = admin
        .auth
        .list_credentials(pb::ListCredentialsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .credentials;
    assert!(
        listed
            .iter()
            .any(|c| c.identity == "olga" && c.kind == pb::CredentialKind::Login as i32)
    );
    let debug = format!("{listed:?}");
    assert!(
        !debug.contains(&secret) && !debug.contains("argon2"),
        "no secrets listed"
    );
}

#[tokio::test]
async fn an_expired_session_is_refused_and_login_opens_a_new_one() {
    let node = start(|c| c.auth.session_ttl_ms = 1_000).await;
    let mut admin = Caller::new(&node.channel, Some(&admin_token(&node).await));
    let secret = issue(
        &mut admin,
        "olivia",
        pb::Role::Operator,
        pb::CredentialKind::Login,
        &[],
    )
    .await;
    let mut anonymous = Caller::new(&node.channel, None);
    let session = login(&mut anonymous, "olivia", &secret).await.unwrap();
    let mut operator = Caller::new(&node.channel, Some(&session));
    assert_eq!(
        code(
            operator
                .incidents
                .list_incidents(pb::ListIncidentsRequest::default())
                .await
        ),
        Code::Ok
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        match operator
            .incidents
            .list_incidents(pb::ListIncidentsRequest::default())
            .await
        {
            Err(status) => break status,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Ok(_) => panic!("the session never expired"),
        }
    };
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(
        refused.message().contains("session expired"),
        "{}",
        refused.message()
    );
    let fresh = login(&mut anonymous, "olivia", &secret)
        .await
        .expect("log in again");
    let mut operator = Caller::new(&node.channel, Some(&fresh));
    assert_eq!(
        code(
            operator
                .incidents
                .list_incidents(pb::ListIncidentsRequest::default())
                .await
        ),
        Code::Ok
    );
    // Logout ends the session at once.
    operator.auth.logout(pb::LogoutRequest {}).await.unwrap();
    assert_eq!(
        code(
            operator
                .incidents
                .list_incidents(pb::ListIncidentsRequest::default())
                .await
        ),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn repeated_failures_lock_an_identity_until_an_admin_unlocks_it() {
    let node = start(|c| c.auth.lockout_failures = 3).await;
    let mut admin = Caller::new(&node.channel, Some(&admin_token(&node).await));
    let secret = issue(
        &mut admin,
        "olivia",
        pb::Role::Operator,
        pb::CredentialKind::Login,
        &[],
    )
    .await;
    let mut anonymous = Caller::new(&node.channel, None);
    let session = login(&mut anonymous, "olivia", &secret).await.unwrap();
    let mut operator = Caller::new(&node.channel, Some(&session));
    for attempt in 0..3 {
        let refused = login(&mut anonymous, "olivia", "guess-guess-guess")
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "attempt {attempt}");
    }
    // Locked: the right secret and the open session are refused now.
    let locked = login(&mut anonymous, "olivia", &secret).await.unwrap_err();
    assert_eq!(locked.code(), Code::Unauthenticated);
    assert!(locked.message().contains("locked"), "{}", locked.message());
    let refused = operator
        .incidents
        .list_incidents(pb::ListIncidentsRequest::default())
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("locked"),
        "{}",
        refused.message()
    );
    let listed = admin
        .auth
        .list_credentials(pb::ListCredentialsRequest {
            identity: "olivia".into(),
            include_revoked: false,
        })
        .await
        .unwrap()
        .into_inner()
        .credentials;
    assert!(listed.iter().all(|c| c.locked), "{listed:?}");
    // Only an admin lifts it.
    assert_eq!(
        code(
            operator
                .auth
                .unlock_identity(pb::UnlockIdentityRequest {
                    identity: "olivia".into()
                })
                .await
        ),
        Code::Unauthenticated
    );
    let unlocked = admin
        .auth
        .unlock_identity(pb::UnlockIdentityRequest {
            identity: "olivia".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(unlocked.was_locked);
    login(&mut anonymous, "olivia", &secret)
        .await
        .expect("unlocked: logs in");
    assert_eq!(
        code(
            operator
                .incidents
                .list_incidents(pb::ListIncidentsRequest::default())
                .await
        ),
        Code::Ok
    );
    // A wrong secret on a bearer token counts too.
    let token = issue(
        &mut admin,
        "car-1",
        pb::Role::Terminal,
        pb::CredentialKind::Key,
        &["unit-1"],
    )
    .await;
    let forged = format!(
        "{}{}",
        &token[..token.len() - 4],
        if token.ends_with("0000") {
            "1111"
        } else {
            "0000"
        }
    );
    let mut thief = Caller::new(&node.channel, Some(&forged));
    for _ in 0..3 {
        assert_eq!(
            code(
                thief
                    .units
                    .get_unit(pb::GetUnitRequest {
                        id: "unit-1".into()
                    })
                    .await
            ),
            Code::Unauthenticated
        );
    }
    let mut terminal = Caller::new(&node.channel, Some(&token));
    let refused = terminal
        .units
        .get_unit(pb::GetUnitRequest {
            id: "unit-1".into(),
        })
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("locked"),
        "{}",
        refused.message()
    );
}

#[tokio::test]
async fn a_revoked_token_is_refused_by_another_node_without_a_restart() {
    let redis = RedisServer::start();
    let config = |name: &'static str| {
        let url = redis.url();
        move |config: &mut Config| {
            config.node_id = name.into();
            config.redis.urls = vec![url];
            config.redis.response_timeout_ms = 2_000;
            config.auth.cache_ms = 200;
        }
    };
    let a = start(config("a")).await;
    let b = start(config("b")).await;
    let mut admin_a = Caller::new(&a.channel, Some(&admin_token(&a).await));
    let token = issue(
        &mut admin_a,
        "vms-a",
        pb::Role::CameraSystem,
        pb::CredentialKind::Key,
        &["cam-a*"],
    )
    .await;
    let mut on_b = Caller::new(&b.channel, Some(&token));
    assert_eq!(
        code(on_b.cameras.register_camera(camera("cam-a1")).await),
        Code::Ok,
        "node b knows the key issued on a"
    );
    let revoked = admin_a
        .auth
        .revoke_credential(pb::RevokeCredentialRequest {
            identity: "vms-a".into(),
            credential_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .revoked;
    assert_eq!(revoked, 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        match on_b.cameras.post_alert(alert("cam-a1")).await {
            Err(status) if status.code() == Code::Unauthenticated => break status,
            other if Instant::now() < deadline => {
                drop(other);
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => panic!("node b still accepts the revoked key: {other:?}"),
        }
    };
    assert!(
        refused.message().contains("revoked"),
        "{}",
        refused.message()
    );
    // And a new node of the region (a restart) knows the credentials too.
    drop(b);
    let c = start(config("c")).await;
    let mut admin_c = Caller::new(&c.channel, Some(&admin_token(&a).await));
    assert_eq!(
        code(
            admin_c
                .units
                .list_units(pb::ListUnitsRequest::default())
                .await
        ),
        Code::Ok
    );
    let mut on_c = Caller::new(&c.channel, Some(&token));
    assert_eq!(
        code(on_c.cameras.post_alert(alert("cam-a1")).await),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn a_terminal_authenticates_with_its_client_certificate() {
    let node = start(|_| {}).await;
    let mut admin = Caller::new(&node.channel, Some(&admin_token(&node).await));
    for id in ["unit-7", "unit-8"] {
        admin.units.register_unit(register_unit(id)).await.unwrap();
    }
    let issued = issue(
        &mut admin,
        "unit-7",
        pb::Role::Terminal,
        pb::CredentialKind::Certificate,
        &["unit-7"],
    )
    .await;
    assert!(issued.is_empty(), "a certificate credential has no secret");
    let own = node.ca.client("unit-7");
    let channel = tls_channel(
        node.server.grpc_addr(),
        "localhost",
        &node.ca.pem,
        Some((&own.cert, &own.key)),
    )
    .await
    .expect("mutual TLS");
    let mut terminal = Caller::new(&channel, None);
    let now = now_ms();
    let reply = report(
        &mut terminal,
        vec![ping("unit-7", now, LON, LAT), ping("unit-8", now, LON, LAT)],
    )
    .await
    .expect("the certificate is the credential");
    assert_eq!((reply.accepted, reply.rejected), (1, 1), "{reply:?}");
    assert_eq!(
        reply.rejections[0].reason,
        pb::PingRejectReason::PermissionDenied as i32
    );
    let who = terminal
        .auth
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner()
        .principal
        .unwrap();
    assert_eq!(
        (who.identity.as_str(), who.role, who.kind),
        (
            "unit-7",
            pb::Role::Terminal as i32,
            pb::CredentialKind::Certificate as i32
        )
    );
    assert_eq!(
        code(terminal.incidents.create_incident(new_incident()).await),
        Code::PermissionDenied
    );
    // A certificate the CA signed but no credential names gets nothing.
    let stranger = node.ca.client("unit-9");
    let channel = tls_channel(
        node.server.grpc_addr(),
        "localhost",
        &node.ca.pem,
        Some((&stranger.cert, &stranger.key)),
    )
    .await
    .unwrap();
    let mut stranger = Caller::new(&channel, None);
    assert_eq!(
        code(report(&mut stranger, vec![ping("unit-8", now, LON, LAT)]).await),
        Code::Unauthenticated
    );
    // Revoked: the certificate alone no longer gets in.
    admin
        .auth
        .revoke_credential(pb::RevokeCredentialRequest {
            identity: "unit-7".into(),
            credential_id: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        code(report(&mut terminal, vec![ping("unit-7", now + 1000, LON, LAT)]).await),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn open_streams_end_when_their_credential_is_revoked() {
    let node = start(|c| c.auth.cache_ms = 200).await;
    let (mut admin, mut operator, _viewer, mut terminal, _cameras) = cast(&node).await;
    let mut room = operator
        .room
        .watch(pb::WatchRequest::default())
        .await
        .expect("watch")
        .into_inner();
    let mut orders = terminal
        .units
        .receive_orders(pb::ReceiveOrdersRequest {
            unit_id: "unit-1".into(),
        })
        .await
        .expect("orders")
        .into_inner();
    // The snapshot arrives: the stream is live.
    room.message()
        .await
        .expect("a first event")
        .expect("not ended");
    for identity in ["olivia", "car-1"] {
        admin
            .auth
            .revoke_credential(pb::RevokeCredentialRequest {
                identity: identity.into(),
                credential_id: String::new(),
            })
            .await
            .unwrap();
    }
    let ended = ended_with(&mut room, "the revoked operator's Watch").await;
    assert_eq!(ended.code(), Code::Unauthenticated);
    assert!(ended.message().contains("revoked"), "{}", ended.message());
    let ended = ended_with(&mut orders, "the revoked terminal's order stream").await;
    assert_eq!(ended.code(), Code::Unauthenticated);
}

/// Reads `stream` until it fails, within a generous deadline; the status.
async fn ended_with<T>(stream: &mut tonic::Streaming<T>, what: &str) -> tonic::Status {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("{what} ended without saying why"),
                Err(status) => break status,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} did not end"))
}

#[tokio::test]
async fn login_attempts_from_one_peer_are_rate_limited() {
    let node = start(|c| {
        c.limits.logins_per_second_per_peer = 1;
        c.limits.login_burst_per_peer = 2;
    })
    .await;
    let mut anonymous = Caller::new(&node.channel, None);
    // Guessing identity names: the lockout has nobody to lock, the rate
    // limit still holds (unknown names cost no hashing, so this is quick).
    let mut codes = Vec::new();
    for i in 0..8 {
        codes.push(code(
            login(&mut anonymous, &format!("nobody-{i}"), "guess-guess-guess").await,
        ));
    }
    assert_eq!(codes[0], Code::Unauthenticated, "{codes:?}");
    assert!(codes.contains(&Code::ResourceExhausted), "{codes:?}");
    let refused = login(&mut anonymous, "nobody", "guess-guess-guess")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused
            .message()
            .contains("limits.logins_per_second_per_peer"),
        "{}",
        refused.message()
    );
}
