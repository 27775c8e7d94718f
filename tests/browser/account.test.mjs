// The admin page for the people of a household (issue 27): who is signed
// in and "Sign out" in the top bar, "My sessions" with a sign-out for
// each, the sign-in page on any 401, and a person who is not an operator
// sees the operator controls hidden and is told why. At a phone's width,
// and pressed (tapped), never hovered: a headset's browser has no hover.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startStandins, startServer, launch, watch, SHOTS } from './harness.mjs';

const PHONE = { width: 390, height: 844 };
let standins; let server;

before(async () => {
  standins = await startStandins(['--immich', '--immich-photos', '3', '--people']);
  server = await startServer({ IMMICH_URL: standins.IMMICH_URL, IMMICH_API_KEY: standins.IMMICH_API_KEY, AI_SERVICE_URL: standins.AI_URL });
  const r = await fetch(`${server.url}/api/settings/models/sync`, { method: 'POST' });
  assert.equal(r.status, 200);
});

after(() => {
  server?.stop();
  standins?.child.kill();
});

const phone = () => launch({ anonymous: true, viewport: PHONE, isMobile: true, hasTouch: true });

// Signs in on the sign-in page the admin page sends a stranger to.
async function signIn(page, email, password, path = '/admin/') {
  await page.goto(`${server.url}${path}`);
  await page.waitForURL((u) => u.pathname === '/signin/');
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.tap('#submit');
  await page.waitForURL((u) => u.pathname === '/admin/');
  await page.locator('#me:not([hidden])').waitFor();
}

// Another device of the same person: a sign-in from outside the browser.
async function otherDevice(email, password) {
  const r = await fetch(`${server.url}/api/auth/login`, {
    method: 'POST', anonymous: true,
    headers: { 'content-type': 'application/json', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; Quest 3) OculusBrowser/35.0' },
    body: JSON.stringify({ email, password }),
  });
  assert.equal(r.status, 200);
  return r.headers.get('set-cookie').split(';')[0];
}

const noSideways = async (page, what) => {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= PHONE.width, `${what} is ${width} px wide`);
};

test('a person who is not an operator: her name and role, the operator controls hidden and why, nothing refused', async () => {
  const b = await phone();
  try {
    const page = await b.context.newPage();
    const problems = watch(page);
    const refused = [];
    page.on('response', (r) => { if (r.status() === 403 || r.status() === 401) refused.push(`${r.status()} ${r.url()}`); });
    await signIn(page, 'alice@example.org', 'alice-password');
    assert.equal(await page.locator('#me-name').textContent(), 'Alice');
    assert.equal(await page.locator('#me-role').textContent(), 'User');
    assert.equal(await page.locator('#sign-out').isVisible(), true);
    const note = page.locator('#role-note');
    assert.equal(await note.isVisible(), true);
    assert.match(await note.textContent(), /not an operator/);
    assert.match(await note.textContent(), /Immich admins/);
    await page.locator('#live[data-state="live"]').waitFor();
    await noSideways(page, 'queue');
    await page.screenshot({ path: join(SHOTS, '30-user-queue-phone.png'), fullPage: true });
    assert.equal(await page.locator('#q-retry-all').isVisible(), false);

    await page.tap('#tab-worker');
    await page.locator('#w-user-note').waitFor();
    assert.equal(await page.locator('#w-card').isVisible(), false, 'no worker start/stop');
    assert.match(await page.locator('#w-user-note').textContent(), /operators/);
    await page.locator('#ai-health dd').first().waitFor();
    await noSideways(page, 'worker');
    await page.screenshot({ path: join(SHOTS, '31-user-worker-phone.png'), fullPage: true });

    await page.tap('#tab-immich');
    await page.locator('#im-grid .tile').first().waitFor();
    for (const sel of ['#im-import-all', '#im-enqueue-selected', '#lib-sync', '#lib-pause']) {
      assert.equal(await page.locator(sel).isVisible(), false, sel);
    }
    assert.equal(await page.locator('#im-grid button').count(), 0, 'no queue buttons on her photos');
    // Her own photos, browsed with her own key.
    const ids = await page.locator('#im-grid .tile').evaluateAll((ts) => ts.map((t) => t.dataset.id));
    assert.ok(ids.length > 0 && ids.every((id) => id.startsWith('a1000000-')), String(ids));
    await noSideways(page, 'immich');

    await page.tap('#tab-models');
    await page.locator('#models-body tr').first().waitFor();
    assert.equal(await page.locator('#models-body button').count(), 0, 'no download, load, unload or delete');
    assert.equal(await page.locator('#models-sync').isVisible(), false);
    assert.equal(await page.locator('#view-models .user-only').isVisible(), true);
    await noSideways(page, 'models');
    await page.screenshot({ path: join(SHOTS, '32-user-models-phone.png'), fullPage: true });

    // Uploading is hers to do.
    await page.tap('#tab-upload');
    // The view is shown after the tap is handled: wait for it (a loaded
    // machine took longer than isVisible's single look).
    await page.locator('#dropzone').waitFor({ state: 'visible', timeout: 5000 });
    assert.equal(await page.locator('#dropzone').isVisible(), true);
    assert.deepEqual(refused, [], 'the page asked for nothing it may not have');
    assert.deepEqual(problems.console, []);
    assert.deepEqual(problems.failed, []);
    // Sign out, at a phone's width, from the top bar.
    const out = await page.locator('#sign-out').boundingBox();
    assert.ok(out.x >= 0 && out.x + out.width <= PHONE.width, 'Sign out is on the screen');
    await page.tap('#sign-out');
    await page.waitForURL((u) => u.pathname === '/signin/');
  } finally {
    await b.close();
  }
});

test('My sessions: every device of hers, this one marked, another signed out from here, then this one', async () => {
  const b = await phone();
  try {
    const page = await b.context.newPage();
    await signIn(page, 'alice@example.org', 'alice-password');
    const headset = await otherDevice('alice@example.org', 'alice-password');
    // Bob's sessions are not hers to see.
    await otherDevice('bob@example.org', 'bob-password');
    await page.tap('#me-account');
    await page.waitForFunction(() => location.hash === '#account');
    const items = page.locator('#sessions .session');
    await items.nth(1).waitFor();
    assert.equal(await items.count(), 2);
    const mine = page.locator('#sessions .session[data-current="true"]');
    assert.match(await mine.textContent(), /This browser/);
    const other = page.locator('#sessions .session[data-current="false"]');
    assert.match(await other.textContent(), /Quest Browser on Meta Quest/);
    assert.match(await other.textContent(), /127\.0\.0\.1/);
    assert.match(await page.locator('#acct-facts').textContent(), /alice@example\.org/);
    await noSideways(page, 'account');
    await page.screenshot({ path: join(SHOTS, '33-my-sessions-phone.png'), fullPage: true });
    // The sign-out buttons are there to tap, not revealed by hovering.
    const end = other.getByRole('button', { name: /^Sign out Quest Browser/ });
    assert.equal(await end.isVisible(), true);
    const box = await end.boundingBox();
    assert.ok(box.height >= 36, `the button is ${box.height} px high`);
    await end.tap();
    await page.waitForFunction(() => document.querySelectorAll('#sessions .session').length === 1);
    const r = await fetch(`${server.url}/api/settings`, { headers: { Cookie: headset } });
    assert.equal(r.status, 401, "the headset's session ended");

    // "Sign out" in the top bar: to the sign-in page, and /admin/ asks again.
    await page.tap('#sign-out');
    await page.waitForURL((u) => u.pathname === '/signin/');
    assert.equal(new URL(page.url()).searchParams.get('next'), '/admin/');
    assert.equal((await b.context.cookies()).some((c) => c.name === 'immichvr_session'), false);
    await page.goto(`${server.url}/admin/`);
    await page.waitForURL((u) => u.pathname === '/signin/');
  } finally {
    await b.close();
  }
});

test('a 401 from any call (her session ended elsewhere) goes to the sign-in page and back to where she was', async () => {
  const b = await phone();
  try {
    const page = await b.context.newPage();
    await signIn(page, 'alice@example.org', 'alice-password');
    await page.goto(`${server.url}/admin/#models`);
    await page.locator('#models-body tr').first().waitFor();
    // She ends this browser's session from her headset.
    const headset = await otherDevice('alice@example.org', 'alice-password');
    const list = await (await fetch(`${server.url}/api/auth/sessions`, { headers: { Cookie: headset } })).json();
    const target = list.sessions.find((s) => !s.current);
    const del = await fetch(`${server.url}/api/auth/sessions/${target.id}`, { method: 'DELETE', headers: { Cookie: headset } });
    assert.equal(del.status, 200);
    // The page's next call is refused (opening the queue, or the live
    // stream's fallback when the stream ends first): off to sign in.
    await page.tap('#tab-queue', { timeout: 2000 }).catch(() => { /* gone to sign in already */ });
    await page.waitForURL((u) => u.pathname === '/signin/');
    // Whichever call met the 401 first (the queue's, or the live stream's
    // fallback), the way back is the page and tab she was on.
    const next = new URL(page.url()).searchParams.get('next');
    assert.match(next, /^\/admin\/#(queue|models)$/);
    await page.fill('#email', 'alice@example.org');
    await page.fill('#password', 'alice-password');
    await page.tap('#submit');
    await page.waitForURL((u) => u.pathname === '/admin/' && `/admin/${u.hash}` === next);
    await page.locator('#me-name', { hasText: 'Alice' }).waitFor();
  } finally {
    await b.close();
  }
});

test('an operator: an Immich admin sees the operator controls, and the token says who it is', async () => {
  const b = await phone();
  try {
    const page = await b.context.newPage();
    await signIn(page, 'admin@example.org', 'admin-password');
    assert.equal(await page.locator('#me-name').textContent(), 'Admin');
    assert.equal(await page.locator('#me-role').textContent(), 'Operator');
    assert.equal(await page.locator('#role-note').isVisible(), false);
    assert.equal(await page.locator('#q-retry-all').isVisible(), true);
    await page.tap('#tab-worker');
    await page.locator('#w-state', { hasText: 'Running' }).waitFor();
    assert.equal(await page.locator('#w-stop').isVisible(), true);
    assert.equal(await page.locator('#w-user-note').isVisible(), false);
    await page.tap('#tab-models');
    await page.locator('#models-body tr button').first().waitFor();
  } finally {
    await b.close();
  }
  // The harness's browser: the operator's token as a header, no session.
  const op = await launch();
  try {
    const page = await op.context.newPage();
    await page.goto(`${server.url}/admin/#account`);
    await page.locator('#me:not([hidden])').waitFor();
    assert.equal(await page.locator('#me-name').textContent(), 'Operator token');
    assert.equal(await page.locator('#me-role').textContent(), 'Operator');
    await page.locator('#sessions li').first().waitFor();
    assert.match(await page.locator('#acct-facts').textContent(), /AUTH_TOKEN/);
  } finally {
    await op.close();
  }
});
