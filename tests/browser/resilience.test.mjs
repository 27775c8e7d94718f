// What a first-time or unlucky user meets: the live stream blocked (the page
// falls back to polling), Immich not configured (the panel says how), and a
// server with AUTH_TOKEN (a stranger is sent to sign in, then it works).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startStandins, startServer, launch, watch, png, SHOTS } from './harness.mjs';

let standins; let server; let secured; let browser;

before(async () => {
  standins = await startStandins();
  server = await startServer({ AI_SERVICE_URL: standins.AI_URL });
  secured = await startServer({ AI_SERVICE_URL: standins.AI_URL, AUTH_TOKEN: 'let-me-in-please' });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.stop();
  secured?.stop();
  standins?.child.kill();
});

test('with the event stream blocked, counters still update by polling', async () => {
  const page = await browser.context.newPage();
  const problems = watch(page);
  // A proxy that drops Server-Sent Events, as some home setups do.
  await page.route('**/api/events', (route) => route.fulfill({ status: 502, contentType: 'text/plain', body: 'no streams here' }));
  await page.goto(`${server.url}/admin/`);
  await page.locator('#live[data-state="polling"]').waitFor();
  await page.waitForFunction(() => document.querySelector('#count-completed .n').textContent === '0');
  const form = new FormData();
  form.append('media', new Blob([png(64, 48, 9)], { type: 'image/png' }), 'polled.png');
  const up = await fetch(`${server.url}/api/media/upload`, { method: 'POST', body: form });
  assert.equal(up.status, 201);
  await page.waitForFunction(() => document.querySelector('#count-completed .n').textContent === '1', null, { timeout: 15000 });
  await page.locator('#items-body tr[data-status="completed"]').waitFor();
  await page.screenshot({ path: join(SHOTS, '10-polling-fallback.png') });
  // The only errors are the blocked stream's own answers.
  assert.deepEqual(problems.console.filter((m) => !/status of 502 .*\/api\/events/.test(m)), []);
  // ... and the retries of the blocked stream (one every 5 s: Chromium
  // reports an EventSource answered 502 as aborted).
  assert.deepEqual(problems.failed.filter((f) => !/^GET \S+\/api\/events: /.test(f)), []);
  await page.close();
});

test('the Immich panel explains how to configure Immich when it is not', async () => {
  const page = await browser.context.newPage();
  const problems = watch(page);
  await page.goto(`${server.url}/admin/#immich`);
  const state = page.locator('#im-state');
  await page.waitForFunction(() => !['–', ''].includes(document.querySelector('#im-state').textContent));
  const text = await page.locator('#im-status').textContent();
  if ((await state.textContent()) === 'Not configured') {
    assert.match(text, /IMMICH_URL/);
    assert.match(text, /IMMICH_API_KEY/);
  } else {
    // A server without the Immich routes says so instead.
    assert.equal(await state.textContent(), 'Unavailable');
  }
  assert.equal(await page.locator('#im-browser').isHidden(), true);
  await page.screenshot({ path: join(SHOTS, '11-immich-not-configured.png'), fullPage: true });
  assert.deepEqual(problems.console.filter((m) => !/status of (503|404) .*\/api\/immich\//.test(m)), []);
  assert.deepEqual(problems.failed, []);
  await page.close();
});

test('a server with AUTH_TOKEN: the admin page sends a stranger to sign in, a wrong token is refused, then it works', async () => {
  // A browser of its own, without the harness's operator header.
  const stranger = await launch({ anonymous: true });
  try {
    const page = await stranger.context.newPage();
    await page.goto(`${secured.url}/admin/`);
    await page.waitForURL((u) => u.pathname === '/signin/');
    assert.equal(new URL(page.url()).searchParams.get('next'), '/admin/');
    // Without IMMICH_URL the token is the only way in, and the page says so.
    await page.locator('#way-token[aria-selected="true"]').waitFor();
    assert.equal(await page.locator('#way-password').isVisible(), false);
    assert.match(await page.locator('#note').textContent(), /IMMICH_URL/);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'token');
    await page.fill('#token', 'wrong');
    await page.keyboard.press('Enter');
    await page.locator('#error', { hasText: /token/i }).waitFor();
    await page.screenshot({ path: join(SHOTS, '12-sign-in.png') });
    await page.fill('#token', 'let-me-in-please');
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => u.pathname === '/admin/');
    await page.locator('#live[data-state="live"]').waitFor();
    await page.waitForFunction(() => document.querySelector('#count-queued .n').textContent === '0');
    assert.equal(await page.locator('#me-name').textContent(), 'Operator token');
    await page.close();
  } finally {
    await stranger.close();
  }
});
