//! Typed errors for PLY parsing.
//!
//! Every way a malformed or unsupported file can fail is a variant here, so a
//! server can map them to a 4xx response without string matching.

use thiserror::Error;

/// Why a PLY file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlyError {
    /// The file does not start with the `ply` magic line.
    #[error("not a PLY file (missing `ply` magic line)")]
    NotPly,

    /// No `end_header` line was found before non-text bytes or end of file.
    #[error("PLY header is not terminated by `end_header`")]
    UnterminatedHeader,

    /// A header line could not be understood.
    #[error("malformed PLY header at line {line}: {reason}")]
    MalformedHeader {
        /// 1-based header line number.
        line: usize,
        /// What was wrong with it.
        reason: String,
    },

    /// The body encoding is not `binary_little_endian 1.0`.
    #[error("unsupported PLY format `{0}` (only binary_little_endian 1.0 is supported)")]
    UnsupportedFormat(String),

    /// The header declares no `vertex` element.
    #[error("PLY has no `vertex` element")]
    MissingVertexElement,

    /// A property the converter needs is absent from the `vertex` element.
    #[error("vertex element lacks required property `{0}`")]
    MissingProperty(&'static str),

    /// A required vertex property exists but is not a 32-bit float.
    #[error("vertex property `{name}` has type `{found}`, expected float32")]
    PropertyNotFloat {
        /// Property name.
        name: &'static str,
        /// Type as written in the header.
        found: String,
    },

    /// The vertex element contains a list property, so records have no fixed
    /// size and cannot be decoded by offset.
    #[error("vertex element has list property `{0}`; only scalar properties are supported")]
    VertexListProperty(String),

    /// The body is shorter than the header says it must be.
    #[error(
        "PLY body truncated in element `{element}`: needs {needed} bytes, {available} available"
    )]
    Truncated {
        /// Element being read when data ran out.
        element: String,
        /// Bytes the element needs (or at least needs for the next record).
        needed: u64,
        /// Bytes that remain in the file.
        available: u64,
    },

    /// A list property in a skipped element has a negative length.
    #[error("element `{element}` has a list with a negative length")]
    NegativeListLength {
        /// Element name.
        element: String,
    },

    /// A declared count is too large to be represented (overflows on
    /// multiplication by the record size, or exceeds the KSPLAT u32 limit).
    #[error("element `{element}` declares an absurd count {count}")]
    AbsurdCount {
        /// Element name.
        element: String,
        /// Count from the header.
        count: u64,
    },

    /// The file could not be read or the result written.
    #[error("cannot read the PLY or write the KSPLAT: {0}")]
    Io(String),
}
