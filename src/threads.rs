//! Worker threads for the native passes (ingest's id index, routing, the statistics tasks).

/// The worker thread count: `POLARS_MAX_THREADS` when set (`--threads` sets it for the compute
/// engine too), else the machine's parallelism; between 1 and 64.
pub(crate) fn workers() -> usize {
    std::env::var("POLARS_MAX_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .clamp(1, 64)
}

/// `a()` and `b()` side by side (`a` on a thread of its own); a panic in either is resumed in
/// the caller.
pub(crate) fn join<A: Send, B>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B) -> (A, B) {
    std::thread::scope(|scope| {
        let a = scope.spawn(a);
        let b = b();
        (a.join().unwrap_or_else(|e| std::panic::resume_unwind(e)), b)
    })
}

/// `f(i)` for every `i` in `0..n`, split into one contiguous range per worker thread (at most
/// `max` threads); the results in index order. A panic in `f` is resumed in the caller.
pub(crate) fn map_range<R: Send>(n: usize, max: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let per = n.div_ceil(workers().min(max).max(1)).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .step_by(per)
            .map(|first| {
                scope.spawn(move || (first..(first + per).min(n)).map(f).collect::<Vec<R>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// `f(i)` for every `i` in `0..n` on `threads` threads (at least one), thread `t` taking
/// `t`, `t + threads`, …; the results in index order. For work that waits on the device
/// (direct transfers of spill files): more threads than cores keep the cores busy while some
/// wait. A panic in `f` is resumed in the caller.
pub(crate) fn map_interleaved<R: Send>(
    n: usize,
    threads: usize,
    f: impl Fn(usize) -> R + Sync,
) -> Vec<R> {
    let threads = threads.clamp(1, n.max(1));
    let f = &f;
    let per_thread: Vec<Vec<R>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| scope.spawn(move || (t..n).step_by(threads).map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut iters: Vec<_> = per_thread.into_iter().map(Vec::into_iter).collect();
    (0..n).filter_map(|i| iters[i % threads].next()).collect()
}

/// `f(offset, part)` for contiguous parts of `items`, one per worker thread, where `offset` is
/// the index of the part's first item; the results in part order. A panic in `f` is resumed
/// in the caller.
pub(crate) fn map_parts_mut<T: Send, R: Send>(
    items: &mut [T],
    f: impl Fn(usize, &mut [T]) -> R + Sync,
) -> Vec<R> {
    let per = items.len().div_ceil(workers()).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks_mut(per)
            .enumerate()
            .map(|(c, part)| scope.spawn(move || f(c * per, part)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_parts_keep_index_order_whatever_the_thread_count() {
        for max in [1, 2, 3, 64] {
            let out = map_range(1001, max, |i| i * 2);
            assert_eq!(
                out,
                (0..1001).map(|i| i * 2).collect::<Vec<usize>>(),
                "max {max}"
            );
        }
        assert!(map_range(0, 2, |i| i).is_empty());
        for threads in [0, 1, 3, 4, 2000] {
            let seen = std::sync::Mutex::new(std::collections::HashSet::new());
            let out = map_interleaved(1001, threads, |i| {
                seen.lock().unwrap().insert(std::thread::current().id());
                i * 3
            });
            assert_eq!(
                out,
                (0..1001).map(|i| i * 3).collect::<Vec<usize>>(),
                "{threads} threads"
            );
            assert!(seen.into_inner().unwrap().len() <= threads.max(1));
        }
        assert!(map_interleaved(0, 4, |i| i).is_empty());
        assert_eq!(join(|| 1, || "b"), (1, "b"));
        let mut items = vec![0usize; 1001];
        let lengths = map_parts_mut(&mut items, |offset, part| {
            for (o, x) in part.iter_mut().enumerate() {
                *x = offset + o;
            }
            part.len()
        });
        assert_eq!(items, (0..1001).collect::<Vec<usize>>());
        assert_eq!(lengths.iter().sum::<usize>(), 1001);
        assert!(map_parts_mut(&mut [] as &mut [usize], |_, _| unreachable!("no parts")).is_empty());
    }
}
