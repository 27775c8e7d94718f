// Minimal static server for the Spark check page. Same origin for the page,
// the npm packages and the splat file; every response carries the COOP/COEP
// headers the ImmichVR nginx sends, so the page is cross-origin isolated
// exactly like the real app.
//
//   node server.mjs FILE [PORT]    (manual use: prints the page URL)
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
};

const ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

// Only these prefixes are served: the page, the installed packages, and the
// one data file under /data/<basename>.
const ROOTS = {
  '/page/': path.join(HERE, 'page'),
  '/node_modules/': path.join(HERE, 'node_modules'),
};

function send(res, status, body, type = 'text/plain; charset=utf-8') {
  res.writeHead(status, { ...ISOLATION, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function sendFile(res, file, type) {
  fs.stat(file, (err, st) => {
    if (err || !st.isFile()) return send(res, 404, 'not found');
    res.writeHead(200, { ...ISOLATION, 'Content-Type': type, 'Content-Length': st.size });
    fs.createReadStream(file).pipe(res);
  });
}

/** Starts the server on 127.0.0.1 (port 0 = any free port). Resolves to
 *  { server, origin, dataUrl } where dataUrl is the path of `dataFile`. */
export function startServer(dataFile, port = 0) {
  const dataPath = path.resolve(dataFile);
  const dataUrl = '/data/' + encodeURIComponent(path.basename(dataPath));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    let p;
    try {
      p = decodeURIComponent(url.pathname);
    } catch {
      return send(res, 400, 'bad path');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed');
    if (url.pathname === dataUrl) return sendFile(res, dataPath, 'application/octet-stream');
    for (const [prefix, dir] of Object.entries(ROOTS)) {
      if (!p.startsWith(prefix)) continue;
      const file = path.join(dir, p.slice(prefix.length));
      if (!file.startsWith(dir + path.sep)) return send(res, 403, 'forbidden');
      return sendFile(res, file, TYPES[path.extname(file)] ?? 'application/octet-stream');
    }
    send(res, 404, 'not found');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: actual } = server.address();
      resolve({ server, origin: `http://127.0.0.1:${actual}`, dataUrl });
    });
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [file, port] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node server.mjs FILE [PORT]');
    process.exit(2);
  }
  const type = file.toLowerCase().endsWith('.ply') ? 'ply' : 'ksplat';
  const { origin, dataUrl } = await startServer(file, Number(port ?? 0));
  console.log(`${origin}/page/index.html?file=${encodeURIComponent(dataUrl)}&type=${type}`);
}
