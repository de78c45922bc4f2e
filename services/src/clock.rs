//! The only clock the server reads. The core never reads it: time arrives
//! there as the `time` of each command's envelope.

use std::time::{SystemTime, UNIX_EPOCH};

use patrol_dispatcher::Millis;

/// Wall-clock Unix milliseconds.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}
