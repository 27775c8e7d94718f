//! PLY reader: both supported layouts, and one test per error path.

mod common;

use common::ksplat::{inria_ply, ml_sharp_ply, synthetic_gaussians};
use immichvr::assets::ksplat::{read_ply, PlyError};

/// Minimal valid vertex header with the 14 required float properties.
const VERTEX_PROPS: &str = "property float x\nproperty float y\nproperty float z\n\
property float f_dc_0\nproperty float f_dc_1\nproperty float f_dc_2\nproperty float opacity\n\
property float scale_0\nproperty float scale_1\nproperty float scale_2\n\
property float rot_0\nproperty float rot_1\nproperty float rot_2\nproperty float rot_3\n";

fn ply(header_body: &str, data: &[u8]) -> Vec<u8> {
    let mut out =
        format!("ply\nformat binary_little_endian 1.0\n{header_body}end_header\n").into_bytes();
    out.extend_from_slice(data);
    out
}

#[test]
fn reads_ml_sharp_layout_exactly() {
    let g = synthetic_gaussians(300, 1);
    assert_eq!(read_ply(&ml_sharp_ply(&g)).unwrap(), g);
}

#[test]
fn reads_inria_layout_ignoring_normals_and_rest() {
    let g = synthetic_gaussians(50, 2);
    assert_eq!(read_ply(&inria_ply(&g)).unwrap(), g);
}

#[test]
fn reads_zero_vertices_and_crlf_header() {
    let bytes = b"ply\r\nformat binary_little_endian 1.0\r\nelement vertex 0\r\n".to_vec();
    let mut bytes = bytes;
    bytes.extend_from_slice(VERTEX_PROPS.replace('\n', "\r\n").as_bytes());
    bytes.extend_from_slice(b"end_header\r\n");
    assert_eq!(read_ply(&bytes).unwrap(), vec![]);
}

#[test]
fn skips_list_elements_before_vertex() {
    // A face element with variable-length lists ahead of the vertices.
    let header = format!(
        "element face 2\nproperty list uchar int vertex_indices\nelement vertex 1\n{VERTEX_PROPS}"
    );
    let mut data = vec![1u8];
    data.extend_from_slice(&7i32.to_le_bytes());
    data.push(2);
    data.extend_from_slice(&[0u8; 8]);
    let values: Vec<u8> = (0..14).flat_map(|i| (i as f32).to_le_bytes()).collect();
    data.extend_from_slice(&values);
    let g = read_ply(&ply(&header, &data)).unwrap();
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].position, [0.0, 1.0, 2.0]);
    assert_eq!(g[0].f_dc, [3.0, 4.0, 5.0]);
    assert_eq!(g[0].opacity_logit, 6.0);
    assert_eq!(g[0].log_scale, [7.0, 8.0, 9.0]);
    assert_eq!(g[0].rotation, [10.0, 11.0, 12.0, 13.0]);
}

#[test]
fn error_not_ply() {
    assert_eq!(read_ply(b"plx\nformat"), Err(PlyError::NotPly));
    assert_eq!(read_ply(b""), Err(PlyError::NotPly));
}

#[test]
fn error_ascii_and_big_endian() {
    for format in [
        "ascii 1.0",
        "binary_big_endian 1.0",
        "binary_little_endian 2.0",
    ] {
        let bytes = format!("ply\nformat {format}\nelement vertex 0\n{VERTEX_PROPS}end_header\n");
        assert_eq!(
            read_ply(bytes.as_bytes()),
            Err(PlyError::UnsupportedFormat(format.to_string()))
        );
    }
}

#[test]
fn error_unterminated_header() {
    let mut bytes =
        format!("ply\nformat binary_little_endian 1.0\nelement vertex 1\n{VERTEX_PROPS}")
            .into_bytes();
    assert_eq!(read_ply(&bytes), Err(PlyError::UnterminatedHeader));
    bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
    assert_eq!(read_ply(&bytes), Err(PlyError::UnterminatedHeader));
}

#[test]
fn error_malformed_header_lines() {
    let cases = [
        "property float x\n",                              // property before element
        "element vertex -3\n",                             // negative count
        "element vertex 1\nproperty half x\n",             // unknown type
        "element vertex 1\nproperty float\n",              // missing name
        "element vertex 1\nproperty list float int idx\n", // float list length
        "bogus line\n",
    ];
    for case in cases {
        match read_ply(&ply(case, &[])) {
            Err(PlyError::MalformedHeader { line, .. }) => assert!(line >= 3, "{case:?}"),
            other => panic!("{case:?}: {other:?}"),
        }
    }
    let no_format = format!("ply\nelement vertex 0\n{VERTEX_PROPS}end_header\n");
    assert!(matches!(
        read_ply(no_format.as_bytes()),
        Err(PlyError::MalformedHeader { .. })
    ));
}

#[test]
fn error_missing_vertex_element_and_property() {
    assert_eq!(
        read_ply(&ply("element face 0\n", &[])),
        Err(PlyError::MissingVertexElement)
    );
    let without_opacity = VERTEX_PROPS.replace("property float opacity\n", "");
    let bytes = ply(&format!("element vertex 0\n{without_opacity}"), &[]);
    assert_eq!(read_ply(&bytes), Err(PlyError::MissingProperty("opacity")));
}

#[test]
fn error_non_float_vertex_property() {
    let props = VERTEX_PROPS.replace("float rot_2", "double rot_2");
    let bytes = ply(&format!("element vertex 0\n{props}"), &[]);
    assert_eq!(
        read_ply(&bytes),
        Err(PlyError::PropertyNotFloat {
            name: "rot_2",
            found: "double".into()
        })
    );
    // Extra non-float properties we do not need are fine.
    let extra = format!("element vertex 0\n{VERTEX_PROPS}property uchar red\n");
    assert_eq!(read_ply(&ply(&extra, &[])), Ok(vec![]));
}

#[test]
fn error_list_in_vertex() {
    let header = format!("element vertex 0\n{VERTEX_PROPS}property list uchar float extra\n");
    assert_eq!(
        read_ply(&ply(&header, &[])),
        Err(PlyError::VertexListProperty("extra".into()))
    );
}

#[test]
fn error_truncated_vertex_data() {
    let g = synthetic_gaussians(10, 3);
    let full = ml_sharp_ply(&g);
    let header_len = full.len() - 10 * 56 - (16 + 9 + 2 + 2 + 2) * 4 - 4;
    let cut = &full[..header_len + 9 * 56 + 10];
    match read_ply(cut) {
        Err(PlyError::Truncated {
            element,
            needed,
            available,
        }) => {
            assert_eq!(element, "vertex");
            assert_eq!(needed, 560);
            assert_eq!(available, 9 * 56 + 10);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn error_truncated_trailing_metadata() {
    let full = ml_sharp_ply(&synthetic_gaussians(4, 4));
    let cut = &full[..full.len() - 2]; // lose part of `version`
    assert!(
        matches!(read_ply(cut), Err(PlyError::Truncated { element, .. }) if element == "version")
    );
}

#[test]
fn error_truncated_list_element() {
    let header =
        format!("element face 1\nproperty list uchar int idx\nelement vertex 0\n{VERTEX_PROPS}");
    let bytes = ply(&header, &[3, 0, 0, 0, 0]);
    assert!(
        matches!(read_ply(&bytes), Err(PlyError::Truncated { element, needed: 13, .. }) if element == "face")
    );
    let negative = ply(
        &format!("element face 1\nproperty list char int idx\nelement vertex 0\n{VERTEX_PROPS}"),
        &[0xff],
    );
    assert_eq!(
        read_ply(&negative),
        Err(PlyError::NegativeListLength {
            element: "face".into()
        })
    );
}

#[test]
fn error_absurd_counts_do_not_allocate() {
    // Fits in u64 but not in the file: reported as truncation before any allocation.
    let huge = ply(
        &format!("element vertex 4000000000\n{VERTEX_PROPS}"),
        &[0; 56],
    );
    assert!(matches!(
        read_ply(&huge),
        Err(PlyError::Truncated {
            needed: 224_000_000_000,
            ..
        })
    ));
    // Overflows count * record size.
    let overflow = ply(
        &format!("element vertex 18446744073709551615\n{VERTEX_PROPS}"),
        &[],
    );
    assert!(matches!(
        read_ply(&overflow),
        Err(PlyError::AbsurdCount { .. })
    ));
    // Zero-size records make any count "fit", but KSPLAT counts are u32.
    let zero_size = ply(
        &format!("element vertex 0\n{VERTEX_PROPS}element empty 18446744073709551615\n"),
        &[],
    );
    assert_eq!(read_ply(&zero_size), Ok(vec![]));
}
