//! Binary little-endian PLY reader for Gaussian splats.
//!
//! The header is parsed generically (any elements, scalar or list properties)
//! because ml-sharp appends camera metadata elements after `vertex`, and
//! other exporters add normals and higher-order SH. Only the 14 vertex
//! properties the converter needs are decoded; everything else is skipped
//! but still bounds-checked so a truncated file is reported, not half-read.

use super::{Gaussian, PlyError};

/// The vertex properties we need, in the order they fill a [`Gaussian`].
const REQUIRED: [&str; 14] = [
    "x", "y", "z", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3", "f_dc_0",
    "f_dc_1", "f_dc_2", "opacity",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    F32,
    F64,
}

impl Scalar {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "char" | "int8" => Self::I8,
            "uchar" | "uint8" => Self::U8,
            "short" | "int16" => Self::I16,
            "ushort" | "uint16" => Self::U16,
            "int" | "int32" => Self::I32,
            "uint" | "uint32" => Self::U32,
            "float" | "float32" => Self::F32,
            "double" | "float64" => Self::F64,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Self::I8 | Self::U8 => 1,
            Self::I16 | Self::U16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }

    /// Reads a list length. Returns `None` for a negative signed value.
    fn read_len(self, bytes: &[u8]) -> Option<u64> {
        let le2 = || [bytes[0], bytes[1]];
        let le4 = || [bytes[0], bytes[1], bytes[2], bytes[3]];
        match self {
            Self::U8 => Some(u64::from(bytes[0])),
            Self::U16 => Some(u64::from(u16::from_le_bytes(le2()))),
            Self::U32 => Some(u64::from(u32::from_le_bytes(le4()))),
            Self::I8 => u64::try_from(i8::from_le_bytes([bytes[0]])).ok(),
            Self::I16 => u64::try_from(i16::from_le_bytes(le2())).ok(),
            Self::I32 => u64::try_from(i32::from_le_bytes(le4())).ok(),
            // Rejected when the header is parsed.
            Self::F32 | Self::F64 => None,
        }
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Scalar(Scalar),
    List { len: Scalar, item: Scalar },
}

#[derive(Debug, Clone)]
struct Property {
    name: String,
    type_name: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
struct Element {
    name: String,
    count: u64,
    properties: Vec<Property>,
}

impl Element {
    /// Record size if every property is a scalar.
    fn fixed_stride(&self) -> Option<usize> {
        self.properties
            .iter()
            .try_fold(0usize, |acc, p| match p.kind {
                Kind::Scalar(s) => Some(acc + s.size()),
                Kind::List { .. } => None,
            })
    }
}

/// Parses the header; returns its elements and the offset of the body.
fn parse_header(bytes: &[u8]) -> Result<(Vec<Element>, usize), PlyError> {
    let magic_len = if bytes.starts_with(b"ply\n") {
        4
    } else if bytes.starts_with(b"ply\r\n") {
        5
    } else {
        return Err(PlyError::NotPly);
    };
    let mut pos = magic_len;
    let mut line_no = 1;
    let mut elements: Vec<Element> = Vec::new();
    let mut saw_format = false;
    loop {
        let rest = &bytes[pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return Err(PlyError::UnterminatedHeader);
        };
        // Binary bytes mean we ran past the header without seeing its end.
        let line = std::str::from_utf8(&rest[..nl]).map_err(|_| PlyError::UnterminatedHeader)?;
        pos += nl + 1;
        line_no += 1;
        let bad = |reason: &str| PlyError::MalformedHeader {
            line: line_no,
            reason: reason.to_owned(),
        };
        let tokens: Vec<&str> = line.split_ascii_whitespace().collect();
        match tokens.as_slice() {
            [] | ["comment", ..] | ["obj_info", ..] => {}
            ["format", format, version] => {
                if *format != "binary_little_endian" || *version != "1.0" {
                    return Err(PlyError::UnsupportedFormat(format!("{format} {version}")));
                }
                saw_format = true;
            }
            ["format", ..] => return Err(bad("format line needs a format and a version")),
            ["element", name, count] => {
                let count = count
                    .parse()
                    .map_err(|_| bad("element count is not a non-negative integer"))?;
                elements.push(Element {
                    name: (*name).to_owned(),
                    count,
                    properties: Vec::new(),
                });
            }
            ["property", rest @ ..] => {
                let element = elements
                    .last_mut()
                    .ok_or_else(|| bad("property before any element"))?;
                let (kind, name, type_name) = match rest {
                    ["list", len, item, name] => {
                        let len =
                            Scalar::parse(len).ok_or_else(|| bad("unknown list length type"))?;
                        let item =
                            Scalar::parse(item).ok_or_else(|| bad("unknown list item type"))?;
                        if matches!(len, Scalar::F32 | Scalar::F64) {
                            return Err(bad("list length type must be an integer"));
                        }
                        (Kind::List { len, item }, name, "list")
                    }
                    [ty, name] => {
                        let scalar =
                            Scalar::parse(ty).ok_or_else(|| bad("unknown property type"))?;
                        (Kind::Scalar(scalar), name, *ty)
                    }
                    _ => return Err(bad("property line has the wrong number of fields")),
                };
                element.properties.push(Property {
                    name: (*name).to_owned(),
                    type_name: type_name.to_owned(),
                    kind,
                });
            }
            ["end_header"] => break,
            _ => return Err(bad("unrecognised header line")),
        }
    }
    if !saw_format {
        return Err(PlyError::MalformedHeader {
            line: line_no,
            reason: "header has no format line".to_owned(),
        });
    }
    Ok((elements, pos))
}

fn truncated(element: &Element, needed: u64, available: usize) -> PlyError {
    PlyError::Truncated {
        element: element.name.clone(),
        needed,
        available: available as u64,
    }
}

/// Byte length of an element whose records contain list properties, found by
/// walking each record. Every record costs at least one byte (the list
/// length), so the walk is bounded by the data, not by the declared count.
fn walk_list_element(element: &Element, data: &[u8]) -> Result<usize, PlyError> {
    let mut pos = 0usize;
    for _ in 0..element.count {
        for prop in &element.properties {
            let (head, item_size) = match prop.kind {
                Kind::Scalar(s) => (s.size(), 0),
                Kind::List { len, item } => (len.size(), item.size()),
            };
            if data.len() - pos < head {
                return Err(truncated(element, (pos + head) as u64, data.len()));
            }
            if let Kind::List { len, .. } = prop.kind {
                let n = len
                    .read_len(&data[pos..])
                    .ok_or_else(|| PlyError::NegativeListLength {
                        element: element.name.clone(),
                    })?;
                let body = n.saturating_mul(item_size as u64);
                let needed = (pos + head) as u64 + body;
                if needed > data.len() as u64 {
                    return Err(truncated(element, needed, data.len()));
                }
                pos = needed as usize;
            } else {
                pos += head;
            }
        }
    }
    Ok(pos)
}

fn f32_at(record: &[u8], offset: usize) -> f32 {
    f32::from_le_bytes([
        record[offset],
        record[offset + 1],
        record[offset + 2],
        record[offset + 3],
    ])
}

/// Byte offsets of [`REQUIRED`] within one vertex record.
fn required_offsets(vertex: &Element) -> Result<[usize; 14], PlyError> {
    if let Some(list) = vertex
        .properties
        .iter()
        .find(|p| matches!(p.kind, Kind::List { .. }))
    {
        return Err(PlyError::VertexListProperty(list.name.clone()));
    }
    let mut offsets = [0usize; 14];
    for (slot, &want) in offsets.iter_mut().zip(REQUIRED.iter()) {
        let mut offset = 0;
        let mut found = false;
        for prop in &vertex.properties {
            // Lists were rejected above; `continue` just keeps this total.
            let Kind::Scalar(scalar) = prop.kind else {
                continue;
            };
            if prop.name == want {
                if scalar != Scalar::F32 {
                    return Err(PlyError::PropertyNotFloat {
                        name: want,
                        found: prop.type_name.clone(),
                    });
                }
                *slot = offset;
                found = true;
                break;
            }
            offset += scalar.size();
        }
        if !found {
            return Err(PlyError::MissingProperty(want));
        }
    }
    Ok(offsets)
}

fn decode_vertices(data: &[u8], stride: usize, offsets: &[usize; 14]) -> Vec<Gaussian> {
    let o = offsets;
    // `chunks_exact(0)` would panic; the caller only gets here with the 14
    // required floats present, so stride >= 56.
    data.chunks_exact(stride)
        .map(|r| Gaussian {
            position: [f32_at(r, o[0]), f32_at(r, o[1]), f32_at(r, o[2])],
            log_scale: [f32_at(r, o[3]), f32_at(r, o[4]), f32_at(r, o[5])],
            rotation: [
                f32_at(r, o[6]),
                f32_at(r, o[7]),
                f32_at(r, o[8]),
                f32_at(r, o[9]),
            ],
            f_dc: [f32_at(r, o[10]), f32_at(r, o[11]), f32_at(r, o[12])],
            opacity_logit: f32_at(r, o[13]),
        })
        .collect()
}

/// Reads the `vertex` element of a binary little-endian PLY.
///
/// Other elements (ml-sharp's `extrinsic`, `intrinsic`, `image_size`, ...)
/// and extra vertex properties (`nx`, `f_rest_*`, ...) are skipped. Bytes
/// after the last declared element are ignored.
pub fn read_ply(bytes: &[u8]) -> Result<Vec<Gaussian>, PlyError> {
    let (elements, body) = parse_header(bytes)?;
    let vertex_index = elements
        .iter()
        .position(|e| e.name == "vertex")
        .ok_or(PlyError::MissingVertexElement)?;
    let offsets = required_offsets(&elements[vertex_index])?;

    let mut pos = body;
    let mut vertex_range = None;
    for (index, element) in elements.iter().enumerate() {
        let available = bytes.len() - pos;
        let len = match element.fixed_stride() {
            Some(stride) => {
                let len = element.count.checked_mul(stride as u64).ok_or_else(|| {
                    PlyError::AbsurdCount {
                        element: element.name.clone(),
                        count: element.count,
                    }
                })?;
                if len > available as u64 {
                    return Err(truncated(element, len, available));
                }
                len as usize
            }
            None => walk_list_element(element, &bytes[pos..])?,
        };
        if index == vertex_index {
            vertex_range = Some(pos..pos + len);
        }
        pos += len;
    }

    let vertex = &elements[vertex_index];
    // KSPLAT stores counts as u32; refuse early rather than wrap later.
    if vertex.count > u64::from(u32::MAX) {
        return Err(PlyError::AbsurdCount {
            element: vertex.name.clone(),
            count: vertex.count,
        });
    }
    // Lists in the vertex element were rejected, so the stride is known.
    let stride = vertex.fixed_stride().unwrap_or(0);
    match vertex_range {
        Some(range) if stride > 0 => Ok(decode_vertices(&bytes[range], stride, &offsets)),
        _ => Ok(Vec::new()),
    }
}
