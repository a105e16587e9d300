//! Data parallelism without a dependency (and the poison-tolerant `lock` the threaded
//! parts share): one contiguous part of the work per core, on
//! scoped threads, results in input order (so a parallel run equals a sequential one).

/// Locks `m`, taking the data even if a thread panicked while holding it (every user
/// of a lock here leaves its data consistent between statements).
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Threads worth starting: the cores, at most 8.
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
}

/// `f(i, &items[i])` for every item, in order, with the items split into one contiguous
/// part per thread. One item or one core: no thread is started.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let parts = threads().min(items.len()).max(1);
    if parts == 1 {
        return items.iter().enumerate().map(|(i, t)| f(i, t)).collect();
    }
    let chunk = items.len().div_ceil(parts);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(j, t)| f(c * chunk + j, t))
                        .collect::<Vec<R>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            // A panic in `f` is re-raised here, as it would be sequentially.
            out.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_back_in_input_order() {
        for n in [0usize, 1, 2, 3, 17, 1000] {
            let items: Vec<usize> = (0..n).collect();
            let out = super::map(&items, |i, &x| (i, x * 2));
            assert_eq!(out, (0..n).map(|i| (i, i * 2)).collect::<Vec<_>>());
        }
    }
}
