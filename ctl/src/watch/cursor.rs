//! Where the client is in the server's event log, and the sequence rules
//! (from `CommandRoom/Watch` in the proto): after a snapshot, without a bbox,
//! change `n` must be followed by change `n + 1`; with a bbox seqs may skip
//! (the box filters out changes elsewhere) but never go back. Anything else
//! is a [`Gap`], recorded and reported, never hidden.

/// A break in the promised sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gap {
    pub expected: u64,
    pub got: u64,
}

impl Gap {
    pub(crate) fn describe(&self) -> String {
        if self.got < self.expected {
            format!(
                "SEQ WENT BACKWARDS: expected {}, got {} (event ignored)",
                self.expected, self.got
            )
        } else {
            format!(
                "SEQ GAP: expected {}, got {} ({} events missing; the server promises none)",
                self.expected,
                self.got,
                self.got - self.expected
            )
        }
    }

    /// A change older than the last one applied: it is ignored.
    pub(crate) fn is_backwards(&self) -> bool {
        self.got < self.expected
    }
}

/// The last seq applied, the log epoch it belongs to, and every gap seen.
#[derive(Debug)]
pub(super) struct Cursor {
    /// Without a bbox seqs must be consecutive; with one, only increasing.
    consecutive: bool,
    /// The last change applied (or the seq the snapshot reflects). `None`
    /// until the first snapshot, and again after a Resync until the next.
    last_seq: Option<u64>,
    /// The server log's epoch that `last_seq` belongs to (0: unknown).
    epoch: u64,
    gaps: Vec<Gap>,
}

impl Cursor {
    /// `bbox_filtered`: the stream is limited to a box, so seqs may skip.
    pub(super) fn new(bbox_filtered: bool) -> Self {
        Self {
            consecutive: !bbox_filtered,
            last_seq: None,
            epoch: 0,
            gaps: Vec::new(),
        }
    }

    /// Starts from a seq the caller already processed, in `epoch`.
    pub(super) fn resume_from(&mut self, seq: u64, epoch: u64) {
        self.last_seq = Some(seq);
        self.epoch = epoch;
    }

    /// A snapshot reflecting every change up to `seq` of `epoch` arrived.
    pub(super) fn snapshot_at(&mut self, seq: u64, epoch: u64) {
        self.resume_from(seq, epoch);
    }

    /// A Resync: nothing to resume from until the next snapshot ends.
    pub(super) fn forget(&mut self) {
        self.last_seq = None;
    }

    pub(super) fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    pub(super) fn gaps(&self) -> &[Gap] {
        &self.gaps
    }

    /// Checks a change's seq against the last one, moves forward and records
    /// any gap. Before the first snapshot there is nothing to check against.
    pub(super) fn check(&mut self, seq: u64) -> Option<Gap> {
        let last = self.last_seq?;
        // Backwards is always wrong; skipping only without a bbox.
        let broken = seq <= last || (self.consecutive && seq != last + 1);
        let gap = broken.then_some(Gap {
            expected: last + 1,
            got: seq,
        });
        if seq > last {
            self.last_seq = Some(seq);
        }
        if let Some(gap) = gap {
            self.gaps.push(gap);
        }
        gap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_seqs_pass_and_skips_are_gaps() {
        let mut c = Cursor::new(false);
        assert_eq!(c.check(5), None, "nothing to check before a snapshot");
        assert_eq!(c.last_seq(), None);
        c.snapshot_at(10, 3);
        assert_eq!(c.check(11), None);
        assert_eq!(
            c.check(13),
            Some(Gap {
                expected: 12,
                got: 13
            })
        );
        assert_eq!(c.last_seq(), Some(13));
        let back = c.check(12).unwrap();
        assert!(back.is_backwards());
        assert_eq!(c.last_seq(), Some(13), "a stale seq does not move back");
        assert_eq!(c.gaps().len(), 2);
        assert_eq!(c.epoch(), 3);
    }

    #[test]
    fn with_a_bbox_only_going_back_is_a_gap() {
        let mut c = Cursor::new(true);
        c.snapshot_at(1, 1);
        assert_eq!(c.check(7), None);
        assert_eq!(c.check(100), None);
        assert!(c.check(100).is_some());
    }

    #[test]
    fn forgetting_drops_the_resume_point_but_keeps_the_gaps() {
        let mut c = Cursor::new(false);
        c.resume_from(4, 2);
        assert!(c.check(9).is_some());
        c.forget();
        assert_eq!(c.last_seq(), None);
        assert_eq!(c.check(50), None);
        assert_eq!(c.gaps().len(), 1);
    }

    #[test]
    fn gap_texts() {
        let gap = Gap {
            expected: 12,
            got: 14,
        };
        assert_eq!(
            gap.describe(),
            "SEQ GAP: expected 12, got 14 (2 events missing; the server promises none)"
        );
        let back = Gap {
            expected: 15,
            got: 13,
        };
        assert_eq!(
            back.describe(),
            "SEQ WENT BACKWARDS: expected 15, got 13 (event ignored)"
        );
    }
}
