// The main flow through the client @hey-api/openapi-ts generates from
// openapi.yaml (fetch client; zod validates requests and answers), against
// the running binary and the AI stand-in. Type-checked with
// `tsc --noEmit --strict` before it runs.
//
// Usage: node dist/flow.js BASE_URL TOKEN

import * as zlib from 'node:zlib';

import { client } from './gen/client.gen';
import {
  getImmichImport,
  getMedia,
  getMediaDepth,
  getQueueItem,
  listMediaStatus,
  listQueueItems,
  startImmichImport,
  startWorker,
  stopWorker,
  streamEvents,
  uploadMedia,
  uploadMediaRaw,
} from './gen/sdk.gen';
import type { ErrorBody, ErrorCode, Event, ItemDetail } from './gen/types.gen';

// hey-api's zod plugin writes `z.string()` for `format: binary` while its
// types say `Blob | File` (hey-api/hey-api#4265), so its validators refuse
// every file body. Calls that send or receive a file turn them off; every
// JSON request and answer stays validated.
const binary = { requestValidator: undefined, responseValidator: undefined };

function check(ok: boolean, what: string): asserts ok {
  if (!ok) throw new Error(what);
}

function expectError(error: ErrorBody | undefined, status: number, code: ErrorCode, got: number): void {
  check(got === status, `expected ${status}, got ${got}`);
  check(error !== undefined && error.code === code && error.message.length > 0, `expected ${code}: ${JSON.stringify(error)}`);
}

/** A real grayscale PNG, from Node's zlib alone. */
function png(width: number, height: number, seed: number): Buffer {
  const chunk = (kind: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(kind, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body) >>> 0);
    return Buffer.concat([len, body, crc]);
  };
  const rows: number[] = [];
  for (let y = 0; y < height; y++) {
    rows.push(0);
    for (let x = 0; x < width; x++) rows.push((x * 7 + y * 13 + seed) % 256);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 0, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'),
    chunk('IHDR', header),
    chunk('IDAT', zlib.deflateSync(Buffer.from(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
const PNG_A = png(40, 30, 5);
const PNG_B = png(16, 16, 9);

async function waitCompleted(id: string): Promise<ItemDetail> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { data } = await getQueueItem({ path: { id } });
    check(data !== undefined, 'getQueueItem');
    if (data.status === 'completed') return data;
    check(data.status !== 'failed', `failed: ${data.last_error}`);
    check(Date.now() < deadline, `still ${data.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(baseUrl: string, token: string): Promise<void> {
  client.setConfig({ baseUrl, auth: token });

  const up = await uploadMedia({
    body: { media: new File([new Uint8Array(PNG_A)], 'ts.png', { type: 'image/png' }) },
    ...binary,
  });
  check(up.response.status === 201 && up.data !== undefined, `uploadMedia: ${up.response.status}`);
  const raw = await uploadMediaRaw({
    body: new Blob([new Uint8Array(PNG_B)]),
    query: { filename: 'ts-raw.png' },
    ...binary,
  });
  check(raw.data !== undefined && raw.data.filename === 'ts-raw.png', `uploadMediaRaw: ${raw.response.status}`);
  await waitCompleted(up.data.queueId);
  await waitCompleted(raw.data.queueId);

  const listed = await listMediaStatus({ query: { limit: 50 } });
  check(listed.data !== undefined, 'listMediaStatus');
  const ids = new Set(listed.data.media.map((m) => m.media_id));
  check(ids.has(up.data.mediaItemId) && ids.has(raw.data.mediaItemId), 'both uploads listed');
  const done = await listQueueItems({ query: { status: 'completed' } });
  check(done.data !== undefined && done.data.items.every((i) => i.status === 'completed'), 'listQueueItems');
  check(done.data.items.some((i) => i.id === up.data!.queueId), 'upload among completed');

  const depth = await getMediaDepth({ path: { id: up.data.mediaItemId }, parseAs: 'arrayBuffer', ...binary });
  check(depth.response.status === 200 && depth.data !== undefined, 'getMediaDepth');
  const head = new Uint8Array(depth.data as unknown as ArrayBuffer).subarray(0, 8);
  check(Buffer.from(head).equals(Buffer.from('\x89PNG\r\n\x1a\n', 'latin1')), 'depth map is a PNG');

  // Typed errors: `error` is the ErrorBody the spec declares.
  const missing = await getMedia({ path: { id: crypto.randomUUID() } });
  expectError(missing.error, 404, 'media-not-found', missing.response.status);
  const empty = await uploadMedia({ body: { media: new File([], 'empty.png') }, ...binary });
  expectError(empty.error, 400, 'empty-file', empty.response.status);
  const text = await uploadMedia({ body: { media: new File(['just text'], 't.txt') }, ...binary });
  expectError(text.error, 415, 'unsupported-media-type', text.response.status);

  const imp = await startImmichImport({ body: { limit: 2 } });
  check(imp.response.status === 202 && imp.data !== undefined, `startImmichImport: ${imp.response.status}`);
  check((await getImmichImport()).data !== undefined, 'getImmichImport');

  // Typed events: each is validated by zod and narrowed by `type`.
  const controller = new AbortController();
  const { stream } = await streamEvents({ signal: controller.signal, sseMaxRetryAttempts: 1 });
  const got: Event[] = [];
  for await (const event of stream) {
    got.push(event);
    if (got.length === 1) {
      check(event.type === 'stats', 'the first event is a stats snapshot');
      if (event.type === 'stats') check(event.stats.queued >= 0, 'stats counters');
      // Stopping and starting the worker makes two more events.
      check((await stopWorker()).response.status === 200, 'stopWorker');
      const again = await stopWorker();
      expectError(again.error, 409, 'worker-stopped', again.response.status);
      check((await startWorker()).response.status === 200, 'startWorker');
    }
    // Other events (items finishing) may come in between.
    if (got.filter((e) => e.type === 'worker').length === 2 || got.length === 20) break;
  }
  controller.abort();
  const running = got.flatMap((e) => (e.type === 'worker' ? [e.running] : []));
  check(got[0]?.type === 'stats' && running.join() === 'false,true', `events: ${JSON.stringify(got)}`);
  console.log(`typescript: ok (${ids.size} media, ${got.length} typed events: ${got.map((e) => e.type).join(', ')})`);
}

const [baseUrl, token] = process.argv.slice(2);
if (!baseUrl || !token) throw new Error('usage: flow.js BASE_URL TOKEN');
main(baseUrl, token).then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
