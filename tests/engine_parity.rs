//! The built-in depth engine against the reference implementation
//! (transformers' DepthAnythingForDepthEstimation on PyTorch, the AI
//! service's model), without downloading anything: a tiny random-weight
//! model in the transformers layout and the reference's outputs for two
//! photos, one not square, made by `scripts/make-depth-fixture.py tiny`.

use std::path::PathBuf;

use candle_core::{Device, Tensor};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/depth-anything-tiny")
}

fn reference(name: &str) -> Tensor {
    let all = candle_core::safetensors::load(fixture().join("reference.safetensors"), &Device::Cpu)
        .expect("reference outputs");
    all.get(name)
        .unwrap_or_else(|| panic!("{name} in the reference"))
        .clone()
}

fn check(photo: &str, input: (usize, usize)) {
    let bytes = std::fs::read(fixture().join(format!("{photo}.png"))).unwrap();
    let t = immichvr::engine::trace(&fixture(), &bytes).expect("the tiny model runs");
    assert_eq!(t.input_size, input, "{photo}: network input size");

    // 1. The image processor's resize (Pillow bicubic), bit for bit.
    let resized: Vec<u8> = reference(&format!("{photo}.resized"))
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(resized.len(), t.resized.len());
    let diff = resized
        .iter()
        .zip(&t.resized)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(diff, 0, "{photo}: resized pixels differing from Pillow's");

    // 2. The network: predicted depth at the input's size.
    let want: Vec<f32> = reference(&format!("{photo}.predicted_depth"))
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(want.len(), t.predicted.len());
    let range = want.iter().cloned().fold(f32::MIN, f32::max)
        - want.iter().cloned().fold(f32::MAX, f32::min);
    let max_err = want
        .iter()
        .zip(&t.predicted)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    println!("{photo}: predicted depth max abs error {max_err:e} on a range of {range}");
    assert!(range > 0.5, "{photo}: a degenerate reference");
    assert!(
        max_err <= 1e-4 * range,
        "{photo}: max abs error {max_err} on a range of {range}"
    );

    // 3. The 8-bit map at the photo's size: the AI service's PNG.
    let want: Vec<u8> = reference(&format!("{photo}.depth"))
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let (oh, ow) = t.size;
    assert_eq!(want.len(), oh * ow);
    let worst = want
        .iter()
        .zip(&t.gray)
        .map(|(a, b)| (*a as i16 - *b as i16).abs())
        .max()
        .unwrap();
    let off = want.iter().zip(&t.gray).filter(|(a, b)| a != b).count();
    println!(
        "{photo}: 8-bit map: {off} of {} pixels differ, by at most {worst}",
        want.len()
    );
    assert!(worst <= 1, "{photo}: 8-bit depth differs by {worst}");
    assert!(off * 100 <= want.len(), "{photo}: {off} pixels differ");
}

#[test]
fn square_photo_matches_the_reference() {
    check("square", (140, 140));
}

#[test]
fn wide_photo_matches_the_reference() {
    // 240x160: shrunk to 210x140 (not square: position embeddings interpolated).
    check("wide", (140, 210));
}
