// The Models view (download, load, unload, following `model` events) and
// an item's 3D assets in its details, against the AI and Immich stand-ins.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startStandins, startServer, launch, watch, SHOTS } from './harness.mjs';

let standins; let server; let browser; let page; let problems;
const PHOTO = '00000000-0000-4000-8000-000000000001';

before(async () => {
  standins = await startStandins(['--immich']);
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

test('the Models view downloads, loads and unloads a model', async () => {
  await page.goto(`${server.url}/admin/#models`);
  await page.locator('#models-sync').click();
  const base = page.locator('#models-body tr[data-key="base"]');
  await base.locator('[data-status="not_downloaded"]').waitFor();
  await base.getByRole('button', { name: 'Download' }).click();
  await base.locator('[data-status="downloaded"]').waitFor({ timeout: 15000 });
  await base.getByRole('button', { name: 'Load (GPU)' }).click();
  await page.locator('#models-current', { hasText: 'Loaded in the AI service: base' }).waitFor();
  await base.getByRole('button', { name: 'Unload' }).waitFor();
  await page.screenshot({ path: join(SHOTS, '20-models.png'), fullPage: true });
  await base.getByRole('button', { name: 'Unload' }).click();
  await page.locator('#models-current', { hasText: 'No model loaded' }).waitFor();
  assert.deepEqual(problems.console, []);
});

test("an item's details list its 3D assets with download links", async () => {
  for (const type of ['depth', 'splat']) {
    const r = await fetch(`${server.url}/api/assets/${PHOTO}/generate`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type, modelKey: 'small' }),
    });
    assert.equal(r.status, 200, type);
  }
  await page.goto(`${server.url}/admin/#queue`);
  await page.locator('#items-body tr').first().getByRole('button', { name: /^Details/ }).click();
  const list = page.getByRole('list', { name: '3D assets' });
  await list.waitFor();
  for (const format of ['png', 'ply', 'ksplat']) {
    const link = list.locator(`li[data-format="${format}"] a`);
    const href = await link.getAttribute('href');
    const got = await page.evaluate(async (u) => { const r = await fetch(u); return [r.status, (await r.arrayBuffer()).byteLength]; }, href);
    assert.equal(got[0], 200, format);
    assert.ok(got[1] > 0, format);
  }
  await page.screenshot({ path: join(SHOTS, '21-item-3d-assets.png'), fullPage: true });
  assert.deepEqual(problems.console, []);
  assert.deepEqual(problems.failed, []);
});
