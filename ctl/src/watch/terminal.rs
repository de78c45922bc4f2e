//! Terminal drawing: the rendered text framed with ANSI escape codes so the
//! live view redraws in place without flicker and without a TUI library.

/// Clears the whole screen (once, when the live view starts).
pub(crate) const CLEAR_SCREEN: &str = "\x1b[2J";

/// The screen text as one write: cursor home, each line cleared to its end,
/// everything below the last line cleared. Gap and resync alarms are in
/// inverse video, so they cannot be missed.
pub(crate) fn frame(screen: &str) -> String {
    let mut text = String::from("\x1b[H");
    for line in screen.lines() {
        if is_alarm(line) {
            text.push_str(&format!("\x1b[7m{line}\x1b[0m\x1b[K\n"));
        } else {
            text.push_str(&format!("{line}\x1b[K\n"));
        }
    }
    text.push_str("\x1b[J");
    text
}

fn is_alarm(line: &str) -> bool {
    line.contains("!!") || line.contains("RESYNC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarms_are_in_inverse_video_and_every_line_is_cleared() {
        let framed = frame("header\n!! 1 seq gaps\nRESYNC (lagged)\nunits\n");
        assert_eq!(
            framed,
            "\x1b[Hheader\x1b[K\n\
             \x1b[7m!! 1 seq gaps\x1b[0m\x1b[K\n\
             \x1b[7mRESYNC (lagged)\x1b[0m\x1b[K\n\
             units\x1b[K\n\x1b[J"
        );
    }
}
