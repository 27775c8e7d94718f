// The headset's path: a page served by the binary itself from FRONTEND_DIR
// (under its COOP/COEP headers) does what the ImmichVR app does — XHR GET
// and PUT with JSON, thumbnails loaded as textures with
// crossOrigin="anonymous", fetch of the asset map, a WebSocket-only
// socket.io-client — in Chromium, over HTTPS with the self-signed
// certificate (the browser speaks HTTP/2 there), over plain HTTP, and
// behind a TLS-terminating reverse proxy that sets X-Forwarded-Proto.
// As a person, not the operator: the headset opens the app with nothing,
// is sent to the sign-in page, signs in as Alice (a user of the Immich
// stand-in with photos of her own) and comes back to the app, which then
// runs on her session cookie alone. Every request but that first redirect
// must answer 2xx and the live channel must talk.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, copyFileSync } from 'node:fs';
import { createServer as createHttps } from 'node:https';
import { request as httpRequest } from 'node:http';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startStandins, startServer, launch, watch } from './harness.mjs';

let standins;
let app;

before(async () => {
  // Alice has four photos of her own: the app's first bucket is hers.
  standins = await startStandins(['--immich', '--people', '--people-photos', '4']);
  app = mkdtempSync(join(tmpdir(), 'immichvr-headset-app-'));
  cpSync(join(ROOT, 'tests/browser/headset'), app, { recursive: true });
  copyFileSync(join(ROOT, 'tests/live/node_modules/socket.io-client/dist/socket.io.min.js'), join(app, 'socket.io.min.js'));
});

after(() => {
  standins?.child.kill('SIGKILL');
  if (app) rmSync(app, { recursive: true, force: true });
});

function env(extra = {}) {
  return { IMMICH_URL: standins.IMMICH_URL, IMMICH_API_KEY: standins.IMMICH_API_KEY, AI_SERVICE_URL: standins.AI_URL, FRONTEND_DIR: app, ...extra };
}

// Opens `url` in Chromium with no credentials, signs in as Alice on the
// sign-in page it is sent to, lets the app run, and checks every request.
async function runApp(url, label) {
  const browser = await launch({ ignoreHTTPSErrors: true, anonymous: true });
  try {
    const page = await browser.context.newPage();
    const problems = watch(page);
    const answers = [];
    page.on('response', (r) => answers.push({ url: r.url(), status: r.status() }));
    const sockets = [];
    page.on('websocket', (ws) => {
      const s = { url: ws.url(), frames: 0, error: null };
      ws.on('framereceived', () => { s.frames += 1; });
      ws.on('socketerror', (e) => { s.error = e; });
      sockets.push(s);
    });
    await page.goto(url);
    await page.waitForURL((u) => u.pathname === '/signin/');
    await page.fill('#email', 'alice@example.org');
    await page.fill('#password', 'alice-password');
    await page.click('#submit');
    await page.waitForURL((u) => u.pathname === '/');
    const result = await page.evaluate(() => window.result);
    assert.equal(result.ok, true, `${label}: ${result.error}`);
    assert.equal(result.textures.length, 4, label);
    assert.ok(result.textures.every((t) => t.w > 0 && t.h > 0), label);
    assert.equal(result.isolated, true, `${label}: the page is cross-origin isolated (COOP/COEP)`);
    // The first answer sends the stranger to sign in; all the others are 2xx.
    const [first, ...rest] = answers;
    assert.equal(first.status, 303, `${label}: ${first.status} ${first.url}`);
    for (const a of rest) {
      assert.ok(a.status >= 200 && a.status < 300, `${label}: ${a.status} ${a.url}`);
    }
    assert.ok(rest.some((a) => a.url.endsWith('/api/auth/login') && a.status === 200), `${label}: signed in`);
    // The page, its two scripts, settings x2, timeline x2, 4 thumbnails, the map.
    const inApp = rest.slice(rest.findIndex((a) => a.url.endsWith('/api/auth/login')) + 1);
    assert.ok(inApp.length >= 12, `${label}: only ${inApp.length} answers`);
    // Alice's own photos, on her own key: none of the admin's library.
    assert.ok(result.ids.every((id) => id.startsWith('a1000000-')), `${label}: ${result.ids}`);
    assert.ok(sockets.length >= 1 && sockets.every((s) => s.error === null && s.frames > 0), `${label}: ${JSON.stringify(sockets)}`);
    assert.deepEqual(problems.failed, [], label);
    assert.deepEqual(problems.console, [], label);
    return result.protocols;
  } finally {
    await browser.close();
  }
}

test('over HTTPS with the self-signed certificate, as a headset opens it', async () => {
  const s = await startServer(env({ TLS_SELF_SIGNED: 'true' }), { tls: true });
  try {
    const protocols = await runApp(`${s.url}/`, 'https');
    // What made the headset's requests fail before: HTTP/2 has no Host.
    assert.ok(protocols.includes('h2'), `over TLS Chromium speaks HTTP/2: ${protocols}`);
  } finally { s.stop(); }
});

test('over plain HTTP', async () => {
  const s = await startServer(env());
  try {
    await runApp(`${s.url}/`, 'http');
  } finally { s.stop(); }
});

// A reverse proxy that terminates TLS and passes the Host on (as Caddy
// does), adding X-Forwarded-Proto/-For; WebSocket upgrades are tunnelled.
function tlsProxy(upstream, key, cert) {
  const target = new URL(upstream);
  const forwarded = (req) => ({
    ...req.headers,
    'x-forwarded-proto': 'https',
    'x-forwarded-for': req.socket.remoteAddress,
  });
  const server = createHttps({ key, cert }, (req, res) => {
    const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: forwarded(req) }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  server.on('upgrade', (req, socket, head) => {
    const up = netConnect(Number(target.port), target.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (const [k, v] of Object.entries(forwarded(req))) lines.push(`${k}: ${v}`);
      up.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head?.length) up.write(head);
      up.pipe(socket); socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  return new Promise((res) => server.listen(0, '127.0.0.1', () => res(server)));
}

test('behind a TLS-terminating reverse proxy that sets X-Forwarded-Proto', async () => {
  // The proxy reuses a certificate the binary made (a TLS start once).
  const certs = await startServer(env({ TLS_SELF_SIGNED: 'true' }), { tls: true });
  const key = readFileSync(join(certs.dataDir, 'tls/key.pem'));
  const cert = readFileSync(join(certs.dataDir, 'tls/cert.pem'));
  certs.stop();
  const s = await startServer(env());
  const proxy = await tlsProxy(s.url, key, cert);
  try {
    await runApp(`https://127.0.0.1:${proxy.address().port}/`, 'proxy');
  } finally {
    proxy.close();
    proxy.closeAllConnections?.();
    s.stop();
  }
});
