//! ZoneService.PutZone's conversion: `from_wire::zone_spec` over hostile
//! ids, names and GeoJSON texts (a real feature, its text mutated), then a
//! real core's `put_zone` and a point query. The GeoJSON reader itself is
//! fuzzed beside it in the dispatcher (`zones::fuzz`).

use patrol_dispatcher::{Dispatcher, LonLat};
use patrol_proto::v1 as pb;
use proptest::prelude::*;

use super::alerts::field_of;
use super::{NOW, byte_mutation, cases, hostile_f64, hostile_string};
use crate::Config;
use crate::convert::from_wire;

/// A Feature around Kallio, or a bare geometry, with one vertex hostile.
fn geojson() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop::sample::select(vec!["Feature", "Polygon", "MultiPolygon", "Point", "", "feature"]),
        hostile_f64(24.90..=24.99),
        hostile_f64(60.15..=60.20),
        prop::sample::select(vec!["zone", "segment", "", "other"]),
        byte_mutation(),
    )
        .prop_map(|(feature, t, lon, lat, kind, mutation)| {
            // NaN and infinities are not JSON: they reach the text as written.
            let number = |v: f64| if v.is_finite() { format!("{v:?}") } else { format!("{v}") };
            let ring = format!(
                "[[24.93,60.17],[{},{}],[24.96,60.19],[24.93,60.19],[24.93,60.17]]",
                number(lon),
                number(lat)
            );
            let geometry = if t == "MultiPolygon" {
                format!(r#"{{"type":"MultiPolygon","coordinates":[[{ring}]]}}"#)
            } else {
                format!(r#"{{"type":"{t}","coordinates":[{ring}]}}"#)
            };
            let text = if feature {
                format!(
                    r#"{{"type":"Feature","id":"kallio","properties":{{"name":"Kallio","kind":"{kind}"}},"geometry":{geometry}}}"#
                )
            } else {
                geometry
            };
            String::from_utf8_lossy(&mutation.apply(text.into_bytes())).into_owned()
        })
}

proptest! {
    #![proptest_config(cases(384))]

    #[test]
    fn fuzz_put_zone(
        geojson in geojson(),
        id in prop_oneof![Just(String::new()), hostile_string()],
        name in prop_oneof![Just(String::new()), hostile_string()],
        probe in (hostile_f64(24.9..=25.0), hostile_f64(60.1..=60.2)),
    ) {
        let mut core = Dispatcher::new(Config::default().dispatcher());
        match from_wire::zone_spec(&pb::PutZoneRequest { geojson, id, name }) {
            Ok(spec) => {
                for c in spec.polygon.0.iter().flat_map(|p| p.exterior().0.iter()) {
                    assert!(LonLat::new(c.x, c.y).is_valid());
                }
                if core.put_zone(spec, NOW).is_ok() {
                    let at = LonLat::new(probe.0, probe.1);
                    let _ = core.zone_at(at);
                    let _ = core.zone_index().signed_distance_m("kallio", at);
                }
            }
            Err(e) => {
                assert!(field_of(&e).is_some(), "refusal names no field: {e}");
                assert!(e.to_string().len() < 2_000, "long refusal: {e}");
            }
        }
    }
}
