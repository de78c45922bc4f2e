//! Hostile input for every decoder, as proptest generators run by
//! `cargo test`: ping batches (the zero-copy [`PingBatch`] and
//! [`from_wire::pings`]), alerts ([`from_wire::new_alert`] into a real core),
//! zones ([`from_wire::zone_spec`]), Frigate events ([`Bridge::on_payload`])
//! and config files (TOML → [`Config`] → `validate` → the start-up parts).
//!
//! The generators are structure-aware: valid messages with one field made
//! hostile (NaN, infinities, huge or negative times, empty, huge, unicode or
//! control-character ids, duplicated fields), then byte or text mutations
//! (truncation, flipped bytes, inserted garbage). Every target asserts that
//! nothing panics and that what is accepted is sane and what is refused names
//! its field. Any input that ever broke a decoder stays below as a plain
//! `#[test]`.
//!
//! Each target runs a bounded number of cases (a few seconds in a debug
//! build); `PROPTEST_CASES=100000 cargo test -p patrol-services fuzz` runs
//! them longer.
//!
//! [`PingBatch`]: patrol_proto::shared::PingBatch
//! [`from_wire::pings`]: crate::convert::from_wire::pings
//! [`from_wire::new_alert`]: crate::convert::from_wire::new_alert
//! [`from_wire::zone_spec`]: crate::convert::from_wire::zone_spec
//! [`Bridge::on_payload`]: crate::frigate::Bridge::on_payload
//! [`Config`]: crate::Config

mod alerts;
mod config;
mod frigate;
mod pings;
mod zones;

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

/// Server time of every target, Unix ms.
const NOW: i64 = 1_700_000_000_000;
/// Fix and alert times may be this far ahead of `NOW`, ms.
const TOLERANCE_MS: i64 = 5_000;

/// `cases` per target unless `PROPTEST_CASES` says otherwise; no
/// regression files (a failure becomes a plain `#[test]` instead).
fn cases(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}

/// Strings a hostile client sends: empty, ordinary, any unicode, control
/// characters, long.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z]{1,8}-[0-9]{1,3}",
        any::<String>(),
        "[\\x00-\\x1f\\x7f]{1,8}",
        "[a-z]{0,4}[\\u{0}\\u{202e}\\u{feff}\\u{1F600}][a-z]{0,4}",
        "x{100,400}",
        "é{500,3000}",
    ]
}

/// Doubles a hostile client sends: in range, any bits, the edges.
fn hostile_f64(range: std::ops::RangeInclusive<f64>) -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => range,
        2 => any::<f64>(),
        1 => prop::sample::select(vec![
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            -0.0,
            180.000_000_1,
            -90.000_000_1,
            1e300,
        ]),
    ]
}

fn hostile_f32(range: std::ops::Range<f32>) -> impl Strategy<Value = f32> {
    prop_oneof![
        4 => range,
        2 => any::<f32>(),
        1 => prop::sample::select(vec![
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            -0.0,
            -1.0,
        ]),
    ]
}

/// Times a hostile client sends, Unix ms.
fn hostile_time() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => (NOW - 3_600_000)..=(NOW + 2 * TOLERANCE_MS),
        2 => any::<i64>(),
        1 => prop::sample::select(vec![0, -1, 1, i64::MIN, i64::MAX, NOW + TOLERANCE_MS, NOW + TOLERANCE_MS + 1]),
    ]
}

/// A byte-level mutation of an encoded message.
#[derive(Debug, Clone)]
enum ByteMutation {
    Keep,
    Truncate(prop::sample::Index),
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
    Remove(prop::sample::Index, usize),
}

fn byte_mutation() -> impl Strategy<Value = ByteMutation> {
    prop_oneof![
        3 => Just(ByteMutation::Keep),
        1 => any::<prop::sample::Index>().prop_map(ByteMutation::Truncate),
        2 => (any::<prop::sample::Index>(), 1..=255u8).prop_map(|(i, x)| ByteMutation::Flip(i, x)),
        1 => (any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..12))
            .prop_map(|(i, b)| ByteMutation::Insert(i, b)),
        1 => (any::<prop::sample::Index>(), 1..8usize).prop_map(|(i, n)| ByteMutation::Remove(i, n)),
    ]
}

impl ByteMutation {
    fn apply(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        let at = |i: &prop::sample::Index, len: usize| if len == 0 { 0 } else { i.index(len) };
        match self {
            ByteMutation::Keep => {}
            ByteMutation::Truncate(i) => bytes.truncate(at(i, bytes.len())),
            ByteMutation::Flip(i, x) => {
                if !bytes.is_empty() {
                    let i = at(i, bytes.len());
                    bytes[i] ^= x;
                }
            }
            ByteMutation::Insert(i, more) => {
                let i = at(i, bytes.len() + 1);
                bytes.splice(i..i, more.iter().copied());
            }
            ByteMutation::Remove(i, n) => {
                let i = at(i, bytes.len());
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
            }
        }
        bytes
    }
}
