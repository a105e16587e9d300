//! The built-in synthetic trace: seeded, deterministic demand for a fleet.
//!
//! Per proxy, at a fixed step (default 1 minute): a daily cycle (peak hour varies per
//! proxy), a weekly cycle (weekends lower), a slow trend, multiplicative noise, one flash
//! crowd (a fast ramp to 2.5–4× followed by an hour-long decay) and, for every third
//! proxy (the first included), a data gap of 30–60 minutes with no samples. Demand scales
//! with the proxy's configured capacity so every proxy is interesting. Bandwidth in Mbps;
//! connections as a count. The generator is a splitmix64 stream: the same seed and
//! inputs give the same trace, bit for bit.

use std::f64::consts::TAU;
use std::time::Duration;

use crate::time::Timestamp;
use crate::trace::{Series, Trace};

/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 0x5EED_6AA9;

/// 2026-11-02T00:00:00Z, a Monday: the default start of the synthetic trace.
pub const DEFAULT_START: Timestamp = Timestamp::from_secs(1_793_577_600);

/// A small, fast, seedable PRNG (splitmix64).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }
    /// Approximately standard normal (Irwin–Hall of four uniforms, rescaled).
    pub fn normal(&mut self) -> f64 {
        let s = self.next_f64() + self.next_f64() + self.next_f64() + self.next_f64();
        (s - 2.0) * 1.732_050_8
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct SyntheticSpec {
    pub start: Timestamp,
    pub days: u32,
    pub step: Duration,
    pub seed: u64,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        SyntheticSpec {
            start: DEFAULT_START,
            days: 7,
            step: Duration::from_secs(60),
            seed: DEFAULT_SEED,
        }
    }
}

impl SyntheticSpec {
    pub fn end(&self) -> Timestamp {
        self.start + Duration::from_secs(u64::from(self.days) * 86_400)
    }
}

/// One proxy to generate demand for: its id and its configured capacity (the scale).
#[derive(Clone, Debug)]
pub struct Target {
    pub id: String,
    pub bandwidth: u32,
    pub concurrent: u32,
}

impl Target {
    /// A proxy's id and its configured capacity (the demand is scaled to it).
    pub fn of(proxy: &crate::core::ProxyState) -> Target {
        Target {
            id: proxy.id.clone(),
            bandwidth: proxy.bandwidth,
            concurrent: proxy.concurrent,
        }
    }
}

/// Generates the trace: every bandwidth signal name gets the Mbps series, every
/// connection signal name the connection-count series. Proxies are generated in parallel
/// (each from its own stream, so the result does not depend on the thread count).
pub fn generate(
    spec: &SyntheticSpec,
    targets: &[Target],
    bandwidth_signals: &[String],
    connection_signals: &[String],
) -> Trace {
    let generated = crate::par::map(targets, |k, t| proxy_series(spec, k, t));
    let mut trace = Trace::default();
    for (target, (bw, conn)) in targets.iter().zip(generated) {
        for (signals, series) in [(bandwidth_signals, bw), (connection_signals, conn)] {
            // Every name but the last gets a copy; the last takes the series itself.
            if let Some((last, others)) = signals.split_last() {
                for s in others {
                    trace
                        .series
                        .insert((target.id.clone(), s.clone()), series.clone());
                }
                trace
                    .series
                    .insert((target.id.clone(), last.clone()), series);
            }
        }
    }
    trace
}

/// The bandwidth and connection series of the `k`-th proxy.
fn proxy_series(spec: &SyntheticSpec, k: usize, target: &Target) -> (Series, Series) {
    let mut g = ProxyGen::new(spec, k, target);
    let mut bw = Series::default();
    let mut conn = Series::default();
    bw.times.reserve(g.n);
    bw.values.reserve(g.n);
    conn.times.reserve(g.n);
    conn.values.reserve(g.n);
    g.until(i64::MAX, |t, b, c| {
        bw.times.push(t);
        bw.values.push(b);
        conn.times.push(t);
        conn.values.push(c);
    });
    (bw, conn)
}

/// One proxy's demand, generated step by step (the same numbers whether generated at
/// once or a chunk at a time).
#[derive(Clone, Debug)]
pub struct ProxyGen {
    rng: SplitMix64,
    start: i64,
    step_ms: i64,
    n: usize,
    /// The next step.
    i: usize,
    peak_bw: f64,
    peak_conn: f64,
    peak_hour: f64,
    weekend: f64,
    trend: f64,
    noise: f64,
    flash_at: f64,
    flash_peak: f64,
    gap: Option<(i64, i64)>,
    per_day: Option<i64>,
    /// The daily cycle at each step of a day (when steps divide the day), shared.
    table: std::sync::Arc<Vec<f64>>,
}

impl ProxyGen {
    /// The generator of the `k`-th proxy.
    pub fn new(spec: &SyntheticSpec, k: usize, target: &Target) -> ProxyGen {
        let step_ms = spec.step.as_millis().max(1) as i64;
        let n = (i64::from(spec.days) * 86_400_000 / step_ms) as usize;
        // Each proxy has its own stream, so adding proxies does not change the others.
        let mut rng = SplitMix64::new(spec.seed ^ (k as u64).wrapping_mul(0xA24B_AED4_963E_E407));
        let peak_bw = f64::from(target.bandwidth.max(1)) * rng.range(0.6, 1.6);
        let peak_conn = f64::from(target.concurrent.max(1)) * 10_000.0 * rng.range(0.3, 0.9);
        let peak_hour = rng.range(10.0, 22.0);
        let weekend = rng.range(0.55, 0.85);
        let trend = rng.range(-0.1, 0.2) / f64::from(spec.days.max(1));
        let noise = rng.range(0.03, 0.08);
        let days = f64::from(spec.days.max(1));
        let flash_at = rng.range(0.2, 0.9) * days * 86_400_000.0;
        let flash_peak = rng.range(2.5, 4.0);
        let gap = k.is_multiple_of(3).then(|| {
            let at = rng.range(0.1, 0.9) * days * 86_400_000.0;
            (
                at as i64,
                at as i64 + rng.range(1_800_000.0, 3_600_000.0) as i64,
            )
        });
        let per_day = (86_400_000 % step_ms == 0 && spec.start.millis() % step_ms == 0)
            .then(|| 86_400_000 / step_ms);
        let table: Vec<f64> = per_day
            .map(|m| {
                (0..m)
                    .map(|i| daily_at((i * step_ms) as f64 / 3_600_000.0, peak_hour))
                    .collect()
            })
            .unwrap_or_default();
        ProxyGen {
            rng,
            start: spec.start.millis(),
            step_ms,
            n,
            i: 0,
            peak_bw,
            peak_conn,
            peak_hour,
            weekend,
            trend,
            noise,
            flash_at,
            flash_peak,
            gap,
            per_day,
            table: std::sync::Arc::new(table),
        }
    }

    /// Generates the samples dated before `until`: `out(time, Mbps, connections)`.
    /// Returns the time of the next sample (i64::MAX when done).
    pub fn until(&mut self, until: i64, mut out: impl FnMut(i64, f64, f64)) -> i64 {
        while self.i < self.n {
            let i = self.i;
            let off = i as i64 * self.step_ms;
            let t = self.start + off;
            if t >= until {
                return t;
            }
            self.i += 1;
            if let Some((a, b)) = self.gap
                && off >= a
                && off < b
            {
                continue;
            }
            let hours = off as f64 / 3_600_000.0;
            let daily = match self.per_day {
                Some(m) => self.table[(t.div_euclid(self.step_ms) % m) as usize],
                None => daily_at(
                    (t.rem_euclid(86_400_000)) as f64 / 3_600_000.0,
                    self.peak_hour,
                ),
            };
            let day_index = (t.div_euclid(86_400_000) + 3) % 7; // 0 = Monday
            let week = if day_index >= 5 { self.weekend } else { 1.0 };
            let level = (0.25 + 0.75 * daily) * week * (1.0 + self.trend * hours / 24.0);
            let flash = flash_factor(off as f64 - self.flash_at, self.flash_peak);
            let shape = level * flash;
            let b = self.peak_bw * shape * (1.0 + self.noise * self.rng.normal());
            let c = self.peak_conn * shape * (1.0 + self.noise * self.rng.normal());
            out(t, b.max(0.0), c.max(0.0).round());
        }
        i64::MAX
    }
}

/// The daily cycle: 1 at the peak hour, 0 twelve hours away.
fn daily_at(hour_of_day: f64, peak_hour: f64) -> f64 {
    0.5 + 0.5 * (TAU * (hour_of_day - peak_hour) / 24.0).cos()
}

/// One proxy's generated chunk: (time, Mbps, connections).
type Chunk = Vec<(i64, f64, f64)>;

/// The synthetic trace as a [`SampleSource`]: each proxy's demand generated a chunk at a
/// time, in parallel over the proxies (each from its own stream: the same numbers as
/// [`generate`]).
pub struct SyntheticSource {
    /// Per proxy: its generator and the slots of its bandwidth and connection signals.
    gens: Vec<(ProxyGen, Vec<usize>, Vec<usize>)>,
    /// Per proxy: the chunk generated (time, Mbps, connections).
    chunks: Vec<Chunk>,
    targets: Vec<Target>,
    spec: SyntheticSpec,
    signals: (Vec<String>, Vec<String>),
}

impl SyntheticSource {
    pub fn new(
        spec: &SyntheticSpec,
        targets: &[Target],
        bandwidth_signals: &[String],
        connection_signals: &[String],
    ) -> SyntheticSource {
        SyntheticSource {
            gens: Vec::new(),
            chunks: Vec::new(),
            targets: targets.to_vec(),
            spec: spec.clone(),
            signals: (bandwidth_signals.to_vec(), connection_signals.to_vec()),
        }
    }
}

impl crate::sim::source::SampleSource for SyntheticSource {
    fn fill(
        &mut self,
        slots: &mut crate::sim::source::Slots,
        until: i64,
        _max: usize,
    ) -> Result<i64, crate::sim::source::SourceError> {
        if self.gens.is_empty() && !self.targets.is_empty() {
            let (bws, conns) = &self.signals;
            let spec = &self.spec;
            self.gens = self
                .targets
                .iter()
                .enumerate()
                .map(|(k, t)| {
                    let find = |names: &[String]| -> Vec<usize> {
                        names.iter().filter_map(|s| slots.find(&t.id, s)).collect()
                    };
                    (ProxyGen::new(spec, k, t), find(bws), find(conns))
                })
                .collect();
            self.chunks = vec![Vec::new(); self.targets.len()];
        }
        // Generate in parallel (each proxy its own stream), then deliver in proxy order.
        let mut work: Vec<(&mut ProxyGen, &mut Chunk)> = self
            .gens
            .iter_mut()
            .map(|g| &mut g.0)
            .zip(self.chunks.iter_mut())
            .collect();
        let threads = crate::par::threads().min(work.len()).max(1);
        let per = work.len().div_ceil(threads).max(1);
        let next = std::thread::scope(|scope| {
            let handles: Vec<_> = work
                .chunks_mut(per)
                .map(|part| {
                    scope.spawn(move || {
                        let mut next = i64::MAX;
                        for (g, chunk) in part.iter_mut() {
                            chunk.clear();
                            next = next.min(g.until(until, |t, b, c| chunk.push((t, b, c))));
                        }
                        next
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("synthetic generator thread"))
                .min()
                .unwrap_or(i64::MAX)
        });
        for ((_, bw, conn), chunk) in self.gens.iter().zip(&self.chunks) {
            for &(t, b, c) in chunk {
                for &s in bw {
                    slots.push(s, t, b);
                }
                for &s in conn {
                    slots.push(s, t, c);
                }
            }
        }
        Ok(next)
    }
}

/// A flash crowd `dt` ms after its start: a 5-minute ramp to `peak`, then an exponential
/// decay back to 1 with a 30-minute time constant.
fn flash_factor(dt: f64, peak: f64) -> f64 {
    const RAMP: f64 = 300_000.0;
    // Twelve hours on, the excess is below 1e-10: treat it as over.
    if !(0.0..43_200_000.0).contains(&dt) {
        1.0
    } else if dt < RAMP {
        1.0 + (peak - 1.0) * dt / RAMP
    } else {
        1.0 + (peak - 1.0) * (-(dt - RAMP) / 1_800_000.0).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_values() {
        // Reference outputs of splitmix64 seeded with 1234567.
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn shape_has_a_flash_crowd_and_a_gap() {
        let spec = SyntheticSpec {
            days: 2,
            ..SyntheticSpec::default()
        };
        let targets = [Target {
            id: "link-a".into(),
            bandwidth: 100,
            concurrent: 5,
        }];
        let trace = generate(
            &spec,
            &targets,
            &["bandwidth".into()],
            &["connections".into()],
        );
        let s = trace.series("link-a", "bandwidth").unwrap();
        assert!(s.len() < 2 * 1440, "the first proxy has a gap");
        let gaps = s.times.windows(2).filter(|w| w[1] - w[0] > 60_000).count();
        assert_eq!(gaps, 1);
        let max = s.values.iter().cloned().fold(0.0, f64::max);
        let mean = s.values.iter().sum::<f64>() / s.len() as f64;
        assert!(max > 2.5 * mean, "flash crowd: max {max} vs mean {mean}");
        assert!(s.values.iter().all(|v| v.is_finite() && *v >= 0.0));
    }
}
