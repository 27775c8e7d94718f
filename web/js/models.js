// Models: the AI model catalogue (download, load on GPU or CPU, unload,
// delete), kept current by the `model` events of /api/events.

import { api } from './api.js';
import { $, h, busy, sayError, say } from './ui.js';
import * as live from './live.js';
import { isOperator } from './account.js';

let visibleNow = false;
let loaded = null;          // the key the AI holds, from `model` events
const pending = new Map();  // key -> 'downloading' | 'loading'
const percent = new Map();  // key -> download percent (built-in engine)

export function visible(on) {
  visibleNow = on;
  if (on) load();
}

async function action(button, key, verb, path, method = 'POST', body = {}) {
  await busy(button, async () => {
    try {
      await api(path, { method, body });
      if (verb) say(`${key}: ${verb}`, 'info', 'Models');
    } catch (e) {
      sayError(e, `Models — ${key}`);
    }
    load();
  });
}

function row(m) {
  const key = m.key;
  const busyWith = pending.get(key);
  const status = busyWith || m.status;
  const isLoaded = m.is_loaded || loaded === key;
  const base = `/api/settings/models/${encodeURIComponent(key)}`;
  const buttons = [];
  if (!isOperator()) {
    // Operators' actions (403 for others): nothing to press.
  } else if (m.status === 'downloaded') {
    if (isLoaded) buttons.push(h('button.btn.small', { type: 'button', onclick: (e) => action(e.currentTarget, key, 'unloaded', `${base}/unload`) }, 'Unload'));
    else {
      buttons.push(h('button.btn.primary.small', { type: 'button', onclick: (e) => action(e.currentTarget, key, 'loaded on GPU', `${base}/load`, 'POST', { device: 'gpu' }) }, 'Load (GPU)'));
      buttons.push(h('button.btn.small', { type: 'button', onclick: (e) => action(e.currentTarget, key, 'loaded on CPU', `${base}/load`, 'POST', { device: 'cpu' }) }, 'Load (CPU)'));
    }
    buttons.push(h('button.btn.ghost.small', { type: 'button', onclick: (e) => action(e.currentTarget, key, 'deleted', base, 'DELETE') }, 'Delete'));
  } else if (!busyWith) {
    buttons.push(h('button.btn.primary.small', { type: 'button', onclick: (e) => { pending.set(key, 'downloading'); render(); action(e.currentTarget, key, 'downloaded', `${base}/download`); } }, 'Download'));
  }
  const pct = busyWith === 'downloading' ? (percent.get(key) ?? (m.download_progress || null)) : null;
  const progress = busyWith
    ? h('progress', pct != null ? { 'aria-label': `${key} ${busyWith}`, max: 100, value: pct } : { 'aria-label': `${key} ${busyWith}` })
    : null;
  return h('tr', { dataset: { key } },
    h('td', {}, h('strong', {}, m.name), h('div.muted', {}, m.description)),
    h('td', {}, m.builtin ? `${m.type} · built-in` : m.type),
    h('td', {}, `${m.params} · ${m.memory}`),
    h('td', {}, m.license || '—'),
    h('td', {}, h(`span.pill.${status}`, { 'data-status': status }, status.replace('_', ' ')), isLoaded ? h('span.pill.loaded', {}, 'loaded') : null, progress),
    h('td.actions', {}, buttons));
}

let models = [];
function render() {
  const body = $('#models-body');
  body.replaceChildren(...models.map(row));
  $('#models-current').textContent = loaded ? `Loaded in the AI service: ${loaded}` : 'No model loaded in the AI service.';
}

export async function load() {
  try {
    const list = await api('/api/settings/models');
    models = list.models;
    const held = models.find((m) => m.is_loaded && m.type === 'depth');
    if (held) loaded = held.key;
    render();
  } catch (e) {
    sayError(e, 'Models');
  }
}

export function init() {
  live.on('model', (e) => {
    if (e.status === 'downloading' || e.status === 'loading') pending.set(e.modelKey, e.status);
    else if (e.modelKey) { pending.delete(e.modelKey); percent.delete(e.modelKey); }
    if (e.status === 'downloading' && e.progress != null) {
      percent.set(e.modelKey, e.progress);
      // Progress alone: redraw the bar, no need to ask the server again.
      if (visibleNow) render();
      return;
    }
    if (e.status === 'loaded') loaded = e.modelKey;
    if (e.status === 'unloaded' && (e.modelKey === loaded || e.modelKey == null)) loaded = null;
    if (e.status === 'error') say(e.message || 'failed', 'error', `Models — ${e.modelKey || ''}`);
    if (visibleNow) load();
  });
  $('#models-sync').addEventListener('click', (e) => action(e.currentTarget, 'catalogue', 'synchronised with the AI service', '/api/settings/models/sync'));
}
