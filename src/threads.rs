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

/// `f` of every item, the items split into one contiguous batch per worker thread (at most
/// `max` threads); the results in item order. A panic in `f` is resumed in the caller.
pub(crate) fn map_batches<T: Sync, R: Send>(
    items: &[T],
    max: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let per = items.len().div_ceil(workers().min(max).max(1)).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|batch| scope.spawn(move || batch.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_item_order_whatever_the_thread_count() {
        let items: Vec<u32> = (0..1001).collect();
        for max in [1, 2, 3, 64] {
            let out = map_batches(&items, max, |&i| i * 2);
            assert_eq!(
                out,
                (0..1001).map(|i| i * 2).collect::<Vec<u32>>(),
                "max {max}"
            );
        }
        assert!(map_batches(&[] as &[u32], 2, |&i| i).is_empty());
    }
}
