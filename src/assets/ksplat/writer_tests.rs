//! Unit tests for the KSPLAT writer, using a minimal reader written from the
//! format description (the Node test checks against the real library).

use super::super::numeric::half_to_f32;
use super::*;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_bits(u32_at(b, at))
}

#[derive(Debug)]
struct Decoded {
    centre: [f32; 3],
    scale: [f32; 3],
    rotation: [f32; 4],
    rgba: [u8; 4],
}

/// Decodes a single-section file the way the library's `SplatBuffer` does.
fn decode(b: &[u8]) -> Vec<Decoded> {
    let splats = u32_at(b, 16) as usize;
    if u32_at(b, 4) == 0 {
        return Vec::new();
    }
    let sh = HEADER_BYTES;
    let (bucket_count, full, partial) = (
        u32_at(b, sh + 12) as usize,
        u32_at(b, sh + 32),
        u32_at(b, sh + 36),
    );
    let base = HEADER_BYTES + SECTION_HEADER_BYTES;
    let lengths: Vec<usize> = (0..partial as usize)
        .map(|k| u32_at(b, base + 4 * k) as usize)
        .collect();
    let centres_at = base + 4 * partial as usize;
    let records_at = centres_at + BUCKET_BYTES * bucket_count;
    let mut bucket_of = Vec::new();
    for k in 0..full as usize {
        bucket_of.extend(std::iter::repeat_n(k, BUCKET_SIZE as usize));
    }
    for (k, &len) in lengths.iter().enumerate() {
        bucket_of.extend(std::iter::repeat_n(full as usize + k, len));
    }
    assert_eq!(bucket_of.len(), splats);
    let step = f64::from(BUCKET_BLOCK_SIZE) / 2.0 / f64::from(SCALE_RANGE);
    (0..splats)
        .map(|i| {
            let r = records_at + i * BYTES_PER_SPLAT;
            let c = centres_at + bucket_of[i] * BUCKET_BYTES;
            let axis = |a: usize| {
                let q = f64::from(u16_at(b, r + 2 * a)) - f64::from(SCALE_RANGE);
                (q * step + f64::from(f32_at(b, c + 4 * a))) as f32
            };
            let half = |k: usize| half_to_f32(u16_at(b, r + 6 + 2 * k));
            Decoded {
                centre: [axis(0), axis(1), axis(2)],
                scale: [half(0), half(1), half(2)],
                rotation: [half(3), half(4), half(5), half(6)],
                rgba: [b[r + 20], b[r + 21], b[r + 22], b[r + 23]],
            }
        })
        .collect()
}

/// Deterministic spread of gaussians over a 30-unit cube with a dense
/// cluster (to force full buckets).
fn sample(n: usize) -> Vec<Gaussian> {
    let mut rng = super::super::select::SplitMix64::new(99);
    let mut u = move || rng.next_f64() as f32;
    (0..n)
        .map(|i| {
            // Every third splat goes into a 1.5-unit cluster placed mid-block
            // (blocks are anchored at the ~-15 minimum corner).
            let (spread, mid) = if i % 3 == 0 {
                (1.5, [2.5, 4.5, 2.5])
            } else {
                (30.0, [0.0, 2.0, 0.0])
            };
            Gaussian {
                position: [0, 1, 2].map(|a| (u() - 0.5) * spread + mid[a]),
                log_scale: [u() * 6.0 - 7.0, u() * 6.0 - 7.0, u() * 6.0 - 7.0],
                rotation: [u() - 0.5, u() - 0.5, u() - 0.5, u() - 0.5],
                opacity_logit: u() * 10.0 - 4.0,
                f_dc: [u() * 6.0 - 3.0, u() * 6.0 - 3.0, u() * 6.0 - 3.0],
            }
        })
        .collect()
}

const NO_DECIMATION: Options = Options {
    keep_fraction: 1.0,
    seed: 0,
    centre: None,
};

#[test]
fn header_fields_match_the_format() {
    let g = sample(2000);
    let opts = Options {
        centre: Some([1.0, -2.0, 3.5]),
        ..NO_DECIMATION
    };
    let b = to_ksplat(&g, &opts);
    let kept = g
        .iter()
        .filter(|g| alpha_byte(g.opacity_logit) >= ALPHA_THRESHOLD)
        .count() as u32;
    assert!(
        kept > 1000 && kept < 2000,
        "sample should exercise the alpha cut: {kept}"
    );
    assert_eq!((b[0], b[1], b[2], b[3]), (0, 1, 0, 0));
    assert_eq!((u32_at(&b, 4), u32_at(&b, 8)), (1, 1));
    assert_eq!((u32_at(&b, 12), u32_at(&b, 16)), (kept, kept));
    assert_eq!(u16_at(&b, 20), 2);
    assert_eq!(
        [f32_at(&b, 24), f32_at(&b, 28), f32_at(&b, 32)],
        [1.0, -2.0, 3.5]
    );
    assert_eq!((f32_at(&b, 36), f32_at(&b, 40)), (-1.5, 1.5));
    assert!(b[44..HEADER_BYTES].iter().all(|&x| x == 0));

    let s = &b[HEADER_BYTES..HEADER_BYTES + SECTION_HEADER_BYTES];
    let (buckets, full, partial) = (u32_at(s, 12), u32_at(s, 32), u32_at(s, 36));
    assert_eq!((u32_at(s, 0), u32_at(s, 4)), (kept, kept));
    assert_eq!(u32_at(s, 8), 256);
    assert_eq!(f32_at(s, 16), 5.0);
    assert_eq!(u16_at(s, 20), 12);
    assert_eq!(u32_at(s, 24), 32767);
    assert_eq!(u16_at(s, 40), 0);
    assert_eq!(buckets, full + partial);
    assert!(full >= 1, "dense cluster must fill a bucket");
    let storage = u32_at(s, 28) as usize;
    assert_eq!(
        storage,
        partial as usize * 4 + buckets as usize * 12 + kept as usize * 24
    );
    assert_eq!(b.len(), HEADER_BYTES + SECTION_HEADER_BYTES + storage);
    assert!(s[44..].iter().all(|&x| x == 0) && s[22..24] == [0, 0] && s[42..44] == [0, 0]);
    let base = HEADER_BYTES + SECTION_HEADER_BYTES;
    let partial_total: u32 = (0..partial as usize)
        .map(|k| u32_at(&b, base + 4 * k))
        .sum();
    assert_eq!(full * 256 + partial_total, kept);
}

#[test]
fn round_trip_through_reference_style_decoder() {
    let g = sample(1500);
    let b = to_ksplat(&g, &NO_DECIMATION);
    let decoded = decode(&b);
    let tol = f64::from(BUCKET_BLOCK_SIZE) / 65534.0 + 1e-5;
    let mut unmatched: Vec<&Gaussian> = g
        .iter()
        .filter(|g| alpha_byte(g.opacity_logit) >= 15)
        .collect();
    assert_eq!(decoded.len(), unmatched.len());
    for d in &decoded {
        let near =
            |g: &&Gaussian| (0..3).all(|a| f64::from((g.position[a] - d.centre[a]).abs()) <= tol);
        let k = unmatched
            .iter()
            .position(near)
            .expect("decoded splat matches an input");
        let src = unmatched.swap_remove(k);
        for a in 0..3 {
            let want = src.log_scale[a].exp();
            assert!(
                (d.scale[a] - want).abs() <= want / 1024.0,
                "{} vs {want}",
                d.scale[a]
            );
        }
        let n = normalised_rotation(src.rotation);
        for (&got, want) in d.rotation.iter().zip(n) {
            assert!((f64::from(got) - want).abs() < 2e-3);
        }
        let colour: Vec<u8> = src.f_dc.iter().map(|&c| colour_byte(c)).collect();
        assert_eq!(&d.rgba[..3], &colour[..]);
        assert_eq!(d.rgba[3], alpha_byte(src.opacity_logit));
    }
}

#[test]
fn default_centre_is_centroid_of_written_splats() {
    let g = vec![
        Gaussian {
            position: [1.0, 2.0, 3.0],
            opacity_logit: 5.0,
            ..Gaussian::default()
        },
        Gaussian {
            position: [3.0, 4.0, 5.0],
            opacity_logit: 5.0,
            ..Gaussian::default()
        },
        // Transparent: dropped, so it must not pull the centroid.
        Gaussian {
            position: [100.0, 100.0, 100.0],
            opacity_logit: -9.0,
            ..Gaussian::default()
        },
    ];
    let b = to_ksplat(&g, &NO_DECIMATION);
    assert_eq!(
        [f32_at(&b, 24), f32_at(&b, 28), f32_at(&b, 32)],
        [2.0, 3.0, 4.0]
    );
    assert_eq!(u32_at(&b, 16), 2);
}

#[test]
fn decimation_keeps_floor_fraction_and_is_seeded() {
    let mut g = sample(1000);
    for x in &mut g {
        x.opacity_logit = 5.0; // keep alpha out of the count
    }
    let run = |seed| {
        to_ksplat(
            &g,
            &Options {
                seed,
                ..Options::default()
            },
        )
    };
    let (a, a2, c) = (run(7), run(7), run(8));
    assert_eq!(u32_at(&a, 16), 650);
    assert_eq!(a, a2, "same seed, same bytes");
    assert_ne!(a, c);
    let positions = |b: &[u8]| {
        let mut p: Vec<[u32; 3]> = decode(b)
            .iter()
            .map(|d| d.centre.map(|v| (v * 100.0).round() as u32))
            .collect();
        p.sort_unstable();
        p
    };
    assert_ne!(
        positions(&a),
        positions(&c),
        "different seed picks different splats"
    );
}

#[test]
fn empty_and_fully_transparent_inputs() {
    let empty = to_ksplat(&[], &Options::default());
    assert_eq!(empty.len(), HEADER_BYTES);
    assert_eq!((u32_at(&empty, 4), u32_at(&empty, 16)), (0, 0));

    let faint = vec![
        Gaussian {
            opacity_logit: -10.0,
            ..Gaussian::default()
        };
        3
    ];
    let b = to_ksplat(&faint, &NO_DECIMATION);
    assert_eq!(b.len(), HEADER_BYTES + SECTION_HEADER_BYTES);
    assert_eq!((u32_at(&b, 4), u32_at(&b, 16)), (1, 0));
    assert_eq!(u32_at(&b, HEADER_BYTES + 12), 0);
}

#[test]
fn degenerate_values_stay_decodable() {
    let g = vec![
        Gaussian {
            rotation: [0.0; 4],
            opacity_logit: 5.0,
            log_scale: [30.0, -30.0, 0.0],
            ..Gaussian::default()
        },
        Gaussian {
            position: [f32::NAN, 0.0, 0.0],
            opacity_logit: 5.0,
            ..Gaussian::default()
        },
    ];
    let d = decode(&to_ksplat(&g, &NO_DECIMATION));
    assert_eq!(d.len(), 1, "non-finite position dropped");
    assert_eq!(d[0].rotation, [1.0, 0.0, 0.0, 0.0]);
    assert_eq!(
        d[0].scale,
        [65504.0, 0.0, 1.0],
        "clamped like three.js, not inf"
    );
}
