//! Patrol zones over real gRPC: zones loaded from the config's GeoJSON file
//! and managed over the API, entry only after the margin and the dwell (by
//! fix time) and no flapping on a boundary, home-zone preference in
//! Recommend, clear errors for bad GeoJSON, and with Redis every node (and a
//! restarted one) holding the same zones and home zones.

use std::time::Duration;

use patrol_proto::v1 as pb;
use patrol_services::Config;
use patrol_tests::processes::RedisServer;
use patrol_tests::{TestNode, next_event, now_ms, ping, test_config};
use pb::watch_event::Kind;
use tonic::Code;

const LON: f64 = 24.94;
const LAT: f64 = 60.17;

/// The point `x` metres east and `y` metres north of the centre.
fn at(x: f64, y: f64) -> (f64, f64) {
    (
        LON + x / (111_195.0 * LAT.to_radians().cos()),
        LAT + y / 111_195.0,
    )
}

/// A closed square ring from (x0, y0) to (x1, y1), metres, as GeoJSON.
fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> String {
    let corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)];
    let ring: Vec<String> = corners
        .iter()
        .map(|&(x, y)| {
            let (lon, lat) = at(x, y);
            format!("[{lon},{lat}]")
        })
        .collect();
    format!(
        r#"{{"type":"Polygon","coordinates":[[{}]]}}"#,
        ring.join(",")
    )
}

/// "centre": 800 m square; "centre-east": its eastern half, a segment.
fn zone_file() -> String {
    format!(
        r#"{{"type":"FeatureCollection","features":[
            {{"type":"Feature","id":"centre","properties":{{"name":"Centre"}},"geometry":{}}},
            {{"type":"Feature","id":"centre-east","properties":{{"name":"Centre east","kind":"segment","parent":"centre"}},"geometry":{}}}
        ]}}"#,
        square(-400.0, -400.0, 400.0, 400.0),
        square(0.0, -400.0, 400.0, 400.0)
    )
}

fn config_with_zones(dir: &tempdir::Dir) -> Config {
    let mut config = test_config();
    let path = dir.path().join("zones.geojson");
    std::fs::write(&path, zone_file()).unwrap();
    config.zone_file = path;
    config.zones.prefer_margin_s = 120.0;
    config
}

/// A throwaway directory (std only).
mod tempdir {
    use std::path::{Path, PathBuf};

    pub(crate) struct Dir(PathBuf);

    impl Dir {
        pub(crate) fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "patrol-{name}-{}-{}",
                std::process::id(),
                super::now_ms()
            ));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// One ping per batch, in order (each applied on its own).
async fn walk(node: &mut TestNode, unit: &str, fixes: &[(i64, (f64, f64))]) {
    let batches = fixes
        .iter()
        .map(|&(t, (lon, lat))| vec![ping(unit, t, lon, lat)])
        .collect();
    let reply = node.report(batches).await.unwrap();
    assert_eq!(reply.accepted as usize, fixes.len(), "{reply:?}");
}

/// ZonesAt for a unit: its zones and home zone.
async fn zones_of(node: &mut TestNode, unit: &str) -> Result<pb::ZonesAtResponse, tonic::Status> {
    node.zones
        .zones_at(pb::ZonesAtRequest {
            target: Some(pb::zones_at_request::Target::UnitId(unit.into())),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn zone_ids(zones: &[pb::Zone]) -> Vec<&str> {
    zones.iter().map(|z| z.id.as_str()).collect()
}

#[tokio::test]
async fn units_enter_zones_after_the_dwell_without_flapping_and_home_units_are_preferred() {
    let dir = tempdir::Dir::new("zones");
    let mut node = TestNode::start_with(config_with_zones(&dir)).await;
    let (mut room, snapshot) = node.watch_all().await;
    let mut in_snapshot = zone_ids(&snapshot.zones);
    in_snapshot.sort();
    assert_eq!(in_snapshot, ["centre", "centre-east"]);
    let listed = node
        .zones
        .list_zones(pb::ListZonesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let east = listed.zones.iter().find(|z| z.id == "centre-east").unwrap();
    assert_eq!(east.kind, pb::ZoneKind::Segment as i32);
    assert_eq!(east.parent_id, "centre");
    assert_eq!(east.polygons[0].exterior.as_ref().unwrap().points.len(), 5);

    // foot-1 stands 50 m outside the west edge for 10 s, then 50 m inside
    // for 20 s: it enters once the dwell (10 s) is over, by fix time.
    node.register("foot-1", pb::UnitKind::Foot).await;
    let t0 = now_ms() - 40_000;
    let mut fixes: Vec<(i64, (f64, f64))> = (0..=10)
        .map(|s| (t0 + s * 1_000, at(-450.0, 0.0)))
        .collect();
    fixes.extend((11..=30).map(|s| (t0 + s * 1_000, at(-350.0, 0.0))));
    walk(&mut node, "foot-1", &fixes).await;
    // foot-2 steps 5 m either side of the north edge every second for a
    // minute: never far enough in to enter.
    node.register("foot-2", pb::UnitKind::Foot).await;
    let t1 = now_ms() - 70_000;
    let jitter: Vec<(i64, (f64, f64))> = (0..60)
        .map(|s| {
            let y = if s % 2 == 0 { 405.0 } else { 395.0 };
            (t1 + s * 1_000, at(-200.0, y))
        })
        .collect();
    walk(&mut node, "foot-2", &jitter).await;
    // A marker: everything the pings caused comes before it.
    let marker = node.create_incident(LON, LAT).await;
    let mut changes = Vec::new();
    loop {
        match next_event(&mut room).await.kind {
            Some(Kind::Zone(z)) => changes.push(z),
            Some(Kind::Incident(i)) if i.id == marker.id => break,
            _ => {}
        }
    }
    let entered: Vec<_> = changes
        .iter()
        .filter(|z| z.kind == pb::ZoneChangeKind::Entered as i32)
        .collect();
    assert_eq!(entered.len(), 1, "{changes:?}");
    assert_eq!(
        (entered[0].unit_id.as_str(), entered[0].zone_id.as_str()),
        ("foot-1", "centre")
    );
    // First fix 50 m inside at t0 + 11 s; entered at the fix that completes
    // 10 s inside.
    assert_eq!(entered[0].time_unix_ms, t0 + 21_000, "{changes:?}");
    assert!(
        changes.iter().all(|z| z.unit_id != "foot-2"),
        "a unit on the boundary flapped: {changes:?}"
    );

    // Which zones hold a point (smallest first) and a unit.
    let (lon, lat) = at(100.0, 0.0);
    let here = node
        .zones
        .zones_at(pb::ZonesAtRequest {
            target: Some(pb::zones_at_request::Target::Point(pb::LonLat { lon, lat })),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(zone_ids(&here.zones), ["centre-east", "centre"]);
    let unit_zones = zones_of(&mut node, "foot-1").await.unwrap();
    assert_eq!(zone_ids(&unit_zones.zones), ["centre"]);

    // car-near is 100 m from the target, car-home 300 m but of the zone.
    for (id, x, y) in [("car-near", 100.0, 100.0), ("car-home", 100.0, -300.0)] {
        node.register(id, pb::UnitKind::Car).await;
        walk(&mut node, id, &[(now_ms() - 500, at(x, y))]).await;
    }
    let set = node
        .zones
        .set_home_zone(pb::SetHomeZoneRequest {
            unit_id: "car-home".into(),
            zone_id: "centre".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(set.home_zone_id, "centre");
    let recommend = |node: &mut TestNode| {
        let mut incidents = node.incidents.clone();
        async move {
            incidents
                .recommend(pb::RecommendRequest {
                    target: Some(pb::recommend_request::Target::Point(pb::LonLat {
                        lon,
                        lat,
                    })),
                    k: 2,
                    kinds: vec![pb::UnitKind::Car as i32],
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let rec = recommend(&mut node).await;
    let ids: Vec<&str> = rec
        .units
        .iter()
        .map(|u| u.unit.as_ref().unwrap().id.as_str())
        .collect();
    assert_eq!(ids, ["car-home", "car-near"], "{rec:?}");
    assert!(rec.units[0].reason.contains("home zone"), "{rec:?}");
    assert!(rec.units[0].eta_s > rec.units[1].eta_s, "{rec:?}");
    // 5 km away it is no longer within the margin.
    walk(&mut node, "car-home", &[(now_ms() - 100, at(5_000.0, 0.0))]).await;
    let rec = recommend(&mut node).await;
    assert_eq!(
        rec.units[0].unit.as_ref().unwrap().id,
        "car-near",
        "{rec:?}"
    );

    // Bad input: clear errors, nothing changes.
    let bad = |geojson: &str| pb::PutZoneRequest {
        geojson: geojson.into(),
        id: "bad".into(),
        ..Default::default()
    };
    let off_globe = square(0.0, 0.0, 10.0, 10.0).replacen(&format!("[{LON}"), "[181", 1);
    let cases = vec![
        (Code::InvalidArgument, "geojson", bad("")),
        (Code::InvalidArgument, "type", bad(r#"{"type":"Point"}"#)),
        (Code::InvalidArgument, "181", bad(&off_globe)),
        (Code::InvalidArgument, "JSON", bad("{not json")),
    ];
    for (code, names, request) in cases {
        let err = node.zones.put_zone(request).await.unwrap_err();
        assert_eq!(err.code(), code, "{err:?}");
        assert!(
            err.message().to_lowercase().contains(&names.to_lowercase()),
            "{names}: {err:?}"
        );
    }
    let err = node
        .zones
        .set_home_zone(pb::SetHomeZoneRequest {
            unit_id: "car-near".into(),
            zone_id: "nowhere".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains("nowhere"), "{err:?}");
    let err = node
        .zones
        .remove_zone(pb::RemoveZoneRequest {
            zone_id: "nowhere".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    // Removing a zone is on the stream and it is gone.
    let removed = node
        .zones
        .remove_zone(pb::RemoveZoneRequest {
            zone_id: "centre-east".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.zone.unwrap().id, "centre-east");
    loop {
        if let Some(Kind::Zone(z)) = next_event(&mut room).await.kind
            && z.zone_id == "centre-east"
        {
            assert_eq!(z.kind, pb::ZoneChangeKind::Removed as i32);
            break;
        }
    }
    let listed = node
        .zones
        .list_zones(pb::ListZonesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(zone_ids(&listed.zones), ["centre"]);
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn with_redis_every_node_and_a_restarted_one_holds_the_same_zones() {
    let redis = RedisServer::start();
    let dir = tempdir::Dir::new("zones-redis");
    let redis_config = || {
        let mut config = config_with_zones(&dir);
        config.redis.urls = vec![redis.url()];
        config.redis.response_timeout_ms = 2_000;
        config
    };
    let mut a = TestNode::start_with(redis_config()).await;
    let mut b = TestNode::start_with(redis_config()).await;
    // b started after a had put the file's zones: it puts nothing again.
    let version = |zones: &pb::ListZonesResponse, id: &str| {
        zones.zones.iter().find(|z| z.id == id).map(|z| z.version)
    };
    let on_a = a
        .zones
        .list_zones(pb::ListZonesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(version(&on_a, "centre"), Some(1), "{on_a:?}");

    // A zone put on a, a home zone set on a: b has both once it has
    // applied the log.
    let put = a
        .zones
        .put_zone(pb::PutZoneRequest {
            geojson: square(1_000.0, 1_000.0, 1_500.0, 1_500.0),
            id: "harbour".into(),
            name: "Harbour".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .zone
        .unwrap();
    assert_eq!(put.version, 1);
    a.register("car-1", pb::UnitKind::Car).await;
    a.zones
        .set_home_zone(pb::SetHomeZoneRequest {
            unit_id: "car-1".into(),
            zone_id: "harbour".into(),
        })
        .await
        .unwrap();
    let mut seen = None;
    for _ in 0..100 {
        if let Ok(reply) = zones_of(&mut b, "car-1").await
            && reply.home_zone_id == "harbour"
        {
            seen = Some(reply);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen.is_some(), "node b never saw car-1's home zone");
    let on_b = b
        .zones
        .list_zones(pb::ListZonesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        zone_ids(&on_b.zones),
        ["centre", "centre-east", "harbour"],
        "{on_b:?}"
    );
    assert_eq!(version(&on_b, "centre"), Some(1), "{on_b:?}");
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();

    // A node started on the same region later replays it all.
    let mut c = TestNode::start_with(redis_config()).await;
    let on_c = c
        .zones
        .list_zones(pb::ListZonesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(zone_ids(&on_c.zones), ["centre", "centre-east", "harbour"]);
    assert_eq!(version(&on_c, "centre"), Some(1), "{on_c:?}");
    let home = zones_of(&mut c, "car-1").await.unwrap();
    assert_eq!(home.home_zone_id, "harbour");
    c.server.shutdown().await.unwrap();
}
