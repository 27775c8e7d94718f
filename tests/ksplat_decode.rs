//! The point of the crate: files we write must decode correctly with the real
//! `@mkkellogg/gaussian-splats-3d` 0.4.7 loader. Each test converts a
//! synthetic ml-sharp PLY, decodes it with `verify/decode.mjs` in Node, and
//! checks every decoded splat against the PLY input.

mod common;

use std::collections::HashMap;

use common::ksplat::{ml_sharp_ply, node, synthetic_gaussians};
use immichvr::assets::ksplat::{convert, Gaussian, Options};
use serde_json::Value;

const SH_C0: f64 = 0.282_094_791_773_878_14;
/// Level-2 centre step (block / 65534) plus slack for f32 storage of the
/// bucket centre and of the decoded centre (|coordinates| < 30 here).
const POSITION_TOL: f64 = 5.0 / 65534.0 + 1e-5;
const CELL: f64 = 0.01;

fn alpha(g: &Gaussian) -> f64 {
    255.0 / (1.0 + (-f64::from(g.opacity_logit)).exp())
}

fn kept_by_alpha(g: &Gaussian) -> bool {
    alpha(g).floor() >= 15.0
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn decode(name: &str, ksplat: &[u8]) -> Value {
    let path = node::scratch(name);
    std::fs::write(&path, ksplat).expect("write ksplat");
    serde_json::from_str(&node::run("decode.mjs", &[&path])).expect("decoder JSON")
}

fn cell(p: [f64; 3]) -> [i64; 3] {
    p.map(|v| (v / CELL).floor() as i64)
}

/// Finds, for each decoded splat, the unused input within position tolerance
/// and checks its other attributes. Returns how many were matched.
fn check_splats(decoded: &[Value], candidates: &[&Gaussian]) -> usize {
    let mut grid: HashMap<[i64; 3], Vec<usize>> = HashMap::new();
    for (k, g) in candidates.iter().enumerate() {
        grid.entry(cell(g.position.map(f64::from)))
            .or_default()
            .push(k);
    }
    let mut used = vec![false; candidates.len()];
    for (i, s) in decoded.iter().enumerate() {
        let c = nums(&s["center"]);
        let home = cell([c[0], c[1], c[2]]);
        let mut best: Option<(f64, usize)> = None;
        for dx in -1..=1 {
            for dy in -1..=1 {
                for dz in -1..=1 {
                    let key = [home[0] + dx, home[1] + dy, home[2] + dz];
                    for &k in grid.get(&key).into_iter().flatten() {
                        let p = candidates[k].position.map(f64::from);
                        let err = (0..3).map(|a| (p[a] - c[a]).abs()).fold(0.0, f64::max);
                        if !used[k] && err <= POSITION_TOL && best.is_none_or(|(e, _)| err < e) {
                            best = Some((err, k));
                        }
                    }
                }
            }
        }
        let (_, k) = best.unwrap_or_else(|| panic!("decoded splat {i} at {c:?} matches no input"));
        used[k] = true;
        check_attributes(i, s, candidates[k]);
    }
    used.iter().filter(|&&u| u).count()
}

fn check_attributes(i: usize, s: &Value, g: &Gaussian) {
    for (a, got) in nums(&s["scale"]).into_iter().enumerate() {
        let want = f64::from(g.log_scale[a]).exp();
        assert!(
            (got - want).abs() <= want / 1024.0 + 1e-7,
            "splat {i} scale[{a}] {got} vs {want}"
        );
    }

    let color = nums(&s["color"]);
    for (a, &got) in color[..3].iter().enumerate() {
        let want = ((0.5 + SH_C0 * f64::from(g.f_dc[a])).clamp(0.0, 1.0)) * 255.0;
        assert!(
            (got - want).abs() <= 1.0,
            "splat {i} colour[{a}] {got} vs {want}"
        );
    }
    assert!(
        (color[3] - alpha(g)).abs() <= 1.0,
        "splat {i} alpha {} vs {}",
        color[3],
        alpha(g)
    );
    assert!(color[3] >= 15.0);

    let q = g.rotation.map(f64::from);
    let norm = q.iter().map(|c| c * c).sum::<f64>().sqrt();
    let q = q.map(|c| c / norm);
    let r = nums(&s["rotation_wxyz"]);
    let sign = if (0..4).map(|k| q[k] * r[k]).sum::<f64>() < 0.0 {
        -1.0
    } else {
        1.0
    };
    for k in 0..4 {
        assert!(
            (r[k] - sign * q[k]).abs() <= 2.5e-3,
            "splat {i} rotation {r:?} vs {q:?}"
        );
    }
}

#[test]
fn every_splat_decodes_with_the_reference_library() {
    if !node::ready() {
        return;
    }
    let input = synthetic_gaussians(4000, 11);
    let opts = Options {
        keep_fraction: 1.0,
        ..Options::default()
    };
    let ksplat = convert(&ml_sharp_ply(&input), &opts).expect("convert");
    let out = decode("full.ksplat", &ksplat);

    let kept: Vec<&Gaussian> = input.iter().filter(|g| kept_by_alpha(g)).collect();
    let dropped = input.len() - kept.len();
    assert!(
        dropped > 300,
        "test data must exercise the alpha cut ({dropped})"
    );

    let header = &out["header"];
    assert_eq!(header["versionMajor"], 0);
    assert_eq!(header["versionMinor"], 1);
    assert_eq!(header["maxSectionCount"], 1);
    assert_eq!(header["sectionCount"], 1);
    assert_eq!(header["compressionLevel"], 2);
    assert_eq!(header["splatCount"], kept.len());
    assert_eq!(header["minSphericalHarmonicsCoeff"], -1.5);
    assert_eq!(header["maxSphericalHarmonicsCoeff"], 1.5);
    let centre = nums(&header["sceneCenter"]);
    for (a, &got) in centre.iter().enumerate() {
        let want = kept.iter().map(|g| f64::from(g.position[a])).sum::<f64>() / kept.len() as f64;
        assert!((got - want).abs() < 1e-5, "centroid[{a}] {got} vs {want}");
    }

    let section = &out["sections"][0];
    assert_eq!(section["splatCount"], kept.len());
    assert_eq!(section["bucketSize"], 256);
    assert_eq!(section["bucketBlockSize"], 5.0);
    assert_eq!(section["bucketStorageSizeBytes"], 12);
    assert_eq!(section["compressionScaleRange"], 32767);
    assert_eq!(section["sphericalHarmonicsDegree"], 0);
    let full = section["fullBucketCount"].as_u64().unwrap();
    let partial = section["partiallyFilledBucketCount"].as_u64().unwrap();
    assert!(
        full >= 2 && partial >= 20,
        "spans full and many partial buckets: {full}/{partial}"
    );
    assert_eq!(section["bucketCount"].as_u64().unwrap(), full + partial);
    assert_eq!(out["fileBytes"], ksplat.len());
    assert_eq!(out["expectedBytes"], ksplat.len());
    assert_eq!(out["progressiveMatches"], true);

    let splats = out["splats"].as_array().expect("splats");
    assert_eq!(
        splats.len(),
        kept.len(),
        "alpha < 15 dropped, all others kept"
    );
    assert_eq!(check_splats(splats, &kept), kept.len());
}

#[test]
fn decimated_output_decodes_to_a_subset() {
    if !node::ready() {
        return;
    }
    let input = synthetic_gaussians(3000, 12);
    let ksplat = convert(&ml_sharp_ply(&input), &Options::default()).expect("convert");
    let out = decode("decimated.ksplat", &ksplat);
    let kept: Vec<&Gaussian> = input.iter().filter(|g| kept_by_alpha(g)).collect();
    let splats = out["splats"].as_array().expect("splats");
    assert!(splats.len() <= 3000 * 65 / 100);
    assert!(
        splats.len() > kept.len() / 2,
        "roughly 65% of alpha survivors"
    );
    assert_eq!(check_splats(splats, &kept), splats.len());
    assert_eq!(out["expectedBytes"], ksplat.len());
}

#[test]
fn empty_outputs_load() {
    if !node::ready() {
        return;
    }
    let input = synthetic_gaussians(10, 13);
    let none = Options {
        keep_fraction: 0.0,
        ..Options::default()
    };
    let out = decode(
        "none.ksplat",
        &convert(&ml_sharp_ply(&input), &none).unwrap(),
    );
    assert_eq!(out["header"]["maxSectionCount"], 0);
    assert_eq!(out["splats"].as_array().unwrap().len(), 0);

    let mut faint = input;
    for g in &mut faint {
        g.opacity_logit = -8.0;
    }
    let all = Options {
        keep_fraction: 1.0,
        ..Options::default()
    };
    let out = decode(
        "faint.ksplat",
        &convert(&ml_sharp_ply(&faint), &all).unwrap(),
    );
    assert_eq!(out["header"]["maxSectionCount"], 1);
    assert_eq!(out["splats"].as_array().unwrap().len(), 0);
}
