//! The stages of one job as the VR app follows them
//! (`model:generation-progress`, then `model:generation-complete`), told on
//! the event bus: the live channel and `/api/events` both carry them.

use super::Shared;
use crate::{
    events::{Event, GenerationEvent},
    media::MediaRow,
    queue::QueueRow,
};

pub(super) struct Stages<'a> {
    shared: &'a Shared,
    base: GenerationEvent,
}

/// The id the app knows a photo by: its Immich id, else the media id.
fn app_id(media: &MediaRow) -> String {
    media
        .immich_asset_id
        .clone()
        .unwrap_or_else(|| media.id.to_string())
}

impl<'a> Stages<'a> {
    pub fn new(shared: &'a Shared, item: &QueueRow, media: &MediaRow) -> Self {
        let mut base = GenerationEvent::stage(
            &app_id(media),
            item.kind.as_str(),
            &item.model_key,
            "queued",
            0,
        );
        base.queue_id = Some(item.id);
        Stages { shared, base }
    }

    pub fn at(&self, status: &str, progress: u8) {
        let mut e = self.base.clone();
        e.status = status.to_string();
        e.progress = progress;
        self.shared.catalog.announce_now(Event::Generation(e));
    }

    /// After the commit: the files are listed by now.
    pub fn done(&self, warning: Option<&str>) {
        let mut e = self.base.clone();
        e.status = "complete".into();
        e.progress = 100;
        e.success = Some(true);
        e.warning = warning.map(str::to_string);
        self.shared.catalog.announce_now(Event::Generation(e));
    }
}

/// A job that will not be tried again: its requesters hear it ended.
pub(super) async fn failed(shared: &Shared, row: &QueueRow) {
    let Ok(media) = shared.catalog.media(row.media_item_id).await else {
        return;
    };
    let mut e = Stages::new(shared, row, &media).base;
    e.status = "complete".into();
    e.progress = 100;
    e.success = Some(false);
    e.error = Some(row.last_error.clone().unwrap_or_else(|| "failed".into()));
    shared.catalog.announce_now(Event::Generation(e));
}
