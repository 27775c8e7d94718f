// Loads a .ply or .ksplat file with @sparkjsdev/spark's SplatMesh in headless
// Debian Chromium (driven by playwright-core, no downloaded browser) and
// reports whether it loaded and rendered without errors.
//
//   node spark-check.mjs FILE ply|ksplat [--source bytes|url|blob-url] [--stats] [--timeout MS]
//
// Success: prints {"ok":true,"numSplats":N} (plus "stats" with --stats), exit 0.
// Failure: prints {"ok":false,"numSplats":..,"error":"..."} including page
// errors and console errors (page and workers), exit 1. Usage errors exit 2.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import { startServer } from './server.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

function usage(msg) {
  if (msg) console.error(msg);
  console.error('usage: node spark-check.mjs FILE ply|ksplat [--source bytes|url|blob-url] [--stats] [--timeout MS]');
  process.exit(2);
}

const positional = [];
const opts = { source: 'bytes', stats: false, timeout: 120000 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--stats') opts.stats = true;
  else if (a === '--source') opts.source = argv[++i];
  else if (a === '--timeout') opts.timeout = Number(argv[++i]);
  else if (a.startsWith('--')) usage(`unknown option ${a}`);
  else positional.push(a);
}
const [file, type] = positional;
if (positional.length !== 2) usage();
if (type !== 'ply' && type !== 'ksplat') usage(`type must be ply or ksplat, not ${type}`);
if (!['bytes', 'url', 'blob-url'].includes(opts.source)) usage(`bad --source ${opts.source}`);
if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) usage(`no such file: ${file}`);
if (!fs.existsSync(CHROMIUM)) usage(`${CHROMIUM} not found (apt-get install -y chromium)`);

const consoleErrors = [];
const pageErrors = [];
const { server, origin, dataUrl } = await startServer(file);
let browser;
let result;
try {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--use-angle=swiftshader', // software WebGL2 (ANGLE on SwiftShader Vulkan)
      '--use-gl=angle',
      '--enable-unsafe-swiftshader',
      '--ignore-gpu-blocklist',
      '--disable-gpu-sandbox',
      '--no-first-run',
      '--no-default-browser-check',
    ],
  });
  // A new context is a fresh, empty profile (playwright launches with a
  // temporary user-data-dir).
  const context = await browser.newContext();
  const page = await context.newPage();
  // Playwright reports a worker's console both on the worker and on the
  // page; keep each message text once.
  const seen = new Set();
  const onConsole = (where) => (msg) => {
    if (msg.type() !== 'error' || seen.has(msg.text())) return;
    seen.add(msg.text());
    consoleErrors.push(`console.error (${where}): ${msg.text()}`);
  };
  page.on('console', onConsole('page'));
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.stack ?? e.message}`));
  page.on('worker', (w) => w.on('console', onConsole(`worker ${w.url().slice(0, 40)}`)));
  page.on('requestfailed', (r) => consoleErrors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));

  const url = `${origin}/page/index.html?file=${encodeURIComponent(dataUrl)}&type=${type}&source=${opts.source}`;
  const response = await page.goto(url);
  if (!response?.ok()) throw new Error(`page load failed: HTTP ${response?.status()}`);
  await page.waitForFunction(() => window.__result !== undefined, null, { timeout: opts.timeout, polling: 100 });
  result = await page.evaluate(() => window.__result);
  // Give late worker/console messages a moment to arrive.
  await page.waitForTimeout(200);
} catch (e) {
  result = { ok: false, error: `driver: ${e.message}` };
} finally {
  await browser?.close();
  server.close();
}

const extra = [...pageErrors, ...consoleErrors];
// The page's own error first, then page errors and console errors (the
// worker usually console.error()s the same exception it rejects with).
const problems = [...new Set([result.error, ...extra].filter(Boolean))];
const ok = result.ok === true && extra.length === 0;
const out = ok
  ? { ok: true, numSplats: result.numSplats }
  : { ok: false, numSplats: result.numSplats ?? null, error: problems.join('\n') };
if (opts.stats && result.stats) out.stats = result.stats;
console.log(JSON.stringify(out));
process.exit(ok ? 0 : 1);
