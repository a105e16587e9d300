//! Where a replay's samples come from: a [`SampleSource`] delivers them in time order, a
//! bounded chunk at a time, into [`Slots`] (one per series the replay reads). The replay
//! ([`super::replay`]) evaluates every time before which all samples are in, then drops
//! all but the last sample of each series: memory is bounded by the chunk and the fleet,
//! not by the time span.
//!
//! Sources: an in-memory [`Trace`] ([`TraceSource`], behind [`super::replay::replay`]),
//! the synthetic generator ([`super::synthetic::SyntheticSource`], generated on the fly)
//! a time-sorted metrics CSV ([`super::csv::CsvSource`]) and Prometheus range queries
//! fetched a window at a time ([`PromSource`]).

use std::collections::HashMap;

use super::PolicySet;
use crate::fleet::Fleet;
use crate::metrics::Prometheus;
use crate::time::Timestamp;
use crate::trace::{Series, Trace};

/// The series a replay reads, by (proxy, signal): the samples delivered and not dropped.
#[derive(Debug, Default)]
pub struct Slots {
    keys: Vec<(String, String)>,
    index: HashMap<(String, String), usize>,
    bufs: Vec<Series>,
    /// Per slot: the first sample the warm-up has not seen.
    fresh: Vec<usize>,
    buffered: usize,
}

impl Slots {
    /// The slot of (proxy, signal), made if new.
    pub fn slot(&mut self, proxy: &str, signal: &str) -> usize {
        let key = (proxy.to_string(), signal.to_string());
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        self.keys.push(key.clone());
        self.index.insert(key, self.bufs.len());
        self.bufs.push(Series::default());
        self.fresh.push(0);
        self.bufs.len() - 1
    }
    /// The slot of (proxy, signal), if the replay reads it.
    pub fn find(&self, proxy: &str, signal: &str) -> Option<usize> {
        self.index
            .get(&(proxy.to_string(), signal.to_string()))
            .copied()
    }
    /// Every slot's (proxy, signal), by slot.
    pub fn keys(&self) -> &[(String, String)] {
        &self.keys
    }
    /// One sample (a source delivers each series in time order).
    #[inline]
    pub fn push(&mut self, slot: usize, t: i64, v: f64) {
        let s = &mut self.bufs[slot];
        s.times.push(t);
        s.values.push(v);
        self.buffered += 1;
    }
    /// Samples held now.
    pub fn buffered(&self) -> usize {
        self.buffered
    }
    pub(crate) fn series(&self) -> &[Series] {
        &self.bufs
    }
    /// The samples of `slot` the warm-up has not seen yet.
    pub(crate) fn fresh(&self, slot: usize) -> (&[i64], &[f64]) {
        let s = &self.bufs[slot];
        let f = self.fresh[slot].min(s.times.len());
        (&s.times[f..], &s.values[f..])
    }
    /// Every sample held has been seen by the warm-up.
    pub(crate) fn mark_seen(&mut self) {
        for (f, s) in self.fresh.iter_mut().zip(&self.bufs) {
            *f = s.times.len();
        }
    }
    /// Keeps only the last sample of each series: the only one a later reading (at a time
    /// after every sample held) can use.
    pub(crate) fn compact(&mut self) {
        self.buffered = 0;
        for (s, f) in self.bufs.iter_mut().zip(&mut self.fresh) {
            let n = s.times.len();
            if n > 1 {
                s.times.drain(..n - 1);
                s.values.drain(..n - 1);
            }
            *f = s.times.len();
            self.buffered += s.times.len();
        }
    }
}

/// Why a source could not deliver.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SourceError {
    /// A bad input file (exit 1): the message names the file and line.
    #[error(transparent)]
    Csv(#[from] super::csv::CsvError),
    /// A metrics file not sorted by time (the streaming reader's one requirement).
    #[error("{file}:{line}: {message}")]
    Unsorted {
        file: String,
        line: u64,
        message: String,
    },
    /// A fetch that failed (`environment`: the server could not be reached, exit 2).
    #[error("{message}")]
    Fetch { message: String, environment: bool },
}

/// Samples in time order, in chunks.
pub trait SampleSource {
    /// Delivers into `slots` the samples dated before `until` not delivered yet, of the
    /// series `slots` holds (others are skipped), stopping early after about `max`
    /// samples. Returns the time before which every sample is now delivered: `until` or
    /// later, earlier when `max` stopped it, `i64::MAX` once the source has ended.
    fn fill(&mut self, slots: &mut Slots, until: i64, max: usize) -> Result<i64, SourceError>;
}

/// An in-memory trace as a source.
pub struct TraceSource<'a> {
    trace: &'a Trace,
    /// Per slot read: (slot, series, next sample); made at the first fill.
    entries: Option<Vec<(usize, &'a Series, usize)>>,
}

impl<'a> TraceSource<'a> {
    pub fn new(trace: &'a Trace) -> TraceSource<'a> {
        TraceSource {
            trace,
            entries: None,
        }
    }
}

impl SampleSource for TraceSource<'_> {
    fn fill(&mut self, slots: &mut Slots, until: i64, _max: usize) -> Result<i64, SourceError> {
        let trace = self.trace;
        let entries = self.entries.get_or_insert_with(|| {
            slots
                .keys()
                .iter()
                .enumerate()
                .filter_map(|(i, (p, s))| trace.series(p, s).map(|series| (i, series, 0)))
                .collect()
        });
        let mut next = i64::MAX;
        for (slot, series, cursor) in entries.iter_mut() {
            while *cursor < series.times.len() && series.times[*cursor] < until {
                slots.push(*slot, series.times[*cursor], series.values[*cursor]);
                *cursor += 1;
            }
            if let Some(&t) = series.times.get(*cursor) {
                next = next.min(t);
            }
        }
        Ok(next)
    }
}

/// Prometheus as a [`SampleSource`]: each policy's queries over its managed proxies,
/// fetched a window at a time (each policy from its own start: the predictive lookback before
/// the replay's), every window's samples delivered before the next is fetched.
pub struct PromSource<'a> {
    url: &'a str,
    prom: &'a Prometheus,
    runtime: tokio::runtime::Runtime,
    /// Per policy with proxies: (the policy, its proxies, its first time (ms)).
    parts: Vec<(&'a crate::policy::Policy, Vec<String>, i64)>,
    /// The start of the next window (ms) and the end of the range (ms, inclusive).
    next: i64,
    end: i64,
    window_ms: i64,
}

impl<'a> PromSource<'a> {
    /// The queries of `set`'s policies for the proxies each manages over [start, end],
    /// fetched `window_ms` at a time (whole seconds).
    pub fn new(
        url: &'a str,
        prom: &'a Prometheus,
        set: &'a PolicySet,
        fleet: &Fleet,
        start: Timestamp,
        end: Timestamp,
        window_ms: i64,
    ) -> Result<PromSource<'a>, SourceError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SourceError::Fetch {
                message: format!("cannot start the async runtime: {e}"),
                environment: true,
            })?;
        let parts: Vec<_> = set
            .policies
            .iter()
            .enumerate()
            .filter_map(|(pi, policy)| {
                let ids: Vec<String> = set.managed_by(pi, fleet).map(str::to_string).collect();
                let from = match policy.predictive.mode {
                    crate::policy::PredictiveMode::Off => start,
                    _ => start - policy.predictive.lookback,
                };
                (!ids.is_empty()).then_some((policy, ids, from.millis()))
            })
            .collect();
        let next = parts.iter().map(|p| p.2).min().unwrap_or(i64::MAX);
        Ok(PromSource {
            url,
            prom,
            runtime,
            parts,
            next,
            end: end.millis(),
            window_ms: window_ms.max(1000),
        })
    }
}

impl SampleSource for PromSource<'_> {
    fn fill(&mut self, slots: &mut Slots, until: i64, _max: usize) -> Result<i64, SourceError> {
        while self.next <= self.end && self.next < until {
            // Whole seconds: [a, b] holds every grid point of the window once.
            let a = self.next;
            let b = (a + self.window_ms - 1000).min(self.end);
            for (policy, ids, from) in &self.parts {
                let lo = a.max(*from);
                if lo > b {
                    continue;
                }
                let fetched = self.runtime.block_on(self.prom.fetch_range(
                    std::slice::from_ref(*policy),
                    ids,
                    Timestamp(lo),
                    Timestamp(b),
                    |_, _| {},
                ));
                let trace = fetched.map_err(|e| SourceError::Fetch {
                    environment: e.is_environment(),
                    message: if e.is_environment() {
                        format!("{e} (while fetching the history from {})", self.url)
                    } else {
                        format!("policy `{}`: {e}", policy.name)
                    },
                })?;
                for ((p, sig), series) in &trace.series {
                    if let Some(slot) = slots.find(p, sig) {
                        for (t, v) in series.times.iter().zip(&series.values) {
                            slots.push(slot, *t, *v);
                        }
                    }
                }
            }
            // The next window starts on the next whole second.
            self.next = (b.div_euclid(1000) + 1) * 1000;
        }
        Ok(if self.next > self.end {
            i64::MAX
        } else {
            self.next
        })
    }
}
