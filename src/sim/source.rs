//! Where a replay's samples come from: a [`SampleSource`] delivers them in time order, a
//! bounded chunk at a time, into [`Slots`] (one per series the replay reads). The replay
//! ([`super::replay`]) evaluates every time before which all samples are in, then drops
//! all but the last sample of each series: memory is bounded by the chunk and the fleet,
//! not by the time span.
//!
//! Sources: an in-memory [`Trace`] ([`TraceSource`], behind [`super::replay::replay`]),
//! the synthetic generator ([`super::synthetic::SyntheticSource`], generated on the fly)
//! and a time-sorted metrics CSV ([`super::csv::CsvSource`]).

use std::collections::HashMap;

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
