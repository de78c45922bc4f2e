//! What the phases at one unit count share.

use crate::city::City;
use crate::ingest::IngestSpec;
use crate::report::{Report, count_label};

use super::figures::Figures;
use super::options::Options;

/// One unit count's city, load and figures, and the report they go to.
pub(super) struct Context<'a> {
    pub opts: &'a Options,
    /// Registered units.
    pub n: usize,
    /// `n` as it appears in metric names ("10k", "1m").
    pub label: String,
    pub city: City,
    /// Every unit's starting position (lon, lat): queries see the units there.
    pub home: Vec<(f64, f64)>,
    /// Recommend query points, uniform over the region (lon, lat); with
    /// `--network` placed the way units are.
    pub points: Vec<(f64, f64)>,
    /// The unpaced ingest load.
    pub spec: IngestSpec,
    pub fig: Figures,
    pub report: &'a mut Report,
}

impl<'a> Context<'a> {
    pub(super) fn new(opts: &'a Options, n: usize, report: &'a mut Report) -> Self {
        let city = opts.city(n);
        // Routing over a map: incidents where the people are (on its streets).
        let points = if opts.network_map.is_some() {
            city.centre_weighted_points(opts.queries)
        } else {
            city.query_points(opts.queries)
        };
        let home = city.positions();
        Self {
            opts,
            n,
            label: count_label(n),
            city,
            home,
            points,
            spec: opts.ingest_spec(),
            fig: Figures::default(),
            report,
        }
    }

    /// Whether freshness and dispatch run at this unit count.
    pub(super) fn is_fresh_count(&self) -> bool {
        self.n == self.opts.fresh_units()
    }

    /// Whether any phase needs patrold at this unit count.
    pub(super) fn needs_patrold(&self) -> bool {
        let p = &self.opts.phases;
        self.opts.use_patrold
            && (p.ingest || p.recommend || (self.is_fresh_count() && (p.freshness || p.dispatch)))
    }
}
