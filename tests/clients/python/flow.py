"""The main flow, through the client openapi-python-client generates from
openapi.yaml (package `immichvr_client`), against the running binary and
the AI stand-in. Type-checked with `mypy --strict` before it runs.

Usage: flow.py BASE_URL TOKEN [--open]
  --open: the server runs without AUTH_TOKEN; TOKEN is then any
          non-empty placeholder and only a few calls are made.
"""

from __future__ import annotations

import json
import struct
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from io import BytesIO
from typing import TypeVar

import httpx

from immichvr_client import AuthenticatedClient
from immichvr_client.api.immich import get_immich_import, start_immich_import
from immichvr_client.api.media import (
    get_media,
    get_media_depth,
    list_media_status,
    upload_media,
    upload_media_raw,
)
from immichvr_client.api.queue import (
    get_queue_item,
    get_queue_stats,
    list_queue_items,
    start_worker,
    stop_worker,
)
from immichvr_client.api.service import get_api_health
from immichvr_client.models import (
    ErrorBody,
    ErrorCode,
    Health,
    EventAiEndpointEvent,
    EventImportEvent,
    EventItemEvent,
    EventMediaDeletedEvent,
    EventStatsEvent,
    EventWorkerEvent,
    ImportRequest,
    ImportStatus,
    ItemDetail,
    ItemList,
    MediaItem,
    MediaStatusList,
    StatsResponse,
    Status,
    UploadMediaBody,
    UploadResult,
    WorkerAction,
)
from immichvr_client.types import File

Event = (
    EventStatsEvent
    | EventItemEvent
    | EventMediaDeletedEvent
    | EventWorkerEvent
    | EventAiEndpointEvent
    | EventImportEvent
)

# One model per event type, chosen by the discriminator `type`.
EVENT_MODELS: dict[
    str,
    type[EventStatsEvent]
    | type[EventItemEvent]
    | type[EventMediaDeletedEvent]
    | type[EventWorkerEvent]
    | type[EventAiEndpointEvent]
    | type[EventImportEvent],
] = {
    "stats": EventStatsEvent,
    "item": EventItemEvent,
    "media_deleted": EventMediaDeletedEvent,
    "worker": EventWorkerEvent,
    "ai_endpoint": EventAiEndpointEvent,
    "import": EventImportEvent,
}


def png(width: int, height: int, seed: int) -> bytes:
    """A real grayscale PNG, from the standard library alone."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(
        b"\x00" + bytes((x * 7 + y * 13 + seed) % 256 for x in range(width)) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


T = TypeVar("T")


def expect(value: object, kind: type[T], what: str) -> T:
    if not isinstance(value, kind):
        raise AssertionError(f"{what}: expected {kind.__name__}, got {value!r}")
    return value


def expect_error(value: object, code: ErrorCode, what: str) -> None:
    err = expect(value, ErrorBody, what)
    assert err.code == code, f"{what}: {err.code} {err.message}"
    assert err.message, what


def events(base_url: str, token: str, count: int) -> Iterator[Event]:
    """Reads `/api/events` with httpx (the generated `stream_events` would
    read the endless body whole) and parses each event's JSON with the
    generated model its `type` names."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    with httpx.stream("GET", f"{base_url}/api/events", headers=headers, timeout=30) as r:
        assert r.status_code == 200, r.status_code
        data: list[str] = []
        seen = 0
        for line in r.iter_lines():
            if line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                payload = json.loads("\n".join(data))
                data = []
                yield EVENT_MODELS[payload["type"]].from_dict(payload)
                seen += 1
                if seen == count:
                    return


def wait_completed(client: AuthenticatedClient, queue_id: uuid.UUID) -> ItemDetail:
    deadline = time.monotonic() + 30
    while True:
        item = expect(get_queue_item.sync(queue_id, client=client), ItemDetail, "getQueueItem")
        if item.status == Status.COMPLETED:
            return item
        assert item.status != Status.FAILED, f"failed: {item.last_error}"
        assert time.monotonic() < deadline, f"still {item.status}"
        time.sleep(0.1)


def open_server(base_url: str, placeholder: str) -> None:
    """Without AUTH_TOKEN the server ignores the header: any non-empty
    placeholder works (an empty one is not a valid header value)."""
    client = AuthenticatedClient(base_url=base_url, token=placeholder)
    expect(get_queue_stats.sync(client=client), StatsResponse, "getQueueStats")
    expect(get_api_health.sync(client=client), Health, "getApiHealth")
    print("python (no AUTH_TOKEN): ok")


def main(base_url: str, token: str) -> None:
    client = AuthenticatedClient(base_url=base_url, token=token, timeout=httpx.Timeout(30.0))
    photo = png(48, 32, 1)
    up = expect(
        upload_media.sync(
            client=client,
            body=UploadMediaBody(media=File(payload=BytesIO(photo), file_name="py.png", mime_type="image/png")),
        ),
        UploadResult,
        "uploadMedia",
    )
    assert not up.duplicate
    raw = expect(
        upload_media_raw.sync(client=client, body=File(payload=BytesIO(png(20, 20, 2))), filename="py-raw.png"),
        UploadResult,
        "uploadMediaRaw",
    )
    assert raw.filename == "py-raw.png"
    done = wait_completed(client, up.queue_id)
    wait_completed(client, raw.queue_id)
    assert done.completed_at is not None

    listed = expect(list_media_status.sync(client=client, limit=50), MediaStatusList, "listMediaStatus")
    ids = {row.media_id for row in listed.media}
    assert {up.media_item_id, raw.media_item_id} <= ids, ids
    items = expect(list_queue_items.sync(client=client, status=Status.COMPLETED), ItemList, "listQueueItems")
    assert all(i.status == Status.COMPLETED for i in items.items)
    assert up.queue_id in {i.id for i in items.items}

    depth = get_media_depth.sync_detailed(up.media_item_id, client=client)
    assert depth.status_code == 200, depth.status_code
    assert depth.content.startswith(b"\x89PNG\r\n\x1a\n")
    media = expect(get_media.sync(up.media_item_id, client=client), MediaItem, "getMedia")
    assert media.original_filename == "py.png"

    # Typed errors: the generated client parses each into ErrorBody.
    expect_error(get_media.sync(uuid.uuid4(), client=client), ErrorCode.MEDIA_NOT_FOUND, "404")
    expect_error(list_queue_items.sync(client=client, limit=0), ErrorCode.BAD_REQUEST, "400")
    text = File(payload=BytesIO(b"just text, not a photo"), file_name="t.txt")
    expect_error(upload_media.sync(client=client, body=UploadMediaBody(media=text)), ErrorCode.UNSUPPORTED_MEDIA_TYPE, "415")

    started = expect(start_immich_import.sync(client=client, body=ImportRequest(limit=2)), ImportStatus, "startImmichImport")
    assert started.running or started.queued >= 0
    deadline = time.monotonic() + 30
    while expect(get_immich_import.sync(client=client), ImportStatus, "getImmichImport").running:
        assert time.monotonic() < deadline, "the import did not finish"
        time.sleep(0.1)

    # Typed events; stopping and starting the worker makes two of them.
    # (Other events, such as items finishing, may come in between.)
    stream = events(base_url, token, 20)
    got: list[Event] = [next(stream)]
    assert isinstance(got[0], EventStatsEvent), got
    expect(stop_worker.sync(client=client), WorkerAction, "stopWorker")
    expect_error(stop_worker.sync(client=client), ErrorCode.WORKER_STOPPED, "409")
    expect(start_worker.sync(client=client), WorkerAction, "startWorker")
    workers: list[bool] = []
    for event in stream:
        got.append(event)
        if isinstance(event, EventWorkerEvent):
            workers.append(event.running)
            if len(workers) == 2:
                break
    assert workers == [False, True], got
    print(f"python: ok ({len(ids)} media, {len(got)} typed events: {[type(e).__name__ for e in got]})")


if __name__ == "__main__":
    if "--open" in sys.argv:
        open_server(sys.argv[1], sys.argv[2])
    else:
        main(sys.argv[1], sys.argv[2])
