//! Words, numbers and tables for people: enum values as lowercase words
//! (`en_route`, `e_bike`) both ways, bounding boxes, UTC times, ages, and a
//! plain-text table that truncates long cells.

use patrol_proto::v1::{
    BoundingBox, CredentialKind, EtaMethod, ExclusionReason, IncidentSource, IncidentStatus,
    PingRejectReason, ResyncReason, Role, UnitAlertKind, UnitKind, UnitStatus, ZoneChangeKind,
};

/// A protobuf enum whose values are shown as lowercase words: the proto name
/// without its type prefix (`UNIT_STATUS_EN_ROUTE` is `en_route`).
pub(crate) trait EnumWord: Copy + PartialEq + TryFrom<i32> + 'static {
    /// The proto name prefix shared by every value, e.g. `UNIT_STATUS_`.
    const PREFIX: &'static str;
    /// What the enum is called in messages, e.g. `unit status`.
    const WHAT: &'static str;
    fn proto_name(self) -> &'static str;
    fn from_proto_name(name: &str) -> Option<Self>;
}

macro_rules! enum_word {
    ($ty:ty, $prefix:literal, $what:literal) => {
        impl EnumWord for $ty {
            const PREFIX: &'static str = $prefix;
            const WHAT: &'static str = $what;
            fn proto_name(self) -> &'static str {
                self.as_str_name()
            }
            fn from_proto_name(name: &str) -> Option<Self> {
                Self::from_str_name(name)
            }
        }
    };
}

enum_word!(UnitKind, "UNIT_KIND_", "unit kind");
enum_word!(UnitStatus, "UNIT_STATUS_", "unit status");
enum_word!(ZoneChangeKind, "ZONE_CHANGE_KIND_", "zone change");
enum_word!(IncidentStatus, "INCIDENT_STATUS_", "incident status");
enum_word!(IncidentSource, "INCIDENT_SOURCE_", "incident source");
enum_word!(ExclusionReason, "EXCLUSION_REASON_", "exclusion reason");
enum_word!(
    PingRejectReason,
    "PING_REJECT_REASON_",
    "ping reject reason"
);
enum_word!(ResyncReason, "RESYNC_REASON_", "resync reason");
enum_word!(UnitAlertKind, "UNIT_ALERT_KIND_", "unit alert kind");
enum_word!(EtaMethod, "ETA_METHOD_", "ETA method");
enum_word!(Role, "ROLE_", "role");
enum_word!(CredentialKind, "CREDENTIAL_KIND_", "credential kind");

/// `UnitStatus::EnRoute` as `en_route`.
pub(crate) fn word<E: EnumWord>(value: E) -> String {
    let name = value.proto_name();
    name.strip_prefix(E::PREFIX)
        .unwrap_or(name)
        .to_ascii_lowercase()
}

/// A raw wire value as a word; values this build does not know show as
/// `unknown(9)` rather than failing, since newer servers may send them.
pub(crate) fn word_of<E: EnumWord>(raw: i32) -> String {
    match E::try_from(raw) {
        Ok(value) => word(value),
        Err(_) => format!("unknown({raw})"),
    }
}

/// Every value but UNSPECIFIED (0), as words, for help and error messages.
pub(crate) fn words<E: EnumWord>() -> Vec<String> {
    (1..64)
        .filter_map(|raw| E::try_from(raw).ok())
        .map(word)
        .collect()
}

/// Parses `en_route`, `EN_ROUTE`, `en-route` or the full proto name.
/// UNSPECIFIED is never accepted: it means "not given" on the wire.
pub(crate) fn parse_word<E: EnumWord>(text: &str) -> Result<E, String> {
    let upper = text.trim().replace('-', "_").to_ascii_uppercase();
    let full = if upper.starts_with(E::PREFIX) {
        upper
    } else {
        format!("{}{upper}", E::PREFIX)
    };
    E::from_proto_name(&full)
        .filter(|value| E::try_from(0).ok() != Some(*value))
        .ok_or_else(|| {
            format!(
                "unknown {} {text:?}; expected one of: {}",
                E::WHAT,
                words::<E>().join(", ")
            )
        })
}

/// Parses `WEST,SOUTH,EAST,NORTH` in WGS84 degrees (x = longitude, y = latitude).
pub(crate) fn parse_bbox(text: &str) -> Result<BoundingBox, String> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [west, south, east, north] = parts.as_slice() else {
        return Err(format!(
            "bbox {text:?} must be WEST,SOUTH,EAST,NORTH (4 numbers), got {} parts",
            parts.len()
        ));
    };
    let number = |name: &str, s: &str| -> Result<f64, String> {
        s.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("bbox {name} {s:?} is not a number"))
    };
    let bbox = BoundingBox {
        west: number("west", west)?,
        south: number("south", south)?,
        east: number("east", east)?,
        north: number("north", north)?,
    };
    let lon_ok = |v: f64| (-180.0..=180.0).contains(&v);
    let lat_ok = |v: f64| (-90.0..=90.0).contains(&v);
    if !(lon_ok(bbox.west) && lon_ok(bbox.east) && lat_ok(bbox.south) && lat_ok(bbox.north)) {
        return Err(format!("bbox {text:?} is outside -180..180 / -90..90"));
    }
    if bbox.west > bbox.east || bbox.south > bbox.north {
        return Err(format!(
            "bbox {text:?} needs west <= east and south <= north"
        ));
    }
    Ok(bbox)
}

/// `HH:MM:SS` (UTC) of a Unix time in milliseconds; `-` for 0 (not set).
pub(crate) fn clock(unix_ms: i64) -> String {
    if unix_ms == 0 {
        return "-".into();
    }
    let secs = unix_ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `YYYY-MM-DD HH:MM:SSZ` of a Unix time in milliseconds; `-` for 0.
pub(crate) fn date_time(unix_ms: i64) -> String {
    if unix_ms == 0 {
        return "-".into();
    }
    // Civil-from-days (Howard Hinnant), proleptic Gregorian calendar.
    let days = unix_ms.div_euclid(86_400_000) + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {}Z", clock(unix_ms))
}

/// How long before `now_ms` something happened: `12s ago`, `5m ago`, `3h ago`,
/// `2d ago`; `in 4s` for times ahead of the local clock; `-` for 0.
pub(crate) fn age(then_ms: i64, now_ms: i64) -> String {
    if then_ms == 0 {
        return "-".into();
    }
    let delta = now_ms.saturating_sub(then_ms);
    let span = duration(delta.unsigned_abs() / 1000);
    if delta < 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// Whole seconds as the largest fitting unit: `42s`, `7m`, `3h`, `2d`.
pub(crate) fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// An estimated time of arrival in seconds: `45s`, `3m20s`.
pub(crate) fn eta(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".into();
    }
    let s = secs.round() as u64;
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// Metres: `350 m`, `2.4 km`.
pub(crate) fn metres(m: f64) -> String {
    if !m.is_finite() {
        "-".into()
    } else if m < 1000.0 {
        format!("{m:.0} m")
    } else {
        format!("{:.1} km", m / 1000.0)
    }
}

/// Orders text with embedded numbers by value: `Car 2` before `Car 10`.
pub(crate) fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, String)> {
        let mut out: Vec<(bool, String)> = Vec::new();
        for c in s.chars() {
            let digit = c.is_ascii_digit();
            match out.last_mut() {
                Some((d, chunk)) if *d == digit => chunk.push(c),
                _ => out.push((digit, c.to_string())),
            }
        }
        out
    }
    let key = |s: &str| {
        chunks(s)
            .into_iter()
            .map(|(digit, chunk)| {
                // Numbers compare by length first (no leading-zero games), then digits.
                let trimmed = chunk.trim_start_matches('0').to_string();
                if digit {
                    (0, trimmed.len(), trimmed)
                } else {
                    (1, 0, chunk)
                }
            })
            .collect::<Vec<_>>()
    };
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}

/// A cell at most `max` characters wide, ending in `~` when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('~');
        cut
    }
}

/// A left-aligned plain-text table: columns as wide as their widest cell,
/// capped per column, separated by two spaces.
pub(crate) struct Table {
    headers: Vec<&'static str>,
    max_widths: Vec<usize>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// `columns` are (header, maximum width in characters).
    pub(crate) fn new(columns: &[(&'static str, usize)]) -> Self {
        Self {
            headers: columns.iter().map(|(h, _)| *h).collect(),
            max_widths: columns.iter().map(|(_, w)| *w).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines, header first, without trailing spaces.
    pub(crate) fn lines(&self) -> Vec<String> {
        let cells = |row: &[String]| -> Vec<String> {
            self.max_widths
                .iter()
                .enumerate()
                .map(|(i, max)| truncate(row.get(i).map_or("", String::as_str), *max))
                .collect()
        };
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        let rows: Vec<Vec<String>> = std::iter::once(header)
            .chain(self.rows.iter().map(|r| cells(r)))
            .collect();
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        rows.iter()
            .map(|row| {
                let mut line = String::new();
                for (cell, width) in row.iter().zip(&widths) {
                    line.push_str(&format!("{cell:<width$}  "));
                }
                line.trim_end().to_string()
            })
            .collect()
    }

    /// The table as one string ending in a newline; empty without rows (a
    /// header over nothing says less than the count printed after it).
    pub(crate) fn render(&self) -> String {
        if self.rows.is_empty() {
            return String::new();
        }
        let mut out = self.lines().join("\n");
        out.push('\n');
        out
    }

    /// The table's lines, or the one line `empty` when it has no rows.
    pub(crate) fn lines_or(&self, empty: &str) -> Vec<String> {
        if self.rows.is_empty() {
            vec![empty.to_string()]
        } else {
            self.lines()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_words_round_trip() {
        assert_eq!(word(UnitStatus::EnRoute), "en_route");
        assert_eq!(word(UnitKind::EBike), "e_bike");
        assert_eq!(word_of::<IncidentStatus>(5), "closed");
        assert_eq!(word_of::<UnitKind>(99), "unknown(99)");
        for name in words::<UnitStatus>() {
            assert_eq!(word(parse_word::<UnitStatus>(&name).unwrap()), name);
        }
        assert_eq!(parse_word::<UnitKind>("E-Bike"), Ok(UnitKind::EBike));
        assert_eq!(parse_word::<UnitKind>("UNIT_KIND_CAR"), Ok(UnitKind::Car));
        assert_eq!(
            parse_word::<IncidentSource>("camera_alert"),
            Ok(IncidentSource::CameraAlert)
        );
    }

    #[test]
    fn enum_words_reject_unknown_and_unspecified() {
        let err = parse_word::<UnitKind>("tank").unwrap_err();
        assert!(err.contains("car, foot, e_bike, motorcycle"), "{err}");
        assert!(parse_word::<UnitStatus>("unspecified").is_err());
        assert!(parse_word::<UnitStatus>("").is_err());
    }

    #[test]
    fn bbox_parses_and_validates() {
        let b = parse_bbox("24.93, 60.16,24.96,60.18").unwrap();
        assert_eq!(
            (b.west, b.south, b.east, b.north),
            (24.93, 60.16, 24.96, 60.18)
        );
        assert!(parse_bbox("-10,-5,10,5").is_ok());
        assert!(parse_bbox("1,2,3").unwrap_err().contains("4 numbers"));
        assert!(parse_bbox("1,x,3,4").unwrap_err().contains("south"));
        assert!(parse_bbox("5,0,1,1").unwrap_err().contains("west <= east"));
        assert!(parse_bbox("0,0,200,1").is_err());
        assert!(parse_bbox("0,0,NaN,1").is_err());
    }

    #[test]
    fn times_and_ages() {
        // 2024-05-01 12:03:04.500 UTC
        let t = 1_714_564_984_500;
        assert_eq!(clock(t), "12:03:04");
        assert_eq!(date_time(t), "2024-05-01 12:03:04Z");
        assert_eq!(date_time(951_782_400_000), "2000-02-29 00:00:00Z");
        assert_eq!(clock(0), "-");
        assert_eq!(age(t, t + 12_400), "12s ago");
        assert_eq!(age(t, t + 5 * 60_000), "5m ago");
        assert_eq!(age(t, t + 3 * 3_600_000), "3h ago");
        assert_eq!(age(t + 4_000, t), "in 4s");
        assert_eq!(age(0, t), "-");
        assert_eq!(eta(200.4), "3m20s");
        assert_eq!(metres(349.6), "350 m");
        assert_eq!(metres(2_449.0), "2.4 km");
    }

    #[test]
    fn natural_order_compares_numbers_by_value() {
        let mut names = vec!["Car 10", "Car 2", "Bike 1", "Car 1", "car-02b"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["Bike 1", "Car 1", "Car 2", "Car 10", "car-02b"]);
    }

    #[test]
    fn table_aligns_and_truncates() {
        let mut t = Table::new(&[("ID", 10), ("NAME", 6)]);
        t.row(vec!["a".into(), "short".into()]);
        t.row(vec!["bb".into(), "far too long".into()]);
        assert_eq!(t.lines(), ["ID  NAME", "a   short", "bb  far t~"]);
        assert_eq!(t.render(), "ID  NAME\na   short\nbb  far t~\n");
        let empty = Table::new(&[("ID", 4)]);
        assert_eq!(empty.render(), "");
        assert_eq!(empty.lines_or("none"), ["none"]);
    }
}
