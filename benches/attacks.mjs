// Benchmark (not a test): what one client address can hold of the server,
// and what another address sees meanwhile (issue 26). Each section starts
// the given binary afresh on an empty data directory.
//   node benches/attacks.mjs <server binary> <section> [options as k=v]
// Sections:
//   sessions   server RSS per idle Socket.IO session: WebSocket, polling
//              (socket.io-client 4.8, namespace joined), bare polling
//              handshakes (no namespace); caps raised so all are seated
//   pollflood  one address sends polling handshakes in a loop (16 at a
//              time) for `secs`; RSS, answers, /health from 127.0.0.2
//   h2flood    one address opens `conns` silent HTTP/2 connections (prior
//              knowledge, or tls=1 for ALPN h2) and holds them; how many the
//              server keeps and how long, /health from 127.0.0.2
//   idle       idle RSS after start
// Upper-case options go to the server's environment.
// Output: Markdown table rows, for BENCHMARKS.md.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import http2 from 'node:http2';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../tests/live/', import.meta.url));
const { io } = require('socket.io-client');

const [bin, section, ...rest] = process.argv.slice(2);
const opt = Object.fromEntries(rest.map((a) => a.split('=')));
const num = (k, d) => Number(opt[k] ?? d);
// Upper-case options are the server's environment (e.g. HEADER_TIMEOUT_SECS=5).
const extraEnv = Object.fromEntries(Object.entries(opt).filter(([k]) => k === k.toUpperCase()));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (v, p) => (v.length ? v[Math.min(v.length - 1, Math.round((v.length - 1) * p))] : NaN);
const freePort = () => new Promise((r) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
const rssKib = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
const mib = (kib) => (kib / 1024).toFixed(1);

async function start(env = {}) {
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), 'immichvr-attacks-'));
  const server = spawn(bin, [], {
    env: { PATH: process.env.PATH, DATA_DIR: data, BACKEND_PORT: String(port), BIND_ADDR: '127.0.0.1', RUST_LOG: 'warn',
      AUTO_START_WORKER: 'false', AI_SERVICE_URL: 'http://127.0.0.1:9', ...env, ...extraEnv },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  server.stderr.on('data', (d) => { log += d; });
  const tls = env.TLS_SELF_SIGNED === 'true';
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  for (let i = 0; i < 400; i++) {
    if (await get(url, '/health', null, 2000).then((r) => r.status === 200, () => false)) break;
    await sleep(50);
  }
  await sleep(1000);
  return { server, url, port, data, log: () => log,
    stop: async () => { server.kill('SIGTERM'); await new Promise((r) => server.on('exit', r)); rmSync(data, { recursive: true, force: true }); } };
}

/// One GET on a fresh connection (optionally from `from`); status and ms.
function get(url, path, from, timeout = 5000) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const mod = url.startsWith('https') ? https : http;
    const req = mod.get(url + path, { agent: false, localAddress: from ?? undefined, rejectUnauthorized: false, timeout }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/// `/health` from 127.0.0.2 every 20 ms until `stop()`; latency figures.
function prober(url) {
  let running = true;
  const ms = [];
  let failed = 0;
  const done = (async () => {
    while (running) {
      try {
        const r = await get(url, '/health', '127.0.0.2');
        if (r.status === 200) ms.push(r.ms); else failed++;
      } catch { failed++; }
      await sleep(20);
    }
  })();
  return async () => {
    running = false;
    await done;
    ms.sort((a, b) => a - b);
    return `${ms.length} ok, ${failed} failed; p50 ${pct(ms, 0.5).toFixed(2)} ms, p99 ${pct(ms, 0.99).toFixed(2)} ms, max ${(ms[ms.length - 1] ?? NaN).toFixed(1)} ms`;
  };
}

async function sessions() {
  const n = num('n', 500);
  const env = { MAX_LIVE_SESSIONS: '100000', MAX_LIVE_SESSIONS_PER_IP: '100000', MAX_CONNECTIONS: '8000', MAX_CONNECTIONS_PER_IP: '8000' };
  for (const kind of ['websocket', 'polling', 'handshake']) {
    const s = await start(env);
    const before = rssKib(s.server.pid);
    const sockets = [];
    if (kind === 'handshake') {
      for (let i = 0; i < n; i += 50) {
        await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => get(s.url, '/socket.io/?EIO=4&transport=polling')));
      }
    } else {
      let connected = 0;
      await new Promise((resolve, reject) => {
        for (let i = 0; i < n; i++) {
          const c = io(s.url, { transports: [kind], upgrade: false, reconnection: false, forceNew: true });
          c.on('connect', () => { if (++connected === n) resolve(); });
          c.on('connect_error', reject);
          sockets.push(c);
        }
      });
    }
    await sleep(2000);
    const after = rssKib(s.server.pid);
    const what = { websocket: 'WebSocket (socket.io-client, namespace joined)', polling: 'polling (socket.io-client, namespace joined, long-poll pending)', handshake: 'bare polling handshake (no namespace; lives 10 s)' }[kind];
    console.log(`| ${what} | ${n} | ${mib(before)} -> ${mib(after)} MiB | ${((after - before) / n).toFixed(1)} KiB |`);
    for (const c of sockets) c.close();
    await s.stop();
  }
}

async function pollflood() {
  const secs = num('secs', 8);
  const s = await start();
  const before = rssKib(s.server.pid);
  const baseline = prober(s.url);
  await sleep(3000);
  const quiet = await baseline();
  const probe = prober(s.url);
  const counts = {};
  let peak = before;
  const until = Date.now() + secs * 1000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (Date.now() < until) {
      const status = await new Promise((resolve) => {
        http.get(`${s.url}/socket.io/?EIO=4&transport=polling`, { agent, localAddress: '127.0.0.1' }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); })
          .on('error', () => resolve('error'));
      });
      counts[status] = (counts[status] ?? 0) + 1;
      peak = Math.max(peak, rssKib(s.server.pid));
    }
  }));
  const during = await probe();
  const after = rssKib(s.server.pid);
  const answers = Object.entries(counts).map(([k, v]) => `${v} x ${k}`).join(', ');
  console.log(`| polling handshakes from 127.0.0.1, ${secs} s, 16 at a time | ${answers} | RSS ${mib(before)} -> peak ${mib(peak)} MiB, ${mib(after)} MiB after | /health from 127.0.0.2: quiet ${quiet}; during ${during} |`);
  agent.destroy();
  await s.stop();
}

async function h2flood() {
  const conns = num('conns', 2000);
  const tls = opt.tls === '1';
  const hold = num('hold', 40) * 1000;
  const env = tls ? { TLS_SELF_SIGNED: 'true' } : {};
  const s = await start(env);
  const baseline = prober(s.url);
  await sleep(3000);
  const quiet = await baseline();
  const probe = prober(s.url);
  const t0 = Date.now();
  let accepted = 0, refused = 0;
  const closedAt = [];
  const sessions = [];
  for (let i = 0; i < conns; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, conns - i) }, () => new Promise((resolve) => {
      const sess = http2.connect(s.url, { localAddress: '127.0.0.1', rejectUnauthorized: false });
      let settled = false;
      sess.on('remoteSettings', () => { if (!settled) { settled = true; accepted++; resolve(); } });
      sess.on('error', () => {});
      sess.on('close', () => {
        if (!settled) { settled = true; refused++; resolve(); } else closedAt.push(Date.now() - t0);
      });
      sessions.push(sess);
    })));
  }
  const opened = Date.now() - t0;
  while (closedAt.length < accepted && Date.now() - t0 < hold) await sleep(100);
  const during = await probe();
  closedAt.sort((a, b) => a - b);
  const held = closedAt.length < accepted
    ? `${accepted - closedAt.length} still open after ${(hold / 1000).toFixed(0)} s`
    : `all closed ${(closedAt[0] / 1000).toFixed(1)}-${(closedAt[closedAt.length - 1] / 1000).toFixed(1)} s after the first opened`;
  console.log(`| ${conns} silent ${tls ? 'h2 (TLS)' : 'h2c'} connections from 127.0.0.1 (opened in ${(opened / 1000).toFixed(1)} s) | ${accepted} held, ${refused} refused; ${held} | /health from 127.0.0.2: quiet ${quiet}; during ${during} |`);
  for (const x of sessions) x.destroy();
  await s.stop();
}

async function idle() {
  const s = await start();
  await sleep(1000);
  console.log(`| idle RSS | ${rssKib(s.server.pid)} KiB |`);
  await s.stop();
}

await ({ sessions, pollflood, h2flood, idle }[section] ?? (() => { throw new Error(`unknown section ${section}`); }))();
process.exit(0);
