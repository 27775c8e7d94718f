//! Receiving files: streamed to a temporary file while hashed and counted,
//! fsynced, and typed by their magic bytes (the catalog then renames and
//! records them).

use std::path::Path;

use poem::{web::Multipart, Request, RequestBody};
use poem_openapi::{
    registry::{MetaMediaType, MetaRequest, MetaSchema, MetaSchemaRef},
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{
    sink::{HashingWriter, TempFile},
    MediaError, MediaType,
};

/// Free space kept on the data filesystem for the database to grow: an
/// upload that would leave less is refused with 507, because redb refuses
/// every later write after one of its own writes failed for lack of space.
pub const DISK_HEADROOM: u64 = 4 * 1024 * 1024;

/// Whether `dir`'s filesystem has `need` bytes plus the headroom free
/// (`true` when that cannot be told).
pub fn has_space(dir: &Path, need: u64) -> bool {
    !matches!(fs4::available_space(dir), Ok(free) if free < need.saturating_add(DISK_HEADROOM))
}

/// 507 unless `dir`'s filesystem has `need` bytes plus the headroom free.
pub fn ensure_space(dir: &Path, need: u64) -> Result<(), MediaError> {
    if has_space(dir, need) {
        Ok(())
    } else {
        Err(MediaError::DiskFull)
    }
}

/// Bytes kept from the start of a file for type sniffing.
const HEAD_BYTES: usize = 8192;
/// A form with more parts than this is refused rather than walked.
const MAX_FIELDS: usize = 16;
const CHUNK: usize = 256 * 1024;

/// A file received in full, fsynced, not yet recorded.
pub struct Received {
    pub file: TempFile,
    pub original_filename: String,
    pub size: u64,
    pub sha256: [u8; 32],
    pub head: Vec<u8>,
}

/// Streams `reader` into a temporary file in `dir`, at most `limit` bytes.
pub async fn receive(
    reader: impl AsyncRead,
    dir: &Path,
    original_filename: String,
    limit: u64,
) -> Result<Received, MediaError> {
    tokio::pin!(reader);
    let tmp = TempFile::new(dir);
    let mut out = HashingWriter::create(tmp.path(), CHUNK).await?;
    let mut head = Vec::with_capacity(HEAD_BYTES);
    let mut size: u64 = 0;
    let mut buf = out.buffer();
    // The body arrives in frames of a few KiB; each file write is a trip
    // to the blocking pool, so they are gathered into whole chunks first.
    let mut filled = 0;
    loop {
        let n = reader.read(&mut buf[filled..]).await.map_err(body_error)?;
        size += n as u64;
        if size > limit {
            return Err(MediaError::TooLarge { limit });
        }
        filled += n;
        if filled < CHUNK && n > 0 {
            continue;
        }
        if head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - head.len()).min(filled);
            head.extend_from_slice(&buf[..take]);
        }
        if filled > 0 {
            buf = out.write(buf, filled).await?;
        }
        filled = 0;
        if n == 0 {
            break;
        }
    }
    let sha256 = out.finish().await?;
    Ok(Received {
        file: tmp,
        original_filename,
        size,
        sha256,
        head,
    })
}

/// A failed body read: the client stalled (408) or sent something broken.
fn body_error(e: std::io::Error) -> MediaError {
    if e.kind() == std::io::ErrorKind::TimedOut {
        return MediaError::Stalled(e.to_string());
    }
    // multer wraps the stream's error; its text still says what happened.
    let text = e.to_string();
    if text.contains("IDLE_TIMEOUT_SECS") {
        MediaError::Stalled(text)
    } else {
        MediaError::BadMultipart(text)
    }
}

/// Reads the multipart body, streaming the `media` field to disk.
pub async fn receive_form(
    mut form: Multipart,
    dir: &Path,
    limit: u64,
) -> Result<Received, MediaError> {
    ensure_space(dir, 0)?;
    let mut received = None;
    let mut fields = 0;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| body_error(std::io::Error::other(e.to_string())))?
    {
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(MediaError::BadMultipart(format!(
                "more than {MAX_FIELDS} parts"
            )));
        }
        if field.name() == Some("media") && received.is_none() {
            // Metadata only, but bounded: 255 characters like most file systems.
            let name: String = field
                .file_name()
                .unwrap_or("upload")
                .chars()
                .take(255)
                .collect();
            received = Some(receive(field.into_async_read(), dir, name, limit).await?);
        } else {
            // Other parts are read and dropped, bounded like the file.
            let sink = field.into_async_read().take(64 * 1024);
            tokio::pin!(sink);
            let mut skip = Vec::new();
            sink.read_to_end(&mut skip).await.map_err(body_error)?;
        }
    }
    let received = received.ok_or(MediaError::MissingField)?;
    if received.size == 0 {
        return Err(MediaError::EmptyFile);
    }
    // The bytes are on disk; the rows still need room.
    ensure_space(dir, 0)?;
    Ok(received)
}

/// Reads a raw body (the file's bytes as they are) to disk.
pub async fn receive_raw(
    body: RawFile,
    dir: &Path,
    filename: String,
    limit: u64,
) -> Result<Received, MediaError> {
    ensure_space(dir, 0)?;
    let received = receive(body.0.into_async_read(), dir, filename, limit).await?;
    if received.size == 0 {
        return Err(MediaError::EmptyFile);
    }
    ensure_space(dir, 0)?;
    Ok(received)
}

/// Photo or video, by magic bytes; the client's Content-Type is ignored.
pub fn sniff(head: &[u8]) -> Result<(MediaType, &'static str, &'static str), MediaError> {
    match infer::get(head) {
        Some(k) if k.matcher_type() == infer::MatcherType::Image => {
            Ok((MediaType::Photo, k.mime_type(), k.extension()))
        }
        Some(k) if k.matcher_type() == infer::MatcherType::Video => {
            Ok((MediaType::Video, k.mime_type(), k.extension()))
        }
        Some(k) => Err(MediaError::Unsupported {
            detected: k.mime_type().to_string(),
        }),
        None => Err(MediaError::Unsupported {
            detected: "unknown data".to_string(),
        }),
    }
}

/// The upload body: `multipart/form-data` with the file in field `media`.
/// Declared by hand so the spec documents the form while the handler
/// streams it (poem-openapi's own `Upload` buffers the file first).
pub struct UploadForm(pub Multipart);

impl<'a> ApiExtractor<'a> for UploadForm {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn request_meta() -> Option<MetaRequest> {
        let file = MetaSchema {
            description: Some("The photo or video. Its type is read from its bytes."),
            ..MetaSchema::new_with_format("string", "binary")
        };
        Some(MetaRequest {
            description: Some("One file in the multipart field `media`."),
            content: vec![MetaMediaType {
                content_type: "multipart/form-data",
                schema: MetaSchemaRef::Inline(Box::new(MetaSchema {
                    required: vec!["media"],
                    properties: vec![("media", MetaSchemaRef::Inline(Box::new(file)))],
                    ..MetaSchema::new("object")
                })),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(UploadForm(
            <Multipart as poem::FromRequest>::from_request(request, body).await?,
        ))
    }
}

/// The raw upload body: the file's bytes, `application/octet-stream` (any
/// Content-Type is taken; the type is read from the bytes). For clients
/// whose generator has no multipart support (progenitor).
pub struct RawFile(pub poem::Body);

impl<'a> ApiExtractor<'a> for RawFile {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some("The photo or video, as it is. Its type is read from its bytes."),
            content: vec![MetaMediaType {
                content_type: "application/octet-stream",
                schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format(
                    "string", "binary",
                ))),
            }],
            required: true,
        })
    }

    async fn from_request(
        _request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(RawFile(body.take()?))
    }
}
