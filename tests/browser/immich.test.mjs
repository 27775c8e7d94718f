// The Immich panel against the Immich stand-in (examples/standins.rs
// --immich): connection and version, thumbnails, queueing one and several,
// and "import all photos" with live progress.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startStandins, startServer, launch, watch, apiJson, SHOTS } from './harness.mjs';

let standins; let server; let browser; let page; let problems;

before(async () => {
  standins = await startStandins(['--immich']);
  if (!standins.IMMICH_URL) return;
  server = await startServer({
    AI_SERVICE_URL: standins.AI_URL, IMMICH_URL: standins.IMMICH_URL, IMMICH_API_KEY: standins.IMMICH_API_KEY,
  });
  browser = await launch();
  page = browser.context.pages()[0] || await browser.context.newPage();
  problems = watch(page);
});

after(async () => {
  await browser?.close();
  server?.stop();
  standins?.child.kill();
});

const skip = () => (standins?.IMMICH_URL ? false : 'the stand-ins binary has no Immich stand-in');

test('the Immich panel shows the connection, the version and thumbnails from Immich', async (t) => {
  if (skip()) return t.skip(skip());
  await page.goto(`${server.url}/admin/#immich`);
  await page.locator('#im-state', { hasText: 'Connected' }).waitFor();
  assert.match(await page.locator('#im-status').textContent(), /version \d+\.\d+\.\d+/);
  await page.waitForFunction(() => {
    const imgs = [...document.querySelectorAll('#im-grid .tile img')];
    return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
  }, null, { timeout: 15000 });
  await page.screenshot({ path: join(SHOTS, '13-immich-grid.png'), fullPage: true });
});

test('queueing one asset from the grid puts it in the queue', async (t) => {
  if (skip()) return t.skip(skip());
  const first = page.locator('#im-grid .tile').first();
  await first.getByRole('button', { name: /^Queue/ }).click();
  await first.locator('.meta-note', { hasText: /Queued|Already/ }).waitFor();
  const items = await apiJson(server.url, '/api/queue/items');
  assert.equal(items.total, 1);
  await page.waitForFunction(() => Number(document.querySelector('#count-completed .n').textContent) >= 1, null, { timeout: 20000 });
});

test('several selected assets are queued together', async (t) => {
  if (skip()) return t.skip(skip());
  const boxes = page.locator('#im-grid .tile input[type="checkbox"]');
  await boxes.nth(1).check();
  await boxes.nth(2).check();
  await page.locator('#im-enqueue-selected', { hasText: 'Queue 2 selected' }).click();
  await page.locator('#im-grid .tile').nth(2).locator('.meta-note', { hasText: /Queued|Already/ }).waitFor();
  const items = await apiJson(server.url, '/api/queue/items');
  assert.equal(items.total, 3);
});

test('"import all photos" shows live progress until it finishes', async (t) => {
  if (skip()) return t.skip(skip());
  await page.click('#im-import-all');
  await page.locator('#im-import').waitFor();
  await page.locator('#im-import-text', { hasText: 'finished' }).waitFor({ timeout: 60000 });
  await page.screenshot({ path: join(SHOTS, '14-immich-import.png'), fullPage: true });
  const items = await apiJson(server.url, '/api/queue/items');
  assert.ok(items.total > 3, `import queued more photos (total ${items.total})`);
});

test('following the library: "ready for 3D" counts up, videos are skipped with the reason, pause and resume', async (t) => {
  if (skip()) return t.skip(skip());
  const follow = await startServer({
    AI_SERVICE_URL: standins.AI_URL, IMMICH_URL: standins.IMMICH_URL, IMMICH_API_KEY: standins.IMMICH_API_KEY,
    IMMICH_SYNC_SECS: '3600',
  });
  // A page of its own: the panel's page keeps its server (and its record).
  const lib = await browser.context.newPage();
  const libProblems = watch(lib);
  try {
    await lib.goto(`${follow.url}/admin/#immich`);
    await lib.locator('#lib-state', { hasText: 'Following' }).waitFor();
    // 30 JPEGs, a HEIC and a large photo; the two videos are not made.
    await lib.locator('#lib-body .ready', { hasText: 'Ready for 3D: 32 of 32 photos' }).waitFor({ timeout: 60000 });
    assert.match(await lib.locator('#lib-body .ready').textContent(), /model small/);
    assert.match(await lib.locator('#lib-body details[data-reason="video"] summary').textContent(), /2 a video/);
    assert.match(await lib.locator('#lib-body .disk').textContent(), /depth small/);
    await lib.screenshot({ path: join(SHOTS, '15-library-ready.png'), fullPage: true });
    await lib.click('#lib-pause');
    await lib.locator('#lib-pause', { hasText: 'Resume background work' }).waitFor();
    assert.match(await lib.locator('#lib-body .background').textContent(), /stopped/);
    await lib.click('#lib-sync');
    await lib.locator('#lib-body .synced', { hasText: 'last read' }).waitFor();
    await lib.click('#lib-pause');
    await lib.locator('#lib-pause', { hasText: 'Pause background work' }).waitFor();
    assert.deepEqual(libProblems.console, []);
    assert.deepEqual(libProblems.failed, []);
  } finally { await lib.close(); follow.stop(); }
});

test('no console errors and no failed requests in the Immich panel', (t) => {
  if (skip()) return t.skip(skip());
  assert.deepEqual(problems.console, []);
  assert.deepEqual(problems.failed, []);
});
