// Queue view: counters, the items table with filter/sort/paging, per-item
// details and the cancel / retry / retry-all actions.

import { api, fmt } from './api.js';
import { $, h, say, sayError, busy, fillKv } from './ui.js';
import { on } from './live.js';

const q = { status: '', orderBy: 'queued_at', dir: 'DESC', limit: 25, offset: 0, total: 0 };
let loading = 0;
let reloadTimer = null;

export function showCounters(stats) {
  for (const [k, v] of Object.entries(stats || {})) {
    const el = document.getElementById(`count-${k}`);
    if (!el) continue;
    el.setAttribute('aria-label', `${v} ${k}: show these items`);
    const n = el.querySelector('.n');
    if (n.textContent === String(v)) continue;
    const first = n.textContent === '–';
    n.textContent = v;
    if (!first) {
      el.classList.remove('bump');
      void el.offsetWidth; // restart the animation
      el.classList.add('bump');
    }
  }
}

function thumbs(it) {
  const file = `/api/media/${it.media_item_id}/file`;
  if (it.media_type !== 'photo') return h('div.thumbs', {}, h('span.ph', { title: 'Video' }, '▶ video'));
  const orig = h('img', { src: file, alt: `Original of ${it.original_filename}`, loading: 'lazy', width: 52, height: 52 });
  if (it.status !== 'completed') return h('div.thumbs', {}, orig);
  const depth = h('img.depth', { src: `/api/media/${it.media_item_id}/depth`, alt: `Depth map of ${it.original_filename}`, loading: 'lazy', width: 52, height: 52 });
  return h('div.thumbs', {}, orig, depth);
}

function actionButtons(it) {
  const out = [h('button.btn.ghost.small', { type: 'button', onclick: () => details(it.id), 'aria-label': `Details of ${it.original_filename}` }, 'Details')];
  if (it.status === 'queued' || it.status === 'pending') {
    out.push(h('button.btn.small.danger', { type: 'button', 'aria-label': `Cancel ${it.original_filename}`,
      onclick: (e) => act(e.currentTarget, `/api/queue/items/${it.id}/cancel`, `Cancelled ${it.original_filename}`) }, 'Cancel'));
  }
  if (it.status === 'failed' || it.status === 'cancelled') {
    out.push(h('button.btn.small.warn', { type: 'button', 'aria-label': `Retry ${it.original_filename}`,
      onclick: (e) => act(e.currentTarget, `/api/queue/items/${it.id}/retry`, `${it.original_filename} is queued again`) }, 'Retry'));
  }
  return out;
}

const signature = (it) => `${it.id}|${it.status}|${it.attempts}|${it.last_error || ''}`;

function row(it) {
  return h('tr', { dataset: { id: it.id, status: it.status, sig: signature(it) } },
    h('td.c-preview', {}, thumbs(it)),
    h('td.c-file', {},
      h('div.file', {}, it.original_filename || it.media_item_id),
      h('div.sub', {}, `${it.media_type || '–'} · priority ${it.priority}`),
      it.last_error ? h('div.err', { title: it.last_error }, it.last_error) : null),
    h('td.c-status', {}, h(`span.badge.${it.status}`, {}, it.status)),
    h('td.c-attempts', {}, h('span', { title: 'attempts / max attempts' }, `${it.attempts}/${it.max_attempts}`)),
    h('td.c-size', {}, fmt.bytes(it.file_size)),
    h('td.c-time', {}, h('time', { datetime: it.queued_at, title: fmt.time(it.queued_at) }, fmt.ago(it.queued_at))),
    h('td.c-actions', {}, h('div.row-actions', {}, actionButtons(it))));
}

export async function load() {
  // Later calls win; earlier answers are dropped rather than aborted
  // (an aborted request is a failed request in the browser's eyes).
  const mine = ++loading;
  const p = new URLSearchParams({ limit: q.limit, offset: q.offset, orderBy: q.orderBy, orderDirection: q.dir });
  if (q.status) p.set('status', q.status);
  try {
    const data = await api(`/api/queue/items?${p}`);
    if (mine !== loading) return;
    q.total = data.total;
    if (data.items.length === 0 && q.offset > 0 && q.total > 0) {
      q.offset = Math.max(0, Math.floor((q.total - 1) / q.limit) * q.limit);
      return load();
    }
    // Rows that did not change are kept as they are, so their images are
    // not reloaded (no flicker, no cancelled requests) on every update.
    const body = $('#items-body');
    const old = new Map([...body.children].map((tr) => [tr.dataset.sig, tr]));
    body.replaceChildren(...data.items.map((it) => old.get(signature(it)) || row(it)));
    $('#items-empty').hidden = data.items.length > 0;
    const first = data.total ? q.offset + 1 : 0;
    $('#q-range').textContent = data.total ? `${first}–${q.offset + data.items.length} of ${data.total}` : '';
    document.querySelector('#view-queue .pager').hidden = data.total <= data.items.length && q.offset === 0;
    $('#q-prev').disabled = q.offset === 0;
    $('#q-next').disabled = q.offset + data.items.length >= data.total;
  } catch (e) {
    sayError(e, 'Loading the queue');
  }
}

// Item events arrive in bursts (an import queues hundreds): one table
// reload and one counter refresh per burst, not one per event.
function scheduleReload() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => {
    if (!document.getElementById('view-queue').hidden) load();
    api('/api/queue/stats').then((s) => showCounters(s.stats), () => { /* shown by the live indicator, which polls the same route */ });
  }, 300);
}

async function act(button, path, okText) {
  await busy(button, async () => {
    try {
      await api(path, { method: 'POST' });
      say(okText, 'ok');
      await load();
    } catch (e) { sayError(e); }
  });
}

async function details(id) {
  const dlg = $('#details');
  const body = $('#details-body');
  body.replaceChildren(h('p.muted', {}, 'Loading…'));
  if (!dlg.open) dlg.showModal();
  try {
    const it = await api(`/api/queue/items/${id}`);
    $('#details-title').textContent = it.original_filename || 'Item';
    const facts = h('dl.kv');
    fillKv(facts, {
      status: it.status, media_type: it.media_type, file_size: fmt.bytes(it.file_size),
      attempts: `${it.attempts} of ${it.max_attempts}`, errors: it.error_count ?? 0,
      last_error: it.last_error || 'none', priority: it.priority,
      queued: fmt.time(it.queued_at), started: fmt.time(it.started_at), completed: fmt.time(it.completed_at),
      processing_time: fmt.secs(it.processing_duration_seconds), stored_as: it.file_path || '–',
      queue_id: it.id, media_id: it.media_item_id,
    });
    const file = `/api/media/${it.media_item_id}/file`;
    const depth = `/api/media/${it.media_item_id}/depth`;
    const pair = it.media_type === 'photo'
      ? h('div.pair', {},
        h('figure', {}, h('img', { src: file, alt: 'Original' }), h('figcaption', {}, h('a', { href: file, target: '_blank' }, 'Original'))),
        it.status === 'completed'
          ? h('figure', {}, h('img', { src: depth, alt: 'Depth map' }), h('figcaption', {}, h('a', { href: depth, target: '_blank' }, 'Depth map')))
          : h('figure', {}, h('div.empty', {}, 'The depth map appears here once processing completes.')))
      : (it.status === 'completed' ? h('p', {}, h('a', { href: depth }, 'Download depth frames (ZIP)')) : null);
    const actions = h('div.actions', {}, actionButtons(it).slice(1));
    body.replaceChildren(pair || '', facts, await assets(it.media_item_id), actions);
  } catch (e) {
    body.replaceChildren(h('p.error-text', {}, `${e.title}: ${e.message}`));
  }
}

// The item's generated 3D assets (depth maps per model, splats as PLY and
// KSPLAT), each with its download link.
async function assets(mediaId) {
  let list;
  try {
    list = await api(`/api/assets/${mediaId}/files`);
  } catch {
    return h('p.muted', {}, '3D assets cannot be listed now.');
  }
  if (!list.files.length) return h('section.assets', {}, h('h3', {}, '3D assets'), h('p.muted', {}, 'None yet.'));
  const rows = list.files.map((f) => {
    const href = `/api/assets/${mediaId}/files/${f.id}/download`;
    return h('li', { dataset: { format: f.format } },
      h('span.pill', {}, f.type), ` ${f.modelKey} · ${f.format.toUpperCase()} · ${fmt.bytes(Number(f.fileSize))} `,
      h('a', { href, download: `${f.type}-${f.modelKey}.${f.format}` }, 'Download'));
  });
  return h('section.assets', {}, h('h3', {}, '3D assets'), h('ul.plain', { 'aria-label': '3D assets' }, rows));
}

// Kept rows would otherwise say "just now" forever.
function refreshTimes() {
  for (const t of document.querySelectorAll('#items-body time[datetime]')) t.textContent = fmt.ago(t.getAttribute('datetime'));
}

export function init() {
  setInterval(refreshTimes, 20000);
  const sel = (id, key, conv = (v) => v) => $(id).addEventListener('change', (e) => { q[key] = conv(e.target.value); q.offset = 0; load(); });
  sel('#q-status', 'status');
  sel('#q-order', 'orderBy');
  sel('#q-dir', 'dir');
  sel('#q-limit', 'limit', Number);
  $('#q-prev').addEventListener('click', () => { q.offset = Math.max(0, q.offset - q.limit); load(); });
  $('#q-next').addEventListener('click', () => { q.offset += q.limit; load(); });
  $('#q-refresh').addEventListener('click', load);
  $('#q-retry-all').addEventListener('click', (e) => busy(e.currentTarget, async () => {
    try {
      const r = await api('/api/queue/retry-failed', { method: 'POST' });
      say(r.count ? r.message : 'There are no failed items to retry.', 'ok');
      load();
    } catch (err) { sayError(err, 'Retry all failed'); }
  }));
  for (const c of document.querySelectorAll('.counter')) {
    c.addEventListener('click', () => {
      q.status = c.dataset.status;
      $('#q-status').value = q.status;
      q.offset = 0;
      location.hash = '#queue';
      load();
    });
  }
  on('stats', (m) => showCounters(m.stats));
  on('item', scheduleReload);
  on('poll', () => { if (!document.getElementById('view-queue').hidden) load(); });
  on('reconnected', scheduleReload);
}
