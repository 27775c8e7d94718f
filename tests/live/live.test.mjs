// The VR app's live channel with the client the app uses: socket.io-client
// 4.8.3, WebSocket only, no polling first (as the app connects), against
// the real binary and the AI and Immich stand-ins.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { startStandins, startServer, setAiMode, freePort, TOKEN } from '../browser/harness.mjs';

const PHOTO = '00000000-0000-4000-8000-000000000001';
const PHOTO2 = '00000000-0000-4000-8000-000000000002';
const PHOTO3 = '00000000-0000-4000-8000-000000000003';
// Photos of Alice's and Bob's own (the stand-in's `--people`).
const A1 = 'a1000000-0000-4000-8000-000000000001';
const B1 = 'b0000000-0000-4000-8000-000000000001';
const B2 = 'b0000000-0000-4000-8000-000000000002';
let standins;

before(async () => { standins = await startStandins(['--immich', '--immich-photos', '6', '--people']); });
after(() => standins.child.kill());

function env(extra = {}) {
  return { AI_SERVICE_URL: standins.AI_URL, IMMICH_URL: standins.IMMICH_URL, IMMICH_API_KEY: standins.IMMICH_API_KEY, ...extra };
}

// A socket that records everything it is sent; `next` waits for a match.
// As the operator (the token) unless `opts.extraHeaders` says otherwise.
function connect(url, opts = {}) {
  const auth = { extraHeaders: { Authorization: `Bearer ${TOKEN}` } };
  const socket = io(url, { transports: ['websocket'], upgrade: false, reconnection: false, forceNew: true, ...auth, ...opts });
  const seen = [];
  const waiting = [];
  socket.onAny((name, data) => {
    seen.push({ name, data });
    for (const w of [...waiting]) {
      if (w.name === name && w.pred(data)) { waiting.splice(waiting.indexOf(w), 1); w.resolve(data); }
    }
  });
  const next = (name, pred = () => true, ms = 15000) => {
    const hit = seen.find((e) => e.name === name && pred(e.data) && !e.taken);
    if (hit) { hit.taken = true; return Promise.resolve(hit.data); }
    return new Promise((resolve, reject) => {
      const w = { name, pred, resolve };
      waiting.push(w);
      setTimeout(() => reject(new Error(`no ${name} within ${ms} ms; seen: ${seen.map((e) => e.name).join(', ')}`)), ms);
    });
  };
  return { socket, seen, next };
}

async function sync(url) {
  const r = await fetch(`${url}/api/settings/models/sync`, { method: 'POST' });
  assert.equal(r.status, 200);
}

test('connect: model:status and queue:update arrive at once, then queue:get-status answers', async () => {
  const s = await startServer(env());
  try {
    const c = connect(s.url);
    const status = await c.next('model:status');
    assert.ok(['loaded', 'unloaded'].includes(status.status));
    const q = await c.next('queue:update');
    // The app's fields, and ours added (the followed library, why background work waits).
    assert.deepEqual(Object.keys(q).sort(), ['backgroundPausedReason', 'current', 'isProcessing', 'length', 'library', 'running', 'sentAt']);
    assert.equal(c.socket.io.engine.transport.name, 'websocket', 'no polling');
    c.socket.emit('queue:get-status');
    await c.next('queue:update');
    c.socket.close();
  } finally { s.stop(); }
});

test('an event sent the moment the socket connects is answered (the app asks at once)', async () => {
  const s = await startServer(env());
  try {
    // Each socket asks the moment it is connected, before any greeting.
    const clients = Array.from({ length: 50 }, () => {
      const c = connect(s.url);
      c.socket.once('connect', () => c.socket.emit('queue:get-status'));
      return c;
    });
    // The greeting's queue:update and the answer to the question.
    await Promise.all(clients.map(async (c) => { await c.next('queue:update'); await c.next('queue:update', () => true, 5000); }));
    for (const c of clients) c.socket.close();
  } finally { s.stop(); }
});

test('generate a depth map and a splat: progress, completion, files listed', async () => {
  const s = await startServer(env());
  try {
    await sync(s.url);
    const c = connect(s.url);
    await c.next('queue:update');
    c.socket.emit('model:generate', { id: PHOTO, type: 'depth', modelKey: 'small' });
    const queued = await c.next('model:generation-progress', (d) => d.id === PHOTO && d.status === 'queued');
    assert.equal(queued.progress, 0);
    const done = await c.next('model:generation-complete', (d) => d.id === PHOTO && d.type === 'depth');
    assert.equal(done.success, true, JSON.stringify(done));
    const stages = c.seen.filter((e) => e.name === 'model:generation-progress' && e.data.id === PHOTO).map((e) => e.data.status);
    for (const st of ['fetching_image', 'sending_to_ai', 'generating', 'saving', 'complete']) assert.ok(stages.includes(st), `${st} in ${stages}`);

    c.socket.emit('model:generate', { id: PHOTO, type: 'splat', modelKey: 'sharp' });
    const splat = await c.next('model:generation-complete', (d) => d.id === PHOTO && d.type === 'splat');
    assert.equal(splat.success, true);
    assert.ok(!splat.warning, 'the KSPLAT was made');
    const files = await (await fetch(`${s.url}/api/assets/${PHOTO}/files`)).json();
    const formats = files.files.map((f) => `${f.type}/${f.modelKey}/${f.format}`).sort();
    assert.deepEqual(formats, ['depth/small/png', 'splat/sharp/ksplat', 'splat/sharp/ply']);

    // Asked again: from the store, said so.
    c.socket.emit('model:generate', { id: PHOTO, type: 'depth', modelKey: 'small' });
    const hit = await c.next('model:generation-complete', (d) => d.id === PHOTO && d.cached === true);
    assert.equal(hit.success, true);
    c.socket.close();
  } finally { s.stop(); }
});

test('with the worker stopped, model:generate is still served (background work waits)', async () => {
  const s = await startServer(env());
  try {
    await sync(s.url);
    const r = await fetch(`${s.url}/api/queue/worker/stop`, { method: 'POST' });
    assert.equal(r.status, 200);
    const c = connect(s.url);
    await c.next('queue:update');
    c.socket.emit('model:generate', { id: PHOTO3, type: 'depth', modelKey: 'small' });
    const done = await c.next('model:generation-complete', (d) => d.id === PHOTO3, 10000);
    assert.equal(done.success, true, JSON.stringify(done));
    const q = await c.next('queue:update', (u) => typeof u.backgroundPausedReason === 'string');
    assert.match(q.backgroundPausedReason, /stopped/);
    c.socket.close();
  } finally { s.stop(); }
});

test('queue:update carries the followed library\'s figures', async () => {
  const s = await startServer(env({ IMMICH_SYNC_SECS: '3600' }));
  try {
    const c = connect(s.url);
    const q = await c.next('queue:update', (u) => u.library && u.library.ready >= 6, 30000);
    assert.equal(q.library.model, 'small');
    assert.ok(q.library.photos >= q.library.ready, JSON.stringify(q.library));
    assert.ok(Array.isArray(q.library.skipped));
    c.socket.close();
  } finally { s.stop(); }
});

test('two clients asking for the same job share it and both hear it end', async () => {
  await setAiMode(standins.CONTROL_URL, 'delay:700');
  const s = await startServer(env());
  try {
    await sync(s.url);
    const a = connect(s.url);
    const b = connect(s.url);
    await Promise.all([a.next('queue:update'), b.next('queue:update')]);
    a.socket.emit('model:generate', { id: PHOTO2, type: 'depth', modelKey: 'small' });
    b.socket.emit('model:generate', { id: PHOTO2, type: 'depth', modelKey: 'small' });
    const [da, db] = await Promise.all([
      a.next('model:generation-complete', (d) => d.id === PHOTO2),
      b.next('model:generation-complete', (d) => d.id === PHOTO2),
    ]);
    assert.equal(da.success, true);
    assert.equal(db.queueId, da.queueId, 'one job');
    const running = [...a.seen, ...b.seen].filter((e) => e.name === 'queue:update' && e.data.current);
    assert.ok(running.some((e) => e.data.current.id === PHOTO2 && !('socketId' in e.data.current)), 'current names the photo, no socket ids');
    const items = await (await fetch(`${s.url}/api/queue/items?limit=100`)).json();
    assert.equal(items.items.filter((i) => i.kind === 'depth').length, 1);
    a.socket.close(); b.socket.close();
  } finally { s.stop(); await setAiMode(standins.CONTROL_URL, 'ok'); }
});

test('a job the AI refuses ends with success false for every socket', async () => {
  const s = await startServer(env());
  try {
    await sync(s.url);
    const a = connect(s.url);
    const b = connect(s.url);
    await Promise.all([a.next('queue:update'), b.next('queue:update')]);
    await setAiMode(standins.CONTROL_URL, 'status:422');
    a.socket.emit('model:generate', { id: PHOTO3, type: 'depth', modelKey: 'small' });
    for (const c of [a, b]) {
      const done = await c.next('model:generation-complete', (d) => d.id === PHOTO3);
      assert.equal(done.success, false);
      assert.equal(typeof done.error, 'string');
    }
    a.socket.close(); b.socket.close();
  } finally { s.stop(); await setAiMode(standins.CONTROL_URL, 'ok'); }
});

test('after a reboot: model:generate says the AI is down, then works as soon as it is up', async () => {
  // The AI service starts after the binary, as a PyTorch service does after
  // a reboot; the periodic sync is an hour away.
  const aiPort = await freePort();
  const s = await startServer(env({ AI_SERVICE_URL: `http://127.0.0.1:${aiPort}`, MODEL_SYNC_SECS: '3600' }));
  let ai;
  try {
    const c = connect(s.url);
    await c.next('queue:update');
    c.socket.emit('model:generate', { id: PHOTO, type: 'depth', modelKey: 'small' });
    const err = await c.next('model:error', (d) => d.id === PHOTO);
    assert.match(err.message, /cannot be reached/);
    assert.doesNotMatch(err.message, /download it/);
    const failed = await c.next('model:generation-complete', (d) => d.id === PHOTO);
    assert.equal(failed.success, false);
    // An id that is not a UUID names no photo (and is not sent to Immich).
    c.socket.emit('model:generate', { id: '..%2F..', type: 'depth', modelKey: 'small' });
    const none = await c.next('model:error', (d) => d.id === '..%2F..');
    assert.match(none.message, /photo ids are UUIDs/);

    ai = await startStandins([], aiPort);
    c.socket.emit('model:generate', { id: PHOTO, type: 'depth', modelKey: 'small' });
    const done = await c.next('model:generation-complete', (d) => d.id === PHOTO && d.success === true);
    assert.equal(done.type, 'depth');
    c.socket.close();
  } finally { s.stop(); ai?.child.kill(); }
});

test('model:download, model:load and model:unload always answer', async () => {
  const s = await startServer(env());
  try {
    await sync(s.url);
    const c = connect(s.url);
    const watcher = connect(s.url);
    await Promise.all([c.next('model:status'), watcher.next('model:status')]);
    c.socket.emit('model:download', { modelKey: 'base' });
    await c.next('model:status', (d) => d.status === 'downloading' && d.modelKey === 'base');
    await c.next('model:download-progress', (d) => d.modelKey === 'base' && d.progress === 0);
    await c.next('model:download-progress', (d) => d.modelKey === 'base' && d.progress === 100);
    await watcher.next('model:status', (d) => d.status === 'downloaded' && d.modelKey === 'base');

    c.socket.emit('model:load', { modelKey: 'base', trigger: 'manual', options: { device: 'gpu' } });
    const loaded = await watcher.next('model:status', (d) => d.status === 'loaded' && d.modelKey === 'base');
    assert.equal(typeof loaded.loadedAt, 'number');
    c.socket.emit('model:unload');
    await c.next('model:status', (d) => d.status === 'unloaded');
    c.socket.emit('model:unload');
    await c.next('model:status', (d) => d.status === 'unloaded' && d.modelKey === null);

    c.socket.emit('model:load', { modelKey: 'large', options: { device: 'cpu' } });
    const err = await c.next('model:error', (d) => d.modelKey === 'large');
    assert.match(err.message, /not downloaded/);
    c.socket.emit('model:load', { modelKey: 'nope' });
    await c.next('model:error', (d) => d.modelKey === 'nope');
    c.socket.close(); watcher.socket.close();
  } finally { s.stop(); }
});

test('payload-less, garbage, unknown and flooding events hurt nobody', async () => {
  const s = await startServer(env());
  try {
    const bad = connect(s.url);
    const good = connect(s.url);
    await Promise.all([bad.next('queue:update'), good.next('queue:update')]);
    for (const [name, payload] of [['model:load', undefined], ['model:generate', undefined], ['model:generate', 42],
      ['model:generate', { id: PHOTO }], ['model:generate', { id: 7, type: 'depth' }], ['model:download', 'x'],
      ['model:load', { modelKey: 'base', options: { device: {} } }], ['no:such-event', { a: 1 }]]) {
      if (payload === undefined) bad.socket.emit(name); else bad.socket.emit(name, payload);
      const e = await bad.next('model:error');
      assert.equal(typeof e.message, 'string', name);
    }
    for (let i = 0; i < 500; i++) bad.socket.emit('queue:get-status');
    await bad.next('model:error', (d) => /too many events/.test(d.message));
    // An oversized message closes only that socket.
    const closed = new Promise((resolve, reject) => {
      bad.socket.on('disconnect', resolve);
      setTimeout(() => reject(new Error('an oversized message did not close its socket')), 10000);
    });
    bad.socket.emit('model:generate', { id: 'x'.repeat(64 * 1024), type: 'depth' });
    await closed;
    good.socket.emit('queue:get-status');
    await good.next('queue:update');
    assert.equal((await fetch(`${s.url}/health`)).status, 200);
    bad.socket.close(); good.socket.close();
  } finally { s.stop(); }
});

test('the handshake follows the API rules: token, origin', async () => {
  const s = await startServer(env({ AUTH_TOKEN: 'live-token-123' }));
  try {
    const refused = connect(s.url);
    const err = await new Promise((r) => refused.socket.on('connect_error', r));
    assert.ok(err, 'no cookie, no token: refused');
    refused.socket.close();
    const ok = connect(s.url, { extraHeaders: { Authorization: 'Bearer live-token-123' } });
    await ok.next('model:status');
    ok.socket.close();
    // A signed-in browser's cookie works too (the app sends no token).
    const login = await fetch(`${s.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'live-token-123' }) });
    const cookie = login.headers.get('set-cookie').split(';')[0];
    const viaCookie = connect(s.url, { extraHeaders: { Cookie: cookie } });
    await viaCookie.next('model:status');
    viaCookie.socket.close();
    const foreign = connect(s.url, { extraHeaders: { Authorization: 'Bearer live-token-123', Origin: 'http://evil.example' } });
    await new Promise((r) => foreign.socket.on('connect_error', r));
    foreign.socket.close();
  } finally { s.stop(); }
});

// Resolves with the time it took the socket to be disconnected by the server.
function disconnected(c, ms = 3000) {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still connected after ${ms} ms`)), ms);
    c.socket.on('disconnect', (reason) => { clearTimeout(timer); resolve({ reason, after: Date.now() - t0 }); });
  });
}

async function signIn(url, token) {
  const login = await fetch(`${url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
  assert.equal(login.status, 200);
  return login.headers.get('set-cookie').split(';')[0];
}

test('signing out closes the sockets that sign-in opened, within a second; others stay', async () => {
  const s = await startServer(env({ AUTH_TOKEN: 'live-token-123' }));
  try {
    const cookie = await signIn(s.url, 'live-token-123');
    const other = await signIn(s.url, 'live-token-123');
    const mine = connect(s.url, { extraHeaders: { Cookie: cookie } });
    const theirs = connect(s.url, { extraHeaders: { Cookie: other } });
    await mine.next('model:status');
    await theirs.next('model:status');
    const gone = disconnected(mine, 1000);
    const out = await fetch(`${s.url}/api/auth/logout`, { method: 'POST', headers: { Cookie: cookie } });
    assert.equal(out.status, 200);
    const { reason, after } = await gone;
    assert.equal(reason, 'io server disconnect');
    assert.ok(after < 1000, `closed after ${after} ms`);
    // The other sign-in's socket is untouched and still answered.
    theirs.socket.emit('queue:get-status');
    await theirs.next('queue:update', () => true, 3000);
    // The ended session cannot open a new one either.
    const again = connect(s.url, { extraHeaders: { Cookie: cookie } });
    await new Promise((r) => again.socket.on('connect_error', r));
    again.socket.close();
    theirs.socket.close();
  } finally { s.stop(); }
});

test('a socket is closed when its session expires', async () => {
  const s = await startServer(env({ AUTH_TOKEN: 'live-token-123', SESSION_TTL_SECS: '2' }));
  try {
    const cookie = await signIn(s.url, 'live-token-123');
    const c = connect(s.url, { extraHeaders: { Cookie: cookie } });
    await c.next('model:status');
    const t0 = Date.now();
    const { reason } = await disconnected(c, 4000);
    assert.equal(reason, 'io server disconnect');
    // Expiry is at 2 s after sign-in, to the second; closed within one more.
    assert.ok(Date.now() - t0 < 3500, `closed after ${Date.now() - t0} ms`);
    // A bearer-token socket has no session to outlive.
    const token = connect(s.url, { extraHeaders: { Authorization: 'Bearer live-token-123' } });
    await token.next('model:status');
    token.socket.emit('queue:get-status');
    await token.next('queue:update');
    token.socket.close();
  } finally { s.stop(); }
});

test('a job pending when the service stops completes after it starts again', async () => {
  const data = mkdtempSync(join(tmpdir(), 'immichvr-live-restart-'));
  await setAiMode(standins.CONTROL_URL, 'hang');
  let s = await startServer(env({ DATA_DIR: data, SHUTDOWN_GRACE_SECS: '1' }));
  try {
    await sync(s.url);
    const c = connect(s.url);
    await c.next('queue:update');
    c.socket.emit('model:generate', { id: PHOTO3, type: 'depth', modelKey: 'small' });
    await c.next('model:generation-progress', (d) => d.id === PHOTO3 && d.status === 'generating');
    c.socket.close();
    const exited = new Promise((r) => s.child.on('exit', r));
    s.child.kill('SIGTERM');
    await exited;
    // Slow enough that the reconnected client is there when it ends.
    await setAiMode(standins.CONTROL_URL, 'delay:1500');
    s = await startServer(env({ DATA_DIR: data }));
    const again = connect(s.url);
    const done = await again.next('model:generation-complete', (d) => d.id === PHOTO3, 20000);
    assert.equal(done.success, true);
    const files = await (await fetch(`${s.url}/api/assets/${PHOTO3}/files`)).json();
    assert.equal(files.count, 1);
    again.socket.close();
  } finally { s.stop(); await setAiMode(standins.CONTROL_URL, 'ok'); }
});

// A person's session cookie: signed in with their Immich account.
async function personCookie(url, email, password) {
  const r = await fetch(`${url}/api/auth/login`, { method: 'POST', anonymous: true, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });
  assert.equal(r.status, 200, await r.clone().text());
  return r.headers.get('set-cookie').split(';')[0];
}

const alice = (url) => personCookie(url, 'alice@example.org', 'alice-password');
const bob = (url) => personCookie(url, 'bob@example.org', 'bob-password');
// A socket as a signed-in person: their cookie, no token.
const as = (url, cookie) => connect(url, { extraHeaders: { Cookie: cookie } });

async function control(path, body) {
  const r = await fetch(`${standins.CONTROL_URL}/__control/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(r.status, 200, `${path}: ${await r.text()}`);
}

// Every photo id an event of this socket named.
const named = (c) => c.seen.map((e) => JSON.stringify(e.data));
const running = (c, id) => c.seen.some((e) => e.name === 'queue:update' && (e.data.running || []).some((j) => j.id === id));

test('each person hears only of their own photos, and of a partner\'s once they are shared', async () => {
  // Jobs long enough that queue:update shows them running.
  await setAiMode(standins.CONTROL_URL, 'delay:600');
  const s = await startServer(env({ SHARING_CACHE_SECS: '1' }));
  try {
    await sync(s.url);
    const a = as(s.url, await alice(s.url));
    const b = as(s.url, await bob(s.url));
    const op = connect(s.url);
    await Promise.all([a.next('queue:update'), b.next('queue:update'), op.next('queue:update')]);
    a.socket.emit('model:generate', { id: A1, type: 'depth', modelKey: 'small' });
    b.socket.emit('model:generate', { id: B1, type: 'depth', modelKey: 'small' });
    const [da, db] = await Promise.all([
      a.next('model:generation-complete', (d) => d.id === A1),
      b.next('model:generation-complete', (d) => d.id === B1),
    ]);
    assert.equal(da.success, true, JSON.stringify(da));
    assert.equal(db.success, true, JSON.stringify(db));
    // The operator hears of both.
    await op.next('model:generation-complete', (d) => d.id === A1);
    await op.next('model:generation-complete', (d) => d.id === B1);
    // Wait out the last queue:update of the two jobs.
    await new Promise((r) => setTimeout(r, 600));
    assert.ok(running(a, A1), 'her queue:update shows her job running');
    assert.ok(running(b, B1), 'his queue:update shows his');
    assert.ok(running(op, A1) && running(op, B1), "the operator's shows both");
    assert.deepEqual(named(a).filter((t) => t.includes(B1)), [], "Alice was told of Bob's photo");
    assert.deepEqual(named(b).filter((t) => t.includes(A1)), [], "Bob was told of Alice's photo");
    // Bob shares his library with Alice in Immich: once what she sees is
    // asked again (SHARING_CACHE_SECS), his jobs reach her too.
    await control('share', { sharer: 'bob', receiver: 'alice' });
    await new Promise((r) => setTimeout(r, 1100));
    b.socket.emit('model:generate', { id: B2, type: 'depth', modelKey: 'small' });
    const shared = await a.next('model:generation-complete', (d) => d.id === B2);
    assert.equal(shared.success, true);
    await new Promise((r) => setTimeout(r, 600));
    assert.ok(running(a, B2), "his shared photo's job is in her queue:update");
    a.socket.close(); b.socket.close(); op.socket.close();
  } finally {
    await control('unshare', { sharer: 'bob', receiver: 'alice' });
    s.stop();
    await setAiMode(standins.CONTROL_URL, 'ok');
  }
});

test("queue:update's library reaches only its owner: Alice, who follows hers, sees it; Bob sees none", async () => {
  const s = await startServer(env({ IMMICH_SYNC_SECS: '1', SHARING_CACHE_SECS: '1' }));
  try {
    await sync(s.url);
    const aliceCookie = await alice(s.url);
    const r = await fetch(`${s.url}/api/settings`, { method: 'PUT', headers: { Cookie: aliceCookie, 'content-type': 'application/json' }, body: JSON.stringify({ followLibrary: true }) });
    assert.equal(r.status, 200);
    const a = as(s.url, aliceCookie);
    const b = as(s.url, await bob(s.url));
    const op = connect(s.url);
    const hers = await a.next('queue:update', (u) => u.library && u.library.ready >= 1, 30000);
    assert.equal(hers.library.ownerName, 'Alice');
    // The operator sees a library too (the service key's); Bob, none.
    await op.next('queue:update', (u) => !!u.library, 30000);
    await new Promise((r) => setTimeout(r, 1500));
    const his = b.seen.filter((e) => e.name === 'queue:update');
    assert.ok(his.length > 0, 'Bob gets queue:update');
    assert.deepEqual(his.filter((e) => e.data.library), [], 'Bob was shown a library');
    assert.ok(a.seen.filter((e) => e.name === 'queue:update' && e.data.library).every((e) => e.data.library.ownerName === 'Alice'));
    a.socket.close(); b.socket.close(); op.socket.close();
  } finally { s.stop(); }
});

test("a person's sign-out closes the sockets of that sign-in within a second; their other device and other people stay", async () => {
  const s = await startServer(env());
  try {
    const phone = await alice(s.url);
    const headset = await alice(s.url);
    const mine = [as(s.url, phone), as(s.url, phone)];
    const other = as(s.url, headset);
    const his = as(s.url, await bob(s.url));
    await Promise.all([...mine, other, his].map((c) => c.next('model:status')));
    const gone = mine.map((c) => disconnected(c, 1000));
    const out = await fetch(`${s.url}/api/auth/logout`, { method: 'POST', headers: { Cookie: phone } });
    assert.equal(out.status, 200);
    for (const { reason, after } of await Promise.all(gone)) {
      assert.equal(reason, 'io server disconnect');
      assert.ok(after < 1000, `closed after ${after} ms`);
    }
    for (const c of [other, his]) {
      c.socket.emit('queue:get-status');
      await c.next('queue:update', () => true, 3000);
      assert.equal(c.socket.connected, true);
    }
    // The ended sign-in opens no new socket.
    const again = as(s.url, phone);
    await new Promise((r) => again.socket.on('connect_error', r));
    again.socket.close(); other.socket.close(); his.socket.close();
  } finally { s.stop(); }
});

test("a key revoked in Immich closes its person's sockets (within the key check's period)", async () => {
  const s = await startServer(env({ KEY_CHECK_SECS: '1' }));
  try {
    const cookie = await alice(s.url);
    const a = as(s.url, cookie);
    const b = as(s.url, await bob(s.url));
    await Promise.all([a.next('model:status'), b.next('model:status')]);
    const gone = disconnected(a, 3000);
    // Alice deletes her keys in Immich's account settings.
    await control('revoke', { user: 'alice' });
    const { reason, after } = await gone;
    assert.equal(reason, 'io server disconnect');
    assert.ok(after < 3000, `closed after ${after} ms`);
    const r = await fetch(`${s.url}/api/settings`, { headers: { Cookie: cookie } });
    assert.equal(r.status, 401);
    b.socket.emit('queue:get-status');
    await b.next('queue:update', () => true, 3000);
    b.socket.close();
  } finally { s.stop(); }
});

test('model:load, model:unload and model:download from a person who is not an operator: model:error, nothing changes', async () => {
  const s = await startServer(env());
  try {
    await sync(s.url);
    const a = as(s.url, await alice(s.url));
    const watcher = connect(s.url);
    await Promise.all([a.next('model:status'), watcher.next('model:status')]);
    for (const [name, payload] of [['model:download', { modelKey: 'base' }], ['model:load', { modelKey: 'small', options: { device: 'gpu' } }], ['model:unload', undefined]]) {
      if (payload === undefined) a.socket.emit(name); else a.socket.emit(name, payload);
      const e = await a.next('model:error');
      assert.match(e.message, /only an operator/, name);
    }
    await new Promise((r) => setTimeout(r, 500));
    const changes = watcher.seen.filter((e) => e.name === 'model:status').slice(1);
    assert.deepEqual(changes, [], 'no model changed');
    a.socket.close(); watcher.socket.close();
  } finally { s.stop(); }
});
