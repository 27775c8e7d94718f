// Benchmark (not a test): N concurrent Socket.IO clients (WebSocket only,
// as the VR app connects) receiving `queue:update` while uploads change the
// queue. Prints the delivery latency (server's `sentAt` to each client's
// receipt) p50/p99 and the server's RSS per connected client.
//   node tests/live/bench.mjs <server binary> [clients=1000] [updates=20]

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io } from 'socket.io-client';

const [bin, clientsArg = '1000', updatesArg = '20'] = process.argv.slice(2);
const CLIENTS = Number(clientsArg);
const UPDATES = Number(updatesArg);

const freePort = () => new Promise((r) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
const cpuMs = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10; };
const rssKib = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (v, p) => v[Math.min(v.length - 1, Math.round((v.length - 1) * p))];

const port = await freePort();
const data = mkdtempSync(join(tmpdir(), 'immichvr-live-bench-'));
const server = spawn(bin, [], {
  env: { PATH: process.env.PATH, DATA_DIR: data, BACKEND_PORT: String(port), BIND_ADDR: '127.0.0.1', RUST_LOG: 'warn,immichvr::live=debug',
    AUTO_START_WORKER: 'false', MAX_CONNECTIONS: '4000', MAX_CONNECTIONS_PER_IP: '4000',
    MAX_LIVE_SESSIONS: '4000', MAX_LIVE_SESSIONS_PER_IP: '4000', AI_SERVICE_URL: 'http://127.0.0.1:9' },
  stdio: ['ignore', 'pipe', 'pipe'],
});
// The server's own time to hand one broadcast to every socket.
const emits = [];
for (const stream of [server.stdout, server.stderr]) {
  stream.on('data', (d) => {
    for (const m of String(d).matchAll(/emit_us=(\d+)/g)) if (measuring) emits.push(Number(m[1]) / 1000);
  });
}
const url = `http://127.0.0.1:${port}`;
for (let i = 0; i < 300; i++) { try { if ((await fetch(`${url}/health`)).ok) break; } catch { /* not yet */ } await sleep(50); }
await sleep(500);
const before = rssKib(server.pid);

const latencies = [];
let measuring = false;
const sockets = [];
let connected = 0;
await new Promise((resolve, reject) => {
  for (let i = 0; i < CLIENTS; i++) {
    const s = io(url, { transports: ['websocket'], upgrade: false, reconnection: false, forceNew: true });
    s.on('connect', () => { if (++connected === CLIENTS) resolve(); });
    s.on('connect_error', (e) => reject(e));
    s.on('queue:update', (q) => { if (measuring) latencies.push(Date.now() - q.sentAt); });
    sockets.push(s);
  }
});
await sleep(1000);
const after = rssKib(server.pid);

// A real PNG header, distinct bytes: each upload is a new item, one queue change.
function photo(i) {
  const b = Buffer.alloc(4096, i % 251);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b);
  b.writeUInt32BE(i, 100);
  return b;
}
measuring = true;
const serverCpu0 = cpuMs(server.pid);
const clientCpu0 = process.cpuUsage();
for (let i = 0; i < UPDATES; i++) {
  const form = new FormData();
  form.append('media', new Blob([photo(i)], { type: 'image/png' }), `p${i}.png`);
  const r = await fetch(`${url}/api/media/upload`, { method: 'POST', body: form });
  if (r.status !== 201) throw new Error(`upload: ${r.status} ${await r.text()}`);
  await sleep(300); // more than the 250 ms coalescing window: one update each
}
await sleep(1000);
measuring = false;
const serverCpu = cpuMs(server.pid) - serverCpu0;
const c = process.cpuUsage(clientCpu0);
const clientCpu = (c.user + c.system) / 1000;
latencies.sort((a, b) => a - b);
const perClient = (after - before) / CLIENTS;
console.log(`| ${CLIENTS} clients, ${UPDATES} queue changes | ${latencies.length} deliveries (${(latencies.length / CLIENTS).toFixed(1)} per client); latency p50 ${pct(latencies, 0.5)} ms, p99 ${pct(latencies, 0.99)} ms, max ${latencies[latencies.length - 1]} ms |`);
emits.sort((a, b) => a - b);
if (emits.length) console.log(`| server fan-out of one queue:update to ${CLIENTS} sockets | p50 ${pct(emits, 0.5).toFixed(1)} ms, p99 ${pct(emits, 0.99).toFixed(1)} ms (${emits.length} broadcasts) |`);
console.log(`| CPU per delivery (both on these 2 cores) | server ${(serverCpu * 1000 / latencies.length).toFixed(0)} µs (incl. the ${UPDATES} uploads), client process ${(clientCpu * 1000 / latencies.length).toFixed(0)} µs |`);
console.log(`| server RSS | ${before} KiB before, ${after} KiB with ${CLIENTS} clients: ${perClient.toFixed(1)} KiB per client |`);
for (const s of sockets) s.close();
server.kill('SIGTERM');
await new Promise((r) => server.on('exit', r));
rmSync(data, { recursive: true, force: true });
