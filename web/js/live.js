// Live updates: Server-Sent Events from /api/events; while the stream is
// down, the same handlers are fed by polling so the counters never freeze.

import { api } from './api.js';

const handlers = {};
export function on(type, fn) { (handlers[type] ||= []).push(fn); }
function emit(type, data) { (handlers[type] || []).forEach((fn) => fn(data)); }

let source = null;
let pollTimer = null;
let reconnectTimer = null;
let state = '';

function setState(s, text) {
  if (s === state) return;
  state = s;
  const el = document.getElementById('live');
  el.dataset.state = s;
  el.querySelector('.live-text').textContent = text;
  el.title = s === 'polling' ? 'The live stream dropped; refreshing every few seconds until it is back.' : '';
  emit('connection', s);
}

async function poll() {
  try {
    const s = await api('/api/queue/stats');
    emit('stats', s);
    emit('poll', null);
    if (state === 'offline') setState('polling', 'Polling');
  } catch {
    setState('offline', 'Server unreachable');
  }
}

function startPolling() {
  if (pollTimer) return;
  poll();
  pollTimer = setInterval(poll, 3000);
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
}

export function connect() {
  clearTimeout(reconnectTimer);
  if (source) source.close();
  source = new EventSource('/api/events');
  source.onopen = () => { stopPolling(); setState('live', 'Live'); emit('reconnected', null); };
  for (const type of ['stats', 'item', 'worker', 'ai_endpoint', 'import', 'model', 'generation', 'library']) {
    source.addEventListener(type, (e) => {
      let data;
      try { data = JSON.parse(e.data); } catch { return; }
      emit(type, data);
    });
  }
  source.onerror = () => {
    setState('polling', 'Polling');
    startPolling();
    // A closed source (e.g. 401, server restart) does not retry by itself.
    if (source.readyState === EventSource.CLOSED) {
      reconnectTimer = setTimeout(connect, 5000);
    }
  };
}

export function disconnect() {
  if (source) source.close();
  source = null;
}
