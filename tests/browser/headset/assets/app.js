// Does what the ImmichVR app does against its backend, with the browser's
// own headers: XHR GET and PUT with JSON, the gallery's thumbnails loaded
// as textures (crossOrigin="anonymous", then read back as a WebGL upload
// would), the asset map with fetch, and the live channel over a
// WebSocket-only socket.io-client 4.8. The test reads window.result.

function xhr(method, url, body) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open(method, url);
    if (body !== undefined) x.setRequestHeader('Content-Type', 'application/json');
    x.onload = () => resolve({ status: x.status, json: (() => { try { return JSON.parse(x.responseText); } catch { return null; } })() });
    x.onerror = () => reject(new Error(`${method} ${url}: network error`));
    x.send(body === undefined ? null : JSON.stringify(body));
  });
}

// three.js's TextureLoader: an Image with crossOrigin set, then its
// pixels go to the GPU, which a tainted (non-CORS) image would refuse.
function texture(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.crossOrigin = 'anonymous';
    img.onload = () => {
      const c = document.getElementById('c').getContext('2d');
      c.drawImage(img, 0, 0, 8, 8);
      try { c.getImageData(0, 0, 1, 1); resolve({ w: img.naturalWidth, h: img.naturalHeight }); } catch (e) { reject(e); }
    };
    img.onerror = () => reject(new Error(`texture ${url} failed`));
    img.src = url;
  });
}

function live() {
  return new Promise((resolve, reject) => {
    const socket = io({ transports: ['websocket'] });
    const seen = new Set();
    const timer = setTimeout(() => reject(new Error(`live channel: only ${[...seen]}`)), 10000);
    const check = () => {
      if (seen.has('model:status') && seen.has('queue:update') && seen.has('asked')) {
        clearTimeout(timer); socket.close(); resolve([...seen]);
      }
    };
    socket.on('connect_error', (e) => { clearTimeout(timer); reject(new Error(`connect_error: ${e.message}`)); });
    socket.on('model:status', () => { seen.add('model:status'); check(); });
    socket.on('queue:update', () => {
      if (seen.has('queue:update')) seen.add('asked');
      seen.add('queue:update');
      check();
    });
    socket.on('connect', () => socket.emit('queue:get-status'));
  });
}

async function main() {
  const out = { steps: [] };
  const step = (name, v) => { out.steps.push(name); return v; };
  const settings = step('settings', await xhr('GET', '/api/settings'));
  if (settings.status !== 200) throw new Error(`GET /api/settings ${settings.status}`);
  const put = step('put', await xhr('PUT', '/api/settings', { autoGenerateOnEnter: !settings.json.autoGenerateOnEnter }));
  if (put.status !== 200) throw new Error(`PUT /api/settings ${put.status}`);
  const buckets = await xhr('GET', '/api/immich/timeline');
  const first = buckets.json.data[0].timeBucket;
  const bucket = await xhr('GET', `/api/immich/timeline/${encodeURIComponent(first)}`);
  const ids = bucket.json.data.map((a) => a.id).slice(0, 4);
  out.ids = ids;
  out.textures = await Promise.all(ids.map((id) => texture(`/api/immich/assets/${id}/thumbnail?size=thumbnail`)));
  const map = await fetch('/api/assets/map', { mode: 'cors', credentials: 'same-origin' });
  if (!map.ok) throw new Error(`map ${map.status}`);
  out.live = await live();
  out.isolated = window.crossOriginIsolated;
  out.protocols = [...new Set(performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))
    .map((e) => e.nextHopProtocol).filter(Boolean))];
  return out;
}

window.result = main().then((r) => ({ ok: true, ...r }), (e) => ({ ok: false, error: String(e) }));
