//! Splat ordering and bucketing for compressed (level >= 1) SplatBuffers.
//!
//! Compressed centres are 16-bit offsets from a bucket centre, so every splat
//! must sit in a bucket whose centre is within half a block of it. The
//! reference generator (`SplatPartitioner` + `computeBucketsForUncompressed-
//! SplatArray`) does this in two steps that we reproduce:
//!
//! 1. sort splats by squared distance of their (scene-centre-relative,
//!    0.5-grid-snapped) position from the scene centre;
//! 2. walk that order, dropping each splat into the cubic block of side
//!    `block_size` (anchored at the minimum corner) that contains it. A block's
//!    open bucket becomes "full" and is emitted as soon as it holds
//!    `bucket_size` splats; the remainders are "partially filled" buckets
//!    emitted afterwards in block order.
//!
//! One deliberate difference: upstream keys blocks by a linear id built from
//! `ceil(extent / block_size)` blocks per axis, which collides when an extent
//! is an exact multiple of the block size or zero (a flat scene), merging far
//! apart splats into one bucket and clamping their offsets. Keying by the
//! block coordinate triple has no collisions and yields the same order
//! whenever upstream's ids are collision-free.

use std::collections::HashMap;

use super::Gaussian;

/// Grid the reference partitioner snaps positions to before measuring.
const SORT_SNAP: f64 = 0.5;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bucket {
    /// Centre kept in f64: the reference computes offsets against the f64
    /// centre and only rounds it to f32 when storing it.
    pub(crate) centre: [f64; 3],
    /// Indices into the gaussian slice, in write order.
    pub(crate) members: Vec<u32>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Buckets {
    pub(crate) full: Vec<Bucket>,
    pub(crate) partial: Vec<Bucket>,
}

impl Buckets {
    pub(crate) fn len(&self) -> usize {
        self.full.len() + self.partial.len()
    }

    /// Full buckets first, then partial ones: the order the format requires.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Bucket> {
        self.full.iter().chain(self.partial.iter())
    }
}

fn position(g: &[Gaussian], index: u32) -> [f64; 3] {
    g[index as usize].position.map(f64::from)
}

/// Sorts `indices` nearest-first from `centre`. Ties keep input order, which
/// makes output deterministic (upstream's comparator never returns 0, so its
/// tie order is an accident of the JS engine's sort).
pub(crate) fn sort_by_distance(g: &[Gaussian], indices: &mut [u32], centre: [f32; 3]) {
    let centre = centre.map(f64::from);
    let mut keyed: Vec<(f64, u32)> = indices
        .iter()
        .map(|&i| {
            let p = position(g, i);
            let d = [0, 1, 2].map(|a| ((p[a] - centre[a]) / SORT_SNAP).floor() * SORT_SNAP);
            (d[0] * d[0] + d[1] * d[1] + d[2] * d[2], i)
        })
        .collect();
    keyed.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (slot, (_, i)) in indices.iter_mut().zip(keyed) {
        *slot = i;
    }
}

/// Groups `order` (already distance-sorted, positions finite) into buckets.
pub(crate) fn build(g: &[Gaussian], order: &[u32], block_size: f64, bucket_size: usize) -> Buckets {
    let mut min = [f64::INFINITY; 3];
    for &i in order {
        let p = position(g, i);
        for a in 0..3 {
            min[a] = min[a].min(p[a]);
        }
    }
    let half = block_size / 2.0;

    let mut open: Vec<([u64; 3], Bucket)> = Vec::new();
    let mut slot_of: HashMap<[u64; 3], usize> = HashMap::new();
    let mut full = Vec::new();
    for &i in order {
        let p = position(g, i);
        // Non-negative by construction; `as` saturates absurd extents.
        let block = [0, 1, 2].map(|a| ((p[a] - min[a]) / block_size).floor() as u64);
        let slot = *slot_of.entry(block).or_insert_with(|| {
            let centre = [0, 1, 2].map(|a| block[a] as f64 * block_size + min[a] + half);
            open.push((
                block,
                Bucket {
                    centre,
                    members: Vec::new(),
                },
            ));
            open.len() - 1
        });
        let bucket = &mut open[slot].1;
        bucket.members.push(i);
        if bucket.members.len() >= bucket_size {
            full.push(Bucket {
                centre: bucket.centre,
                members: std::mem::take(&mut bucket.members),
            });
        }
    }

    let mut partial: Vec<([u64; 3], Bucket)> = open
        .into_iter()
        .filter(|(_, b)| !b.members.is_empty())
        .collect();
    partial.sort_unstable_by_key(|(block, _)| *block);
    Buckets {
        full,
        partial: partial.into_iter().map(|(_, b)| b).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(x: f32, y: f32, z: f32) -> Gaussian {
        Gaussian {
            position: [x, y, z],
            ..Gaussian::default()
        }
    }

    #[test]
    fn sorts_by_snapped_distance_with_stable_ties() {
        let g = vec![
            at(3.0, 0.0, 0.0),
            at(0.1, 0.0, 0.0),
            at(0.4, 0.0, 0.0),
            at(-1.0, 0.0, 0.0),
        ];
        let mut idx: Vec<u32> = (0..4).collect();
        sort_by_distance(&g, &mut idx, [0.0; 3]);
        // 0.1 and 0.4 both snap to 0 and keep input order; -1.0 snaps to -1.
        assert_eq!(idx, vec![1, 2, 3, 0]);
    }

    #[test]
    fn fills_full_buckets_then_partial_in_block_order() {
        let mut g = Vec::new();
        for i in 0..5 {
            g.push(at(10.0 + i as f32 * 0.01, 0.0, 0.0)); // block (2,0,0) after min shift
        }
        g.push(at(0.0, 0.0, 0.0)); // block (0,0,0)
        g.push(at(0.0, 6.0, 0.0)); // block (0,1,0)
        let order: Vec<u32> = (0..g.len() as u32).collect();
        let b = build(&g, &order, 5.0, 2);
        assert_eq!(b.full.len(), 2);
        assert_eq!(b.full[0].members, vec![0, 1]);
        assert_eq!(b.full[1].members, vec![2, 3]);
        let partial: Vec<Vec<u32>> = b.partial.iter().map(|p| p.members.clone()).collect();
        assert_eq!(partial, vec![vec![5], vec![6], vec![4]]);
        assert_eq!(b.partial[0].centre, [2.5, 2.5, 2.5]);
        assert_eq!(b.partial[1].centre, [2.5, 7.5, 2.5]);
        assert_eq!(b.full[0].centre, [12.5, 2.5, 2.5]);
    }

    #[test]
    fn flat_scene_does_not_merge_distant_blocks() {
        // All y and z equal: upstream's linear ids would collide here.
        let g: Vec<Gaussian> = (0..4).map(|i| at(i as f32 * 6.0, 1.0, 1.0)).collect();
        let order: Vec<u32> = (0..4).collect();
        let b = build(&g, &order, 5.0, 256);
        assert_eq!(b.partial.len(), 4);
        for (bucket, &i) in b.partial.iter().zip(&order) {
            let p = g[i as usize].position;
            assert!((f64::from(p[0]) - bucket.centre[0]).abs() <= 2.5);
        }
    }
}
