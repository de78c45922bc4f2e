//! One function per one-shot command: build the request, call patrold, print
//! the answer. Formatting of answers is kept in plain functions that return
//! `String`s, so they can be tested without a server.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use patrol_proto::auth::{Authed, Bearer, authed};
use patrol_proto::v1::camera_service_client::CameraServiceClient;
use patrol_proto::v1::incident_service_client::IncidentServiceClient;
use patrol_proto::v1::unit_service_client::UnitServiceClient;
use patrol_proto::v1::{
    self as pb, DispatchOrder, EtaMethod, ExclusionReason, Incident, IncidentSource,
    IncidentStatus, PingRejectReason, RecommendResponse, Unit, UnitKind, UnitStatus,
    recommend_request,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Status};

use crate::cli::{
    AlertArgs, Cli, Command, CreateIncidentArgs, IncidentsArgs, PingArgs, RecommendArgs,
    RegisterUnitArgs, UnitsArgs,
};
use crate::format::{Table, age, clock, date_time, eta, metres, word_of};
use crate::session;

/// How long a one-shot call may take before we give up on the server.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Units asked for per ListUnits page.
const PAGE_SIZE: u32 = 1000;

/// Connects to `--server` and runs the command.
pub(crate) async fn run(cli: Cli) -> Result<()> {
    let server = with_scheme(&cli.server, cli.ca.is_some());
    let token = crate::auth::token(cli.token.as_deref(), cli.as_role.as_deref())?;
    let bearer = Bearer::new(token.as_deref()).context("--token is not printable text")?;
    let channel = authed(connect(&server, &Tls::from_cli(&cli)?).await?, bearer);
    let units = || UnitServiceClient::new(channel.clone());
    let incidents = || IncidentServiceClient::new(channel.clone());
    match cli.command {
        Command::Login { identity, secret } => crate::auth::login(channel, identity, secret).await,
        Command::Logout => crate::auth::logout(channel).await,
        Command::Whoami => crate::auth::whoami(channel).await,
        Command::Auth { command } => crate::auth::run(channel, command).await,
        Command::Audit(args) => crate::auth::audit(channel, args).await,
        Command::Watch(args) => session::watch(&server, channel.clone(), args).await,
        Command::Orders { unit_id } => session::orders(units(), unit_id).await,
        Command::Units(args) => list_units(units(), args).await,
        Command::Unit { id } => show_unit(units(), id).await,
        Command::Cameras { bbox } => {
            let request = call(pb::ListCamerasRequest { bbox });
            let cameras = CameraServiceClient::new(channel.clone())
                .list_cameras(request)
                .await?
                .into_inner()
                .cameras;
            print!("{}", cameras_table(&cameras));
            println!("{} cameras", cameras.len());
            Ok(())
        }
        Command::Incidents(args) => list_incidents(incidents(), args).await,
        Command::Incident { id } => show_incident(incidents(), units(), id).await,
        Command::CreateIncident(args) => create_incident(incidents(), args).await,
        Command::Recommend(args) => recommend(incidents(), args).await,
        Command::Dispatch {
            incident_id,
            unit_ids,
            note,
            intercept_at,
        } => {
            let request = call(pb::DispatchRequest {
                request_id: Default::default(),
                incident_id,
                unit_ids,
                note,
                intercept: intercept_at,
            });
            let response = incidents().dispatch(request).await?.into_inner();
            if let Some(incident) = &response.incident {
                println!(
                    "{} {}",
                    incident.id,
                    word_of::<IncidentStatus>(incident.status)
                );
            }
            for order in &response.orders {
                println!("{}", order_line(order));
            }
            Ok(())
        }
        Command::Close { incident_id, note } => {
            set_incident_status(incidents(), incident_id, IncidentStatus::Closed, note).await
        }
        Command::IncidentStatus {
            incident_id,
            status,
            note,
        } => set_incident_status(incidents(), incident_id, status, note).await,
        Command::RegisterUnit(args) => register_unit(units(), args).await,
        Command::UnitStatus { unit_id, status } => {
            let request = call(pb::UpdateStatusRequest {
                unit_id,
                status: status as i32,
            });
            let unit = units().update_status(request).await?.into_inner().unit;
            let unit = unit.context("server sent no unit")?;
            println!("{}", unit_line(&unit));
            Ok(())
        }
        Command::Ping(args) => ping(units(), args).await,
        Command::Alert(args) => post_alert(CameraServiceClient::new(channel.clone()), args).await,
        Command::Track { command } => crate::tracks::run(channel.clone(), command).await,
        Command::Zones => crate::tracks::zones(channel.clone()).await,
        Command::Coverage(args) => crate::coverage::run(channel.clone(), args).await,
        Command::Camera(command) => crate::cameras::run(channel.clone(), command).await,
    }
}

/// `127.0.0.1:50051` means `http://127.0.0.1:50051`, or
/// `https://127.0.0.1:50051` when a CA is given.
pub(crate) fn with_scheme(server: &str, tls: bool) -> String {
    if server.contains("://") {
        server.to_string()
    } else if tls {
        format!("https://{server}")
    } else {
        format!("http://{server}")
    }
}

/// `--ca`, `--cert`, `--key`: read once, before connecting.
#[derive(Debug, Default)]
struct Tls {
    ca: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl Tls {
    fn from_cli(cli: &Cli) -> Result<Self> {
        let read = |flag: &str, path: &std::path::Path| {
            std::fs::read(path).with_context(|| format!("reading --{flag} {}", path.display()))
        };
        Ok(Self {
            ca: cli.ca.as_deref().map(|p| read("ca", p)).transpose()?,
            identity: match (&cli.cert, &cli.key) {
                (Some(cert), Some(key)) => Some((read("cert", cert)?, read("key", key)?)),
                _ => None,
            },
        })
    }
}

async fn connect(server: &str, tls: &Tls) -> Result<Channel> {
    let mut endpoint = Endpoint::from_shared(server.to_string())
        .map_err(|e| anyhow!("bad --server address {server:?}: {e}"))?
        .connect_timeout(Duration::from_secs(5));
    if server.starts_with("https://") {
        let Some(ca) = &tls.ca else {
            bail!(
                "--server {server} is https: pass --ca (the CA that signed patrold's certificate)"
            );
        };
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
        if let Some((cert, key)) = &tls.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        endpoint = endpoint
            .tls_config(config)
            .map_err(|e| anyhow!("TLS settings for {server}: {}", error_chain(&e)))?;
    } else if tls.ca.is_some() || tls.identity.is_some() {
        bail!("--ca/--cert/--key need an https:// --server (got {server})");
    }
    endpoint
        .connect()
        .await
        .map_err(|e| anyhow!("cannot reach patrold at {server}: {}", error_chain(&e)))
}

/// `transport error: tcp connect error: Connection refused (os error 111)`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// The message printed after `error: ` for a failed command.
pub(crate) fn describe_error(error: &anyhow::Error) -> String {
    match error.downcast_ref::<Status>() {
        Some(status) if status.code() == Code::Unavailable => format!(
            "{:?}: {} (is patrold running and reachable?)",
            status.code(),
            status.message()
        ),
        Some(status) => format!("{:?}: {}", status.code(), status.message()),
        None => format!("{error:#}"),
    }
}

pub(crate) fn call<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(CALL_TIMEOUT);
    request
}

/// The local clock, Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn list_units(mut client: UnitServiceClient<Authed>, args: UnitsArgs) -> Result<()> {
    let limit = args.limit.map_or(usize::MAX, |l| l as usize);
    let mut units: Vec<Unit> = Vec::new();
    let mut page_token = String::new();
    while units.len() < limit {
        let page_size = PAGE_SIZE.min(u32::try_from(limit - units.len()).unwrap_or(PAGE_SIZE));
        let request = call(pb::ListUnitsRequest {
            statuses: args.status.iter().map(|s| *s as i32).collect(),
            kinds: args.kind.iter().map(|k| *k as i32).collect(),
            bbox: args.bbox,
            limit: page_size,
            page_token: page_token.clone(),
        });
        let page = client.list_units(request).await?.into_inner();
        let got = page.units.len();
        units.extend(page.units);
        if page.next_page_token.is_empty() {
            break;
        }
        if got == 0 || page.next_page_token == page_token {
            bail!(
                "server returned page token {:?} without progress",
                page.next_page_token
            );
        }
        page_token = page.next_page_token;
    }
    units.truncate(limit);
    print!("{}", units_table(&units, now_ms()));
    println!("{} units", units.len());
    Ok(())
}

async fn show_unit(mut client: UnitServiceClient<Authed>, id: String) -> Result<()> {
    let unit = client
        .get_unit(call(pb::GetUnitRequest { id }))
        .await?
        .into_inner()
        .unit;
    let unit = unit.context("server sent no unit")?;
    print!("{}", unit_detail(&unit, now_ms()));
    Ok(())
}

async fn list_incidents(
    mut client: IncidentServiceClient<Authed>,
    args: IncidentsArgs,
) -> Result<()> {
    let statuses: Vec<i32> = if args.all {
        (1..=5)
            .filter(|s| IncidentStatus::try_from(*s).is_ok())
            .collect()
    } else {
        args.status.iter().map(|s| *s as i32).collect()
    };
    let request = call(pb::ListIncidentsRequest {
        statuses,
        limit: args.limit.unwrap_or(0),
    });
    let incidents = client.list_incidents(request).await?.into_inner().incidents;
    print!("{}", incidents_table(&incidents, now_ms()));
    println!("{} incidents", incidents.len());
    Ok(())
}

async fn show_incident(
    mut client: IncidentServiceClient<Authed>,
    mut units: UnitServiceClient<Authed>,
    id: String,
) -> Result<()> {
    let incident = client
        .get_incident(call(pb::GetIncidentRequest { id }))
        .await?
        .into_inner();
    let incident = incident.incident.context("server sent no incident")?;
    // Call signs and statuses of the assigned units; a unit that cannot be
    // fetched is shown by id.
    let mut assigned = Vec::new();
    for unit_id in &incident.unit_ids {
        let request = call(pb::GetUnitRequest {
            id: unit_id.clone(),
        });
        match units.get_unit(request).await.map(|r| r.into_inner().unit) {
            Ok(Some(unit)) => assigned.push(unit_line(&unit)),
            _ => assigned.push(format!("{unit_id} (unit details unavailable)")),
        }
    }
    print!("{}", incident_detail(&incident, &assigned, now_ms()));
    Ok(())
}

async fn create_incident(
    mut client: IncidentServiceClient<Authed>,
    args: CreateIncidentArgs,
) -> Result<()> {
    let request = call(pb::CreateIncidentRequest {
        request_id: Default::default(),
        r#type: args.incident_type,
        priority: args.priority.unwrap_or(0),
        location: Some(pb::LonLat {
            lon: args.lon,
            lat: args.lat,
        }),
        source: args.source as i32,
        description: args.description,
    });
    let incident = client.create_incident(request).await?.into_inner().incident;
    println!("{}", incident.context("server sent no incident")?.id);
    Ok(())
}

async fn recommend(mut client: IncidentServiceClient<Authed>, args: RecommendArgs) -> Result<()> {
    let target = match (args.incident, args.lon, args.lat) {
        (Some(id), _, _) => recommend_request::Target::IncidentId(id),
        (None, Some(lon), Some(lat)) => recommend_request::Target::Point(pb::LonLat { lon, lat }),
        _ => bail!("give --incident ID or both --lon and --lat"),
    };
    let request = call(pb::RecommendRequest {
        include_routes: false,
        priority: args.priority.unwrap_or(0),
        target: Some(target),
        k: args.k,
        kinds: args.kind.iter().map(|k| *k as i32).collect(),
        required_capabilities: args.capability,
        max_distance_m: args.max_distance.unwrap_or(0.0),
    });
    let response = client.recommend(request).await?.into_inner();
    print!("{}", recommend_text(&response));
    Ok(())
}

async fn set_incident_status(
    mut client: IncidentServiceClient<Authed>,
    id: String,
    status: IncidentStatus,
    note: String,
) -> Result<()> {
    let request = call(pb::UpdateIncidentRequest {
        request_id: Default::default(),
        id,
        status: status as i32,
        note,
    });
    let incident = client.update_incident(request).await?.into_inner().incident;
    let incident = incident.context("server sent no incident")?;
    println!(
        "{} {}",
        incident.id,
        word_of::<IncidentStatus>(incident.status)
    );
    Ok(())
}

async fn register_unit(
    mut client: UnitServiceClient<Authed>,
    args: RegisterUnitArgs,
) -> Result<()> {
    let request = call(pb::RegisterUnitRequest {
        id: args.id,
        call_sign: args.call_sign,
        kind: args.kind as i32,
        capabilities: args.capability,
    });
    let response = client.register_unit(request).await?.into_inner();
    let unit = response.unit.context("server sent no unit")?;
    let what = if response.created {
        "registered"
    } else {
        "updated"
    };
    println!("{what} {}", unit_line(&unit));
    Ok(())
}

async fn ping(mut client: UnitServiceClient<Authed>, args: PingArgs) -> Result<()> {
    let ping = pb::Ping {
        unit_id: args.unit_id,
        fix_time_unix_ms: args.time_ms.unwrap_or_else(now_ms),
        lon: args.lon,
        lat: args.lat,
        speed_mps: args.speed,
        heading_deg: args.heading,
        accuracy_m: args.accuracy,
    };
    let batches = tokio_stream::iter([pb::ReportPositionsRequest { pings: vec![ping] }]);
    let reply = client.report_positions(call(batches)).await?.into_inner();
    println!(
        "accepted {}, duplicates {}, rejected {}",
        reply.accepted, reply.duplicates, reply.rejected
    );
    for r in &reply.rejections {
        println!(
            "rejected ping {} ({}): {}: {}",
            r.index,
            r.unit_id,
            word_of::<PingRejectReason>(r.reason),
            r.message
        );
    }
    if reply.rejected > 0 {
        bail!("ping rejected");
    }
    Ok(())
}

async fn post_alert(mut client: CameraServiceClient<Authed>, args: AlertArgs) -> Result<()> {
    let request = call(pb::PostAlertRequest {
        request_id: Default::default(),
        object_id: Default::default(),
        location: None,
        camera_id: args.camera_id,
        time_unix_ms: args.time_ms.unwrap_or(0),
        label: args.label,
        confidence: args.confidence,
        snapshot_uri: args.snapshot,
    });
    let reply = client.post_alert(request).await?.into_inner();
    let outcome = match (reply.incident_id.is_empty(), reply.incident_created) {
        (true, _) => "no incident (below the alert policy)".to_string(),
        (false, true) => format!("opened incident {}", reply.incident_id),
        (false, false) => format!("joined incident {}", reply.incident_id),
    };
    println!("alert {}: {outcome}", reply.alert_id);
    Ok(())
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.to_string()
    }
}

/// `Car 11 (car-11) car en_route incident=inc-4`.
pub(crate) fn unit_line(unit: &Unit) -> String {
    format!(
        "{} ({}) {} {} incident={}",
        unit.call_sign,
        unit.id,
        word_of::<UnitKind>(unit.kind),
        word_of::<UnitStatus>(unit.status),
        or_dash(&unit.incident_id)
    )
}

pub(crate) fn units_table(units: &[Unit], now_ms: i64) -> String {
    let mut table = Table::new(&[
        ("ID", 16),
        ("CALL SIGN", 14),
        ("KIND", 10),
        ("STATUS", 9),
        ("LON", 9),
        ("LAT", 9),
        ("FIX", 8),
        ("INCIDENT", 10),
        ("CAPABILITIES", 24),
    ]);
    for unit in units {
        let fix = unit.fix.as_ref();
        table.row(vec![
            unit.id.clone(),
            unit.call_sign.clone(),
            word_of::<UnitKind>(unit.kind),
            word_of::<UnitStatus>(unit.status),
            fix.map_or("-".into(), |f| format!("{:.5}", f.lon)),
            fix.map_or("-".into(), |f| format!("{:.5}", f.lat)),
            fix.map_or("no fix".into(), |f| age(f.fix_time_unix_ms, now_ms)),
            or_dash(&unit.incident_id),
            unit.capabilities.join(","),
        ]);
    }
    table.render()
}

pub(crate) fn unit_detail(unit: &Unit, now_ms: i64) -> String {
    let mut out = format!(
        "unit         {}\ncall sign    {}\nkind         {}\nstatus       {}\nincident     {}\ncapabilities {}\n",
        unit.id,
        unit.call_sign,
        word_of::<UnitKind>(unit.kind),
        word_of::<UnitStatus>(unit.status),
        or_dash(&unit.incident_id),
        or_dash(&unit.capabilities.join(", ")),
    );
    match &unit.fix {
        None => out.push_str("fix          none yet\n"),
        Some(f) => {
            out.push_str(&format!(
                "fix          {:.6},{:.6} at {} UTC ({})\n",
                f.lon,
                f.lat,
                clock(f.fix_time_unix_ms),
                age(f.fix_time_unix_ms, now_ms)
            ));
            let motion = [
                f.speed_mps.map(|s| format!("speed {s:.1} m/s")),
                f.heading_deg.map(|h| format!("heading {h:.0} deg")),
                f.accuracy_m.map(|a| format!("accuracy {a:.0} m")),
            ];
            let motion: Vec<String> = motion.into_iter().flatten().collect();
            if !motion.is_empty() {
                out.push_str(&format!("motion       {}\n", motion.join(", ")));
            }
        }
    }
    out
}

pub(crate) fn cameras_table(cameras: &[pb::Camera]) -> String {
    let mut table = Table::new(&[
        ("ID", 16),
        ("NAME", 24),
        ("LON", 9),
        ("LAT", 9),
        ("HEADING", 7),
        ("FOV", 5),
        ("RANGE", 7),
        ("HEIGHT", 6),
        ("PTZ", 3),
    ]);
    for c in cameras {
        table.row(vec![
            c.id.clone(),
            or_dash(&c.name),
            format!("{:.5}", c.lon),
            format!("{:.5}", c.lat),
            format!("{:.0}", c.heading_deg),
            format!("{:.0}", c.fov_deg),
            metres(c.range_m),
            format!("{:.1} m", c.mount_height_m),
            if c.ptz { "yes".into() } else { "no".into() },
        ]);
    }
    table.render()
}

pub(crate) fn incidents_table(incidents: &[Incident], now_ms: i64) -> String {
    let mut table = Table::new(&[
        ("ID", 12),
        ("TYPE", 16),
        ("PRI", 3),
        ("STATUS", 10),
        ("SOURCE", 12),
        ("UNITS", 24),
        ("CREATED", 8),
        ("AGE", 8),
        ("DESCRIPTION", 30),
    ]);
    for i in incidents {
        table.row(vec![
            i.id.clone(),
            i.r#type.clone(),
            i.priority.to_string(),
            word_of::<IncidentStatus>(i.status),
            word_of::<IncidentSource>(i.source),
            or_dash(&i.unit_ids.join(",")),
            clock(i.created_unix_ms),
            age(i.created_unix_ms, now_ms),
            i.description.clone(),
        ]);
    }
    table.render()
}

/// An incident in full; `assigned` holds one line per assigned unit.
pub(crate) fn incident_detail(i: &Incident, assigned: &[String], now_ms: i64) -> String {
    let location = i
        .location
        .map_or("-".into(), |p| format!("{:.6},{:.6}", p.lon, p.lat));
    let mut out = format!(
        "incident     {}\ntype         {}\npriority     {}\nstatus       {}\nsource       {}\n\
         location     {location}\ndescription  {}\ncreated      {} UTC ({})\nupdated      {} UTC ({})\n",
        i.id,
        i.r#type,
        i.priority,
        word_of::<IncidentStatus>(i.status),
        word_of::<IncidentSource>(i.source),
        or_dash(&i.description),
        date_time(i.created_unix_ms),
        age(i.created_unix_ms, now_ms),
        date_time(i.updated_unix_ms),
        age(i.updated_unix_ms, now_ms),
    );
    let list = |items: &[String]| {
        if items.is_empty() {
            "none".to_string()
        } else {
            items.join(", ")
        }
    };
    if assigned.is_empty() {
        out.push_str("units        none\n");
    } else {
        out.push_str("units\n");
        for line in assigned {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out.push_str(&format!("cameras      {}\n", list(&i.camera_ids)));
    out.push_str(&format!("alerts       {}\n", list(&i.alert_ids)));
    out.push_str(if i.audit.is_empty() {
        "audit        none\n"
    } else {
        "audit\n"
    });
    let mut audit = Table::new(&[("  TIME", 10), ("AGE", 8), ("ACTION", 14), ("DETAIL", 70)]);
    for entry in &i.audit {
        audit.row(vec![
            format!("  {}", clock(entry.time_unix_ms)),
            age(entry.time_unix_ms, now_ms),
            entry.action.clone(),
            entry.detail.clone(),
        ]);
    }
    out.push_str(&audit.render());
    out
}

pub(crate) fn recommend_text(response: &RecommendResponse) -> String {
    let mut out = String::new();
    if let Some(t) = response.target {
        out.push_str(&format!("target {:.6},{:.6}\n", t.lon, t.lat));
    }
    let mut table = Table::new(&[
        ("RANK", 4),
        ("CALL SIGN", 14),
        ("UNIT", 16),
        ("KIND", 10),
        ("DISTANCE", 9),
        ("ETA", 7),
        ("REASON", 50),
    ]);
    for (rank, r) in response.units.iter().enumerate() {
        let (call_sign, id, kind) =
            r.unit
                .as_ref()
                .map_or(("?".into(), "?".into(), "?".into()), |u| {
                    (
                        u.call_sign.clone(),
                        u.id.clone(),
                        word_of::<UnitKind>(u.kind),
                    )
                });
        table.row(vec![
            (rank + 1).to_string(),
            call_sign,
            id,
            kind,
            metres(r.distance_m),
            eta(r.eta_s),
            r.reason.clone(),
        ]);
    }
    if table.is_empty() {
        out.push_str("no suitable unit\n");
    } else {
        out.push_str(&table.render());
    }
    if !response.excluded.is_empty() {
        out.push_str("\nleft out (nearer than some chosen units)\n");
        let mut table = Table::new(&[
            ("CALL SIGN", 14),
            ("UNIT", 16),
            ("DISTANCE", 9),
            ("REASON", 18),
            ("DETAIL", 60),
        ]);
        for x in &response.excluded {
            table.row(vec![
                x.call_sign.clone(),
                x.unit_id.clone(),
                metres(x.distance_m),
                word_of::<ExclusionReason>(x.reason),
                x.detail.clone(),
            ]);
        }
        out.push_str(&table.render());
    }
    out.push_str(&eta_details(response));
    out
}

/// How each ETA was made (over the streets or by straight line) and how far
/// to trust each position; then the incident's response plan, if any.
fn eta_details(response: &RecommendResponse) -> String {
    let mut out = String::new();
    let network = response
        .units
        .iter()
        .filter(|r| r.eta_method == EtaMethod::Network as i32)
        .count();
    if !response.units.is_empty() {
        out.push_str(&format!(
            "\nETAs: {network} of {} over the street network",
            response.units.len()
        ));
        if network < response.units.len() {
            out.push_str(" (the rest by straight line: see their reasons)");
        }
        out.push('\n');
        for r in &response.units {
            let id = r.unit.as_ref().map_or("?", |u| u.id.as_str());
            let street = r
                .route_m
                .map_or_else(|| "-".to_string(), |m| format!("{} by street", metres(m)));
            let fix = r.confidence.as_ref().map_or_else(String::new, |c| {
                format!(", position confidence {:.2} ({})", c.score, c.note)
            });
            out.push_str(&format!("  {id}: {street}{fix}\n"));
        }
    }
    if let Some(plan) = &response.plan {
        out.push_str(&format!(
            "\nresponse plan {}: {}\n",
            plan.plan,
            if plan.complete { "complete" } else { "SHORT" }
        ));
        for u in &plan.units {
            out.push_str(&format!(
                "  send {} ({}): {}\n",
                u.unit_id,
                eta(u.eta_s),
                u.reason
            ));
        }
        for s in &plan.shortfalls {
            out.push_str(&format!("  shortfall: {s}\n"));
        }
    }
    out
}

/// One order as a line: what a unit terminal would show.
pub(crate) fn order_line(order: &DispatchOrder) -> String {
    let mut line = format!(
        "order {} at {} UTC: unit {} -> incident {} ({} p{})",
        order.order_id,
        clock(order.issued_unix_ms),
        order.unit_id,
        order.incident_id,
        order.incident_type,
        order.priority
    );
    if let Some(p) = order.location {
        line.push_str(&format!(" at {:.6},{:.6}", p.lon, p.lat));
    }
    if let Some(d) = order.distance_m {
        line.push_str(&format!(", {} away", metres(d)));
    }
    if !order.description.is_empty() {
        line.push_str(&format!(": {}", order.description));
    }
    if !order.note.is_empty() {
        line.push_str(&format!(" [note: {}]", order.note));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use patrol_proto::v1::{AuditEntry, ExcludedUnit, LonLat, RecommendedUnit};

    const T0: i64 = 1_714_564_800_000;

    #[test]
    fn server_addresses_and_errors() {
        assert_eq!(
            with_scheme("127.0.0.1:50051", false),
            "http://127.0.0.1:50051"
        );
        assert_eq!(
            with_scheme("127.0.0.1:50051", true),
            "https://127.0.0.1:50051"
        );
        assert_eq!(with_scheme("https://p:1", false), "https://p:1");
        let error = anyhow::Error::from(Status::not_found("unit \"x\" not found"));
        assert_eq!(describe_error(&error), "NotFound: unit \"x\" not found");
        assert_eq!(
            describe_error(&anyhow!("cannot reach patrold at http://a:1")),
            "cannot reach patrold at http://a:1"
        );
    }

    #[test]
    fn recommendation_lists_chosen_and_left_out_units() {
        let unit = Unit {
            id: "foot-3".into(),
            call_sign: "Foot 3".into(),
            kind: UnitKind::Foot as i32,
            ..Default::default()
        };
        let response = RecommendResponse {
            plan: Default::default(),
            target: Some(LonLat {
                lon: 24.94,
                lat: 60.17,
            }),
            units: vec![RecommendedUnit {
                route_m: Default::default(),
                confidence: Default::default(),
                eta_method: Default::default(),
                route: Default::default(),
                unit: Some(unit),
                distance_m: 212.4,
                eta_s: 151.0,
                reason: "nearest available".into(),
            }],
            excluded: vec![ExcludedUnit {
                unit_id: "car-11".into(),
                call_sign: "Car 11".into(),
                distance_m: 90.0,
                reason: ExclusionReason::Assigned as i32,
                detail: "on inc-4".into(),
            }],
        };
        let text = recommend_text(&response);
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0], ["target", "24.940000,60.170000"]);
        assert_eq!(
            lines[2],
            [
                "1",
                "Foot",
                "3",
                "foot-3",
                "foot",
                "212",
                "m",
                "2m31s",
                "nearest",
                "available"
            ]
        );
        assert_eq!(
            lines[6],
            ["Car", "11", "car-11", "90", "m", "assigned", "on", "inc-4"]
        );
        let empty = recommend_text(&RecommendResponse::default());
        assert_eq!(empty, "no suitable unit\n");
    }

    #[test]
    fn incident_detail_shows_the_audit_trail_with_times() {
        let incident = Incident {
            id: "inc-4".into(),
            r#type: "theft".into(),
            priority: 2,
            status: IncidentStatus::Dispatched as i32,
            source: IncidentSource::Call as i32,
            location: Some(LonLat {
                lon: 24.94,
                lat: 60.17,
            }),
            camera_ids: vec!["cam-1".into()],
            created_unix_ms: T0,
            updated_unix_ms: T0 + 60_000,
            audit: vec![
                AuditEntry {
                    actor: Default::default(),
                    time_unix_ms: T0,
                    action: "created".into(),
                    detail: "by call".into(),
                },
                AuditEntry {
                    actor: Default::default(),
                    time_unix_ms: T0 + 60_000,
                    action: "dispatched".into(),
                    detail: "car-11".into(),
                },
            ],
            ..Default::default()
        };
        let text = incident_detail(
            &incident,
            &["Car 11 (car-11) car assigned incident=inc-4".into()],
            T0 + 120_000,
        );
        assert!(
            text.contains("status       dispatched\nsource       call\n"),
            "{text}"
        );
        assert!(
            text.contains("created      2024-05-01 12:00:00Z UTC (2m ago)"),
            "{text}"
        );
        assert!(
            text.contains("units\n  Car 11 (car-11) car assigned incident=inc-4\n"),
            "{text}"
        );
        assert!(
            text.contains("cameras      cam-1\nalerts       none\n"),
            "{text}"
        );
        let audit: Vec<&str> = text.lines().skip_while(|l| *l != "audit").collect();
        assert_eq!(
            audit[2].split_whitespace().collect::<Vec<_>>(),
            ["12:00:00", "2m", "ago", "created", "by", "call"]
        );
        assert_eq!(
            audit[3].split_whitespace().collect::<Vec<_>>(),
            ["12:01:00", "1m", "ago", "dispatched", "car-11"]
        );
    }

    #[test]
    fn order_line_says_where_and_why() {
        let order = DispatchOrder {
            order_id: "ord-1".into(),
            unit_id: "car-11".into(),
            incident_id: "inc-4".into(),
            incident_type: "theft".into(),
            priority: 2,
            location: Some(pb::LonLat {
                lon: 24.94,
                lat: 60.17,
            }),
            issued_unix_ms: T0,
            distance_m: Some(350.0),
            note: "north entrance".into(),
            ..Default::default()
        };
        assert_eq!(
            order_line(&order),
            "order ord-1 at 12:00:00 UTC: unit car-11 -> incident inc-4 (theft p2) at 24.940000,60.170000, 350 m away [note: north entrance]"
        );
    }
}
