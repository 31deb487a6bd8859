//! A least-significant-digit radix sort of integer values, for the value-count tables' groups
//! (`confidence`'s bit patterns, `reviews`' delays): each group's values are sorted on their
//! own, and a group of tens of thousands of 64-bit values sorts in a few passes over 11-bit
//! digits instead of the comparisons of a general sort: at 10^7 confidences in groups of 60
//! thousand, 5 ns a value against the standard unstable sort's 9.4 ns (BENCHMARKS.md,
//! twenty-third session).

/// A value with a 64-bit key that orders like it: `a < b` exactly when `a.key() < b.key()`.
pub(crate) trait RadixKey: Copy + Ord {
    fn key(self) -> u64;
}

impl RadixKey for u64 {
    fn key(self) -> u64 {
        self
    }
}

impl RadixKey for i64 {
    fn key(self) -> u64 {
        // The sign bit flipped: negative numbers below positive ones, each in order.
        (self as u64) ^ (1 << 63)
    }
}

/// The digit's width in bits: six digits cover a key.
const BITS: u32 = 11;
const DIGITS: usize = 64usize.div_ceil(BITS as usize);
const MASK: u64 = (1 << BITS) - 1;

/// Below this many values a slice is sorted by comparisons: a radix pass costs two reads and
/// a write of every value plus its 2048 counts, more than a short slice's comparisons.
const RADIX_FROM: usize = 2048;

/// Sorts `values` ascending. `scratch` is working space, reused between calls (grown to the
/// slice's length when shorter). Digits that are the same in every value are not passed
/// over: the exponent's of confidences in [0, 1], the high digits of short delays.
pub(crate) fn sort<T: RadixKey>(values: &mut [T], scratch: &mut Vec<T>) {
    let n = values.len();
    if n < RADIX_FROM {
        values.sort_unstable();
        return;
    }
    // Counts and positions are 32-bit: a group holds fewer values than that.
    debug_assert!(n <= u32::MAX as usize);
    // All digits' counts in one read of the values.
    let mut counts = vec![[0u32; 1 << BITS]; DIGITS];
    let first = values[0].key();
    let mut differ = 0u64;
    for v in values.iter() {
        let k = v.key();
        differ |= k ^ first;
        for (b, c) in counts.iter_mut().enumerate() {
            c[((k >> (BITS as usize * b)) & MASK) as usize] += 1;
        }
    }
    if scratch.len() < n {
        scratch.resize(n, values[0]);
    }
    let scratch = &mut scratch[..n];
    // Values are moved from `values` to `scratch` and back, one pass per digit that differs.
    let mut in_scratch = false;
    for (b, c) in counts.iter().enumerate() {
        if (differ >> (BITS as usize * b)) & MASK == 0 {
            continue;
        }
        let mut at = [0u32; 1 << BITS];
        let mut sum = 0u32;
        for (slot, &count) in at.iter_mut().zip(c.iter()) {
            *slot = sum;
            sum += count;
        }
        let (from, to): (&[T], &mut [T]) = if in_scratch {
            (&*scratch, &mut *values)
        } else {
            (&*values, &mut *scratch)
        };
        for &v in from {
            let d = ((v.key() >> (BITS as usize * b)) & MASK) as usize;
            to[at[d] as usize] = v;
            at[d] += 1;
        }
        in_scratch = !in_scratch;
    }
    if in_scratch {
        values.copy_from_slice(scratch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (SplitMix64).
    fn numbers(seed: u64, n: usize) -> Vec<u64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = s;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            })
            .collect()
    }

    fn sorted_like_the_standard_sort<T: RadixKey + std::fmt::Debug>(values: Vec<T>) {
        let mut expected = values.clone();
        expected.sort();
        let mut got = values;
        // A scratch longer than the slice, holding values of its own.
        let mut scratch = got.iter().chain(got.iter()).copied().collect();
        sort(&mut got, &mut scratch);
        assert_eq!(got, expected);
    }

    #[test]
    fn sorts_as_the_standard_sort_does() {
        for n in [0, 1, 2, 2047, 2048, 2049, 9000, 70_000] {
            let raw = numbers(n as u64 + 7, n);
            // Full 64-bit values, all bytes differing.
            sorted_like_the_standard_sort(raw.clone());
            // Confidences in [0, 1] as bit patterns (equal high bytes), with repeats.
            sorted_like_the_standard_sort(
                raw.iter()
                    .map(|&x| ((x % 1000) as f64 / 999.0).to_bits())
                    .collect(),
            );
            // Signed values around zero, both signs, and the extremes.
            let mut signed: Vec<i64> = raw.iter().map(|&x| (x as i64) >> 40).collect();
            signed.extend([i64::MIN, i64::MAX, 0, -1]);
            sorted_like_the_standard_sort(signed);
            // All equal: no pass at all.
            sorted_like_the_standard_sort(vec![42u64; n]);
        }
    }

    #[test]
    fn one_differing_digit_leaves_the_values_sorted_from_the_scratch() {
        // One pass (an odd number): the sorted values come back from the scratch.
        let values: Vec<u64> = (0..5000u64).map(|i| (i * 37 % 2048) << 22).collect();
        sorted_like_the_standard_sort(values);
    }
}
