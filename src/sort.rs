//! Sorting with one copy of core's sort in the image.
//!
//! `slice::sort*` is instantiated for every element type and comparator:
//! with the six sorts the loader had, that was 21 KiB of the image
//! (measured, `nm --size-sort`). Here every caller sorts an index order
//! through one `dyn` comparator, so core's unstable sort exists once,
//! made stable by comparing indexes last, and each caller adds only the
//! small permutation step. It allocates (the index order): code that
//! runs before the heap exists sorts in place with core's sort.

use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Ordering;

/// The order that sorts `n` items compared by `cmp` (ties keep their
/// order): `order[k]` is the index of the item that goes to place `k`.
pub fn order(n: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_unstable_by(|&a, &b| cmp(a, b).then(a.cmp(&b)));
    idx
}

/// Sort `v` by `cmp`, stably.
pub fn sort_by<T>(v: &mut [T], cmp: impl Fn(&T, &T) -> Ordering) {
    let idx = order(v.len(), &|a, b| cmp(&v[a], &v[b]));
    // Place k takes the item at idx[k]: follow each cycle with swaps.
    let mut placed = vec![false; v.len()];
    for start in 0..v.len() {
        let mut k = start;
        while !placed[k] {
            placed[k] = true;
            let from = idx[k];
            if from == start {
                break;
            }
            v.swap(k, from);
            k = from;
        }
    }
}

/// Sort `v` by the key `key` gives, stably.
pub fn sort_by_key<T, K: Ord>(v: &mut [T], key: impl Fn(&T) -> K) {
    sort_by(v, |a, b| key(a).cmp(&key(b)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_stably_like_core() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for n in [0usize, 1, 2, 3, 7, 64, 300] {
            let mut v: Vec<(u8, usize)> = (0..n)
                .map(|i| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    ((seed % 5) as u8, i)
                })
                .collect();
            let mut want = v.clone();
            want.sort_by_key(|p| p.0);
            sort_by_key(&mut v, |p| p.0);
            assert_eq!(v, want, "n = {n}");
        }
        let mut s = vec!["b", "c", "a"];
        sort_by(&mut s, |a, b| a.cmp(b));
        assert_eq!(s, ["a", "b", "c"]);
    }
}
