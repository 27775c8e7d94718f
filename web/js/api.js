// Every call to the backend goes through here, so that an error always
// becomes a message with the server's own words (never swallowed).

// `code` is the server's stable error code (`media-not-found`,
// `disk-full`, ...): match on it, never on the title.
export class ApiError extends Error {
  constructor(status, title, message, body) {
    super(message || title || `HTTP ${status}`);
    this.status = status;
    this.title = title || `HTTP ${status}`;
    this.code = body?.code || (status === 0 ? 'unreachable' : `http-${status}`);
    this.body = body;
  }
}

const listeners = { unauthorized: [] };
export function onUnauthorized(fn) { listeners.unauthorized.push(fn); }

async function parse(res) {
  const type = res.headers.get('content-type') || '';
  if (type.includes('json')) {
    try { return await res.json(); } catch { return null; }
  }
  return null;
}

// `full: true` gives {status, data} for callers that tell 200 from 201.
export async function api(path, { method = 'GET', body, signal, full = false } = {}) {
  const init = { method, signal, headers: { accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'Server unreachable', 'The ImmichVR server did not answer. Is it running?');
  }
  const data = await parse(res);
  if (!res.ok) {
    if (res.status === 401) listeners.unauthorized.forEach((fn) => fn());
    throw new ApiError(res.status, data?.error, data?.message, data);
  }
  return full ? { status: res.status, data } : data;
}

// Uploads one file with progress; XMLHttpRequest because fetch cannot
// report upload progress.
export function uploadFile(file, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/media/upload');
    xhr.responseType = 'text';
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { /* not JSON: handled below */ }
      resolve({ status: xhr.status, data, code: data?.code, retryAfter: Number(xhr.getResponseHeader('retry-after')) || 1 });
    };
    xhr.onerror = () => resolve({ status: 0, data: null });
    xhr.onabort = () => resolve({ status: -1, data: null });
    const form = new FormData();
    form.append('media', file, file.name);
    xhr.send(form);
  });
}

export const fmt = {
  bytes(n) {
    if (n == null) return '–';
    const u = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return `${n < 10 && i ? n.toFixed(1) : Math.round(n)} ${u[i]}`;
  },
  ago(ts) {
    if (!ts) return '–';
    const s = Math.round((Date.now() - new Date(ts).getTime()) / 1000);
    if (s < 5) return 'just now';
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return new Date(ts).toLocaleDateString();
  },
  time(ts) { return ts ? new Date(ts).toLocaleString() : '–'; },
  secs(s) { return s == null ? '–' : s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`; },
};
