// Signing in on a phone, the way a person does it: a stranger opens the
// app served by the binary (FRONTEND_DIR), is sent to the sign-in page,
// types their Immich email and password, presses the button, and lands
// back in the app, whose calls then work with the session cookie alone.
// Signing out sends them to sign in again. Also: "Remember this device",
// a wrong password, and the API-key way for an account that signs in to
// Immich with OAuth only. The Immich stand-in's people are
// tests/common/immich_users.rs (Alice, Bob, Carol).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStandins, startServer, launch, watch, SHOTS } from './harness.mjs';

const PHONE = { width: 390, height: 844 };
const ALICE = 'a11ce000-0000-4000-8000-00000000000a';
const CAROL = 'ca401000-0000-4000-8000-00000000000c';
// What the service asks of a pasted key (the sign-in page lists them too).
const KEY_PERMISSIONS = ['asset.read', 'asset.view', 'asset.download', 'asset.statistics', 'album.read', 'partner.read', 'user.read'];

let standins; let server; let app;

// A tiny app: it asks who it is with the cookie the browser holds, and
// can sign out, as the VR app's own calls would.
const INDEX = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>App</title>
<link rel="icon" href="data:,"><script type="module" src="/app.js"></script></head>
<body><h1>The app</h1><pre id="who"></pre></body></html>`;
const APP = `window.who = fetch('/api/auth/status').then((r) => r.json()).then((s) => {
  document.getElementById('who').textContent = s.user ? s.user.name : 'nobody';
  return s;
});
window.signOut = () => fetch('/api/auth/logout', { method: 'POST' }).then(async (r) => { await r.text(); return r.status; });
window.map = () => fetch('/api/assets/map').then(async (r) => { await r.text(); return r.status; });`;

before(async () => {
  standins = await startStandins(['--immich', '--immich-photos', '3', '--people']);
  app = mkdtempSync(join(tmpdir(), 'immichvr-signin-app-'));
  writeFileSync(join(app, 'index.html'), INDEX);
  writeFileSync(join(app, 'app.js'), APP);
  server = await startServer({
    IMMICH_URL: standins.IMMICH_URL, IMMICH_API_KEY: standins.IMMICH_API_KEY, AI_SERVICE_URL: standins.AI_URL, FRONTEND_DIR: app,
  });
});

after(() => {
  server?.stop();
  standins?.child.kill();
  if (app) rmSync(app, { recursive: true, force: true });
});

// A phone's browser with nothing of ours: no header, no cookie.
const phone = () => launch({ anonymous: true, viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 3 });

const session = async (context) => (await context.cookies()).find((c) => c.name === 'immichvr_session');

// Opens `/`, which sends the stranger to the sign-in page.
async function toSignIn(page) {
  const first = await page.goto(`${server.url}/`);
  await page.waitForURL((u) => u.pathname === '/signin/');
  assert.equal(new URL(page.url()).searchParams.get('next'), '/');
  assert.equal(first.status(), 200, 'the sign-in page, after the redirect');
  await page.locator('#way-password[aria-selected="true"]').waitFor();
}

// Types as a person does (one key at a time) and taps the button.
async function typeAndTap(page, fields) {
  for (const [sel, text] of Object.entries(fields)) {
    await page.tap(sel);
    await page.locator(sel).pressSequentially(text);
  }
  await page.tap('#submit');
}

test('a stranger on a phone is sent to sign in, signs in as Alice, lands in the app, and signs out', async () => {
  const b = await phone();
  try {
    const page = await b.context.newPage();
    const problems = watch(page);
    await toSignIn(page);
    // Made for a phone: no sideways scrolling, fields and button big enough to tap.
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth) <= PHONE.width);
    for (const sel of ['#email', '#password', '#submit', '#way-apiKey']) {
      const box = await page.locator(sel).boundingBox();
      assert.ok(box.height >= 44, `${sel} is ${box.height} px high`);
      assert.ok(box.x >= 0 && box.x + box.width <= PHONE.width, `${sel} fits the width`);
    }
    await page.screenshot({ path: join(SHOTS, '20-signin-phone.png') });
    await typeAndTap(page, { '#email': 'alice@example.org', '#password': 'alice-password' });
    await page.waitForURL((u) => u.pathname === '/' && !u.search);
    const who = await page.evaluate(() => window.who);
    assert.equal(who.authenticated, true);
    assert.equal(who.user.id, ALICE);
    assert.equal(who.user.name, 'Alice');
    assert.equal(who.role, 'user');
    await page.locator('#who', { hasText: 'Alice' }).waitFor();
    assert.equal(await page.evaluate(() => window.map()), 200, "the app's calls work with her cookie");
    // The cookie: HttpOnly, SameSite=Lax, for this sign-in only (12 h, not remembered).
    const c = await session(b.context);
    assert.ok(c, 'a session cookie');
    assert.equal(c.httpOnly, true);
    assert.equal(c.sameSite, 'Lax');
    const hours = (c.expires - Date.now() / 1000) / 3600;
    assert.ok(hours > 11 && hours <= 12.01, `expires in ${hours} h`);
    assert.equal(await page.evaluate(() => document.cookie.includes('immichvr_session')), false, 'not readable by scripts');
    await page.screenshot({ path: join(SHOTS, '21-signed-in-app.png') });

    // Signing out from the app: the next load is sent to sign in again.
    assert.equal(await page.evaluate(() => window.signOut()), 200);
    assert.equal(await session(b.context), undefined, 'the cookie is cleared');
    await page.reload();
    await page.waitForURL((u) => u.pathname === '/signin/');
    assert.equal(new URL(page.url()).searchParams.get('next'), '/');
    // Only the refusals this test provokes are in the console.
    assert.deepEqual(problems.console, []);
    assert.deepEqual(problems.failed, []);
  } finally {
    await b.close();
  }
});

test('"Remember this device" gives a cookie of 30 days', async () => {
  const b = await phone();
  try {
    const page = await b.context.newPage();
    await toSignIn(page);
    await page.tap('#remember');
    assert.equal(await page.locator('#remember').isChecked(), true);
    await typeAndTap(page, { '#email': 'alice@example.org', '#password': 'alice-password' });
    await page.waitForURL((u) => u.pathname === '/');
    const c = await session(b.context);
    const days = (c.expires - Date.now() / 1000) / 86400;
    assert.ok(days > 29.9 && days <= 30.01, `expires in ${days} days`);
    // The app in a new tab of the same browser is signed in at once.
    const again = await b.context.newPage();
    await again.goto(`${server.url}/`);
    assert.equal(new URL(again.url()).pathname, '/');
    assert.equal((await again.evaluate(() => window.who)).user.name, 'Alice');
  } finally {
    await b.close();
  }
});

test('a wrong password shows the server\'s message and signs nobody in', async () => {
  const b = await phone();
  try {
    const page = await b.context.newPage();
    const problems = watch(page);
    await toSignIn(page);
    const answer = page.waitForResponse((r) => r.url().endsWith('/api/auth/login'));
    await typeAndTap(page, { '#email': 'bob@example.org', '#password': 'not-his-password' });
    const r = await answer;
    assert.equal(r.status(), 401);
    const body = await r.json();
    assert.equal(body.code, 'invalid-credentials');
    const shown = page.locator('#error');
    await shown.filter({ hasText: body.message }).waitFor();
    assert.equal((await shown.textContent()).trim(), body.message);
    assert.equal(new URL(page.url()).pathname, '/signin/', 'still on the sign-in page');
    assert.equal(await session(b.context), undefined);
    assert.equal(await page.locator('#submit').isEnabled(), true, 'the button works again');
    await page.screenshot({ path: join(SHOTS, '22-signin-wrong-password.png') });
    // The one console error is the refused sign-in's own 401.
    assert.deepEqual(problems.console.filter((m) => !/status of 401/.test(m)), []);
    assert.equal(problems.console.length, 1);
  } finally {
    await b.close();
  }
});

test('the API-key tab signs in Carol (OAuth only in Immich) with a key she made', async () => {
  // A key made by hand in Immich's account settings.
  const made = await fetch(`${standins.CONTROL_URL}/__control/key`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'carol', permissions: KEY_PERMISSIONS }),
  });
  assert.equal(made.status, 200);
  const { secret } = await made.json();
  const b = await phone();
  try {
    const page = await b.context.newPage();
    await toSignIn(page);
    await page.tap('#way-apiKey');
    await page.locator('#apiKey').waitFor();
    assert.equal(await page.locator('#email').isVisible(), false);
    // The page links to Immich's own key page.
    const link = await page.locator('#immich-link a').getAttribute('href');
    assert.ok(link.startsWith(standins.IMMICH_URL), link);
    await page.screenshot({ path: join(SHOTS, '23-signin-api-key.png') });
    await typeAndTap(page, { '#apiKey': secret });
    await page.waitForURL((u) => u.pathname === '/');
    const who = await page.evaluate(() => window.who);
    assert.equal(who.user.id, CAROL);
    assert.equal(who.role, 'user');
  } finally {
    await b.close();
  }
});
