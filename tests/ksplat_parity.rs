//! Byte-level parity with the reference generator: the same PLY converted by
//! `@mkkellogg/gaussian-splats-3d`'s own PlyParser + SplatBufferGenerator
//! (`verify/generate.mjs`) and by this crate must give the same file.
//!
//! Only the order of splats *within the sequence of buckets* may differ:
//! upstream's distance sort uses a comparator that never reports equality, so
//! which of several equally distant splats fills a bucket first is up to the
//! JS engine. Everything that defines the file is order-independent and is
//! compared exactly: both headers, the partially-filled bucket lengths, and
//! the multiset of (bucket centre, 24-byte splat record) pairs.

mod common;

use common::ksplat::{ml_sharp_ply, node, synthetic_gaussians};
use immichvr::assets::ksplat::{convert, Options};

const HEADER: usize = 4096;
const SECTION: usize = 1024;

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

/// Every splat record prefixed by its bucket's stored centre, sorted.
fn bucketed_records(b: &[u8]) -> Vec<Vec<u8>> {
    let s = HEADER;
    let (buckets, full, partial) = (u32_at(b, s + 12), u32_at(b, s + 32), u32_at(b, s + 36));
    let bucket_size = u32_at(b, s + 8);
    let base = HEADER + SECTION;
    let centres = base + 4 * partial;
    let records = centres + 12 * buckets;
    let mut sizes = vec![bucket_size; full];
    sizes.extend((0..partial).map(|k| u32_at(b, base + 4 * k)));
    let mut out = Vec::new();
    let mut at = records;
    for (k, &n) in sizes.iter().enumerate() {
        let centre = &b[centres + 12 * k..centres + 12 * k + 12];
        for _ in 0..n {
            out.push([centre, &b[at..at + 24]].concat());
            at += 24;
        }
    }
    assert_eq!(at, b.len(), "records fill the file exactly");
    out.sort_unstable();
    out
}

fn parity_for(seed: u64, count: usize) {
    let input = synthetic_gaussians(count, seed);
    let ply = ml_sharp_ply(&input);
    let opts = Options {
        keep_fraction: 1.0,
        ..Options::default()
    };
    let ours = convert(&ply, &opts).expect("convert");

    // Hand upstream exactly our (f32) centre, printed as the f64 it widens
    // to so JS parses the identical value.
    let centre: Vec<String> = [24, 28, 32]
        .iter()
        .map(|&at| {
            let v = f32::from_le_bytes([ours[at], ours[at + 1], ours[at + 2], ours[at + 3]]);
            format!("{:?}", f64::from(v))
        })
        .collect();
    let ply_path = node::scratch(&format!("parity-{seed}.ply"));
    let theirs_path = node::scratch(&format!("parity-{seed}.ksplat"));
    std::fs::write(&ply_path, &ply).expect("write ply");
    let mut args: Vec<std::ffi::OsString> = vec![ply_path.into(), theirs_path.clone().into()];
    args.extend(centre.into_iter().map(Into::into));
    node::run("generate.mjs", &args);
    let theirs = std::fs::read(&theirs_path).expect("read upstream ksplat");

    assert_eq!(ours.len(), theirs.len(), "file size");
    assert_eq!(ours[..HEADER], theirs[..HEADER], "main header");
    assert_eq!(
        ours[HEADER..HEADER + SECTION],
        theirs[HEADER..HEADER + SECTION],
        "section header"
    );
    let partial = u32_at(&ours, HEADER + 36);
    let lengths = HEADER + SECTION..HEADER + SECTION + 4 * partial;
    assert_eq!(
        ours[lengths.clone()],
        theirs[lengths],
        "partial bucket lengths"
    );

    let (a, b) = (bucketed_records(&ours), bucketed_records(&theirs));
    let differing = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert_eq!(
        differing,
        0,
        "records differ, first: {:?}",
        a.iter().zip(&b).find(|(x, y)| x != y)
    );
    let identical = ours == theirs;
    eprintln!(
        "seed {seed}: {count} gaussians, same content; whole file byte-identical: {identical}"
    );
}

#[test]
fn matches_reference_generator_byte_for_byte() {
    if !node::ready() {
        return;
    }
    parity_for(21, 5000);
    parity_for(22, 1234);
}
