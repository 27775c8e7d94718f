// Starts the stand-ins, the real binary and Debian's Chromium for one test
// file, and records console errors and failed requests of every page.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync, crc32 as zcrc } from 'node:zlib';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

// The operator's AUTH_TOKEN every server gets: the service is closed by
// default, and the tests act as the operator unless they say otherwise.
// Every fetch carries it unless it sends its own Authorization or Cookie,
// or says `anonymous: true`.
export const TOKEN = 'test-operator-token';
const plainFetch = globalThis.fetch;
globalThis.fetch = (input, init = {}) => {
  const headers = new Headers(init.headers || {});
  if (!init.anonymous && !headers.has('authorization') && !headers.has('cookie')) headers.set('authorization', `Bearer ${TOKEN}`);
  return plainFetch(input, { ...init, headers });
};
export const SHOTS = join(ROOT, 'artifacts', 'screenshots');
// The binaries of this checkout's build (CARGO_TARGET_DIR when set).
const TARGET = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(ROOT, 'target');
const children = [];

process.on('exit', () => { for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } } });

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
    s.on('error', rej);
  });
}

// Runs the stand-ins example (examples/standins.rs) on free ports and
// waits until its control port answers. Gives {AI_URL, CONTROL_URL, child}.
export async function startStandins(extra = [], port = undefined) {
  const aiPort = port ?? await freePort();
  const controlPort = await freePort();
  const bin = join(TARGET, 'debug/examples/standins');
  const args = ['--ai-port', String(aiPort), '--control-port', String(controlPort), ...extra];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines = [];
  child.stdout.on('data', (d) => lines.push(...String(d).split('\n')));
  const urls = { child, AI_URL: `http://127.0.0.1:${aiPort}`, CONTROL_URL: `http://127.0.0.1:${controlPort}`, lines };
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`stand-ins exited with ${child.exitCode}`);
    try {
      await setAiMode(urls.CONTROL_URL, 'ok');
      // Lines printed before the control port opened are all in by now.
      for (const line of lines) {
        const m = line.match(/^immich stand-in: (\S+)/);
        if (m) urls.IMMICH_URL = m[1];
        const k = line.match(/^immich key: (\S+)/);
        if (k) urls.IMMICH_API_KEY = k[1];
      }
      return urls;
    } catch { await new Promise((r) => setTimeout(r, 50)); }
  }
  throw new Error('stand-ins did not start');
}

// An HTTPS GET that accepts our self-signed certificate.
function insecureStatus(url) {
  return new Promise((res) => {
    const r = httpsGet(url, { rejectUnauthorized: false }, (resp) => { resp.resume(); res(resp.statusCode); });
    r.on('error', () => res(0));
  });
}

// The real binary on a free port; `{ tls: true }` when env makes it serve
// HTTPS (the URL is then https://).
export async function startServer(env = {}, opts = {}) {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'immichvr-browser-'));
  const child = spawn(join(TARGET, 'debug/immichvr'), [], {
    env: {
      PATH: process.env.PATH, RUST_LOG: 'warn', DATA_DIR: dataDir, BACKEND_PORT: String(port),
      // Following Immich is what a test of it turns on.
      BIND_ADDR: '127.0.0.1', RETRY_BASE_SECS: '0.05', AUTH_TOKEN: TOKEN, IMMICH_SYNC_SECS: '0', ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.push(child);
  const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (opts.tls) {
      if (await insecureStatus(`${url}/health`) === 200) break;
    } else {
      try { if ((await fetch(`${url}/health`)).ok) break; } catch { /* not yet */ }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, child, dataDir, stop() { child.kill('SIGTERM'); rmSync(dataDir, { recursive: true, force: true }); } };
}

// Chromium with a fresh profile. Its pages act as the operator (the
// token as a header on every request) unless `anonymous: true`: those
// sign in themselves.
export async function launch(options = {}) {
  const { anonymous, ...rest } = options;
  options = anonymous ? rest : { extraHTTPHeaders: { Authorization: `Bearer ${TOKEN}` }, ...rest };
  const profile = mkdtempSync(join(tmpdir(), 'immichvr-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-sync'],
    ...options,
  });
  mkdirSync(SHOTS, { recursive: true });
  return { context, async close() { await context.close(); rmSync(profile, { recursive: true, force: true }); } };
}

// Records what must stay empty: console errors, uncaught exceptions and
// requests that failed at the network level.
export function watch(page) {
  const problems = { console: [], failed: [] };
  page.on('console', (m) => { if (m.type() === 'error') problems.console.push(`${m.text()} @ ${m.location()?.url || ''}`); });
  page.on('pageerror', (e) => problems.console.push(`uncaught: ${e.message}`));
  page.on('requestfailed', (r) => problems.failed.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  return problems;
}

// A real PNG (RGB, 8 bit) of the given size whose pixels depend on `seed`,
// so that every seed is a distinct file for the server's duplicate check.
export function png(w, h, seed) {
  const crc = (buf) => zcrc(buf) >>> 0;
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; ihdr[9] = 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = (x * 4 + seed * 40) & 255; raw[o + 1] = (y * 4 + seed * 90) & 255; raw[o + 2] = ((x + y) * 2 + seed * 17) & 255;
    }
  }
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// Modes as examples/standins.rs reads them: `ok`, `status:422`, `delay:500`...
export async function setAiMode(control, mode) {
  const r = await fetch(`${control}/__control/mode`, { method: 'POST', body: mode });
  if (!r.ok) throw new Error(`control: ${r.status}`);
}

export async function apiJson(base, path, init) {
  const r = await fetch(`${base}${path}`, init);
  return r.json();
}
