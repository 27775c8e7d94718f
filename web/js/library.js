// The followed Immich library: "ready for 3D: X of Y photos", what is left
// with an estimate, what is skipped and why, the disk 3D assets use, and
// the buttons to read the library now and to pause background work.

import { api } from './api.js';
import { $, h, say, sayError, busy } from './ui.js';
import { on } from './live.js';

let last = null;

const n = (x) => Number(x || 0).toLocaleString();

function bytes(b) {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Number(b || 0);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return i === 0 ? `${v} bytes` : `${v.toFixed(1)} ${units[i]}`;
}

function duration(secs) {
  if (secs < 90) return `${Math.max(1, Math.round(secs))} s`;
  if (secs < 5400) return `${Math.round(secs / 60)} min`;
  if (secs < 172800) return `${(secs / 3600).toFixed(1)} h`;
  return `${Math.round(secs / 86400)} days`;
}

function figures(lib, several) {
  const pct = lib.photos ? Math.floor((lib.ready * 100) / lib.photos) : 100;
  const left = [];
  if (lib.left) {
    left.push(`${n(lib.left)} left`);
    if (lib.etaSeconds != null) left.push(`about ${duration(lib.etaSeconds)} at the measured rate`);
    if (lib.waitingForPreview) left.push(`${n(lib.waitingForPreview)} waiting for Immich's preview`);
  } else {
    left.push('Nothing left to make');
  }
  const skipped = lib.skipped.map((g) => h('details.skip-group', { dataset: { reason: g.reason } },
    h('summary', {}, h('strong', {}, n(g.count)), ` ${g.says}`),
    h('ul.plain', {}, ...g.examples.map((e) => h('li', {},
      h('code', {}, e.fileName || e.assetId), e.error ? h('span.err', {}, ` — ${e.error}`) : null)))));
  return h('div.library', { dataset: { owner: lib.ownerId } },
    // Several people's libraries (the operator sees each): say whose.
    several ? h('h3.owner', {}, `${lib.ownerName || lib.ownerId}'s library`) : null,
    h('p.ready', {}, h('strong', {}, `Ready for 3D: ${n(lib.ready)} of ${n(lib.photos)} photos`), ` (model ${lib.model})`),
    h('progress', { max: 100, value: pct, 'aria-label': 'Photos ready for 3D' }),
    h('p.muted.left', {}, `${left.join(' · ')}.`),
    lib.trashed || lib.gone
      ? h('p.muted', {}, `${n(lib.trashed)} in Immich's trash (kept), ${n(lib.gone)} deleted in Immich (3D assets removed after the grace period).`)
      : null,
    skipped.length ? h('div.skipped', {}, h('h3', {}, 'Not made'), ...skipped) : null,
    h('p.muted.synced', {},
      lib.syncing ? 'Reading the library now…'
        : lib.lastSyncAt ? `Library last read ${new Date(lib.lastSyncAt).toLocaleString()}.` : 'Not read yet.'),
    lib.lastError ? h('p.error-text', {}, `Last round stopped: ${lib.lastError}`) : null);
}

function disk(d) {
  const rows = d.byModel.map((m) => h('tr', {},
    h('td', {}, `${m.kind} ${m.model}`), h('td', {}, n(m.files)), h('td', {}, bytes(m.bytes))));
  return h('div.disk', {},
    h('h3', {}, 'Disk used by 3D assets'),
    h('p', {}, bytes(d.usedBytes),
      d.budgetBytes != null ? ` of ASSET_DISK_BUDGET ${bytes(d.budgetBytes)}` : ' (no ASSET_DISK_BUDGET set)'),
    rows.length ? h('table.items.compact', {},
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Model'), h('th', { scope: 'col' }, 'Files'), h('th', { scope: 'col' }, 'Size'))),
      h('tbody', {}, ...rows)) : null);
}

function render(s) {
  last = s;
  const pill = $('#lib-state');
  const [text, kind] = !s.following ? ['Off', 'warn'] : s.error ? ['Error', 'bad'] : ['Following', 'ok'];
  pill.textContent = text;
  pill.className = `pill ${kind}`;
  const body = $('#lib-body');
  const parts = [];
  if (!s.following) {
    parts.push(h('p', {}, 'Following is off: new photos in Immich are made in 3D only when the app asks. Set IMMICH_URL, IMMICH_API_KEY and IMMICH_SYNC_SECS (above 0) to have every new photo ready before the headset goes on.'));
  } else if (!s.libraries.length) {
    parts.push(h('p', {}, 'No library of yours is followed: turn on "Follow my library" (followLibrary in your settings) to have your new photos made in 3D before the headset goes on.'));
  }
  if (s.error) parts.push(h('p.error-text', {}, s.error));
  for (const lib of s.libraries) parts.push(figures(lib, s.libraries.length > 1));
  parts.push(h('p.muted.background', {}, s.backgroundPausedReason
    ? `Background work waits: ${s.backgroundPausedReason}. The app's own requests are served.`
    : 'Background work runs; the app\'s own requests always go first.'));
  parts.push(disk(s.disk));
  body.replaceChildren(...parts);
  $('#lib-sync').disabled = !s.following;
  const paused = Boolean(s.backgroundPausedReason) && /stopped/.test(s.backgroundPausedReason);
  const toggle = $('#lib-pause');
  toggle.textContent = paused ? 'Resume background work' : 'Pause background work';
  toggle.dataset.action = paused ? 'start' : 'stop';
}

export async function load() {
  try {
    render(await api('/api/library'));
  } catch (e) {
    sayError(e, 'Library');
  }
}

export function init() {
  $('#lib-sync').addEventListener('click', (e) => busy(e.currentTarget, async () => {
    try {
      render(await api('/api/library/sync', { method: 'POST' }));
      say('Reading the Immich library now.', 'ok');
    } catch (err) {
      sayError(err, 'Sync now');
    }
  }));
  $('#lib-pause').addEventListener('click', (e) => busy(e.currentTarget, async () => {
    const action = e.currentTarget.dataset.action || 'stop';
    try {
      const r = await api(`/api/queue/worker/${action}`, { method: 'POST' });
      say(r.message, 'ok');
    } catch (err) {
      sayError(err, action === 'start' ? 'Resuming background work' : 'Pausing background work');
    }
    await load();
  }));
  // The figures changed (at most once a second): the disk and the
  // reasons may have too, so the whole status is read again.
  let pending = null;
  on('library', () => {
    if (!last || pending) return;
    pending = setTimeout(() => { pending = null; load(); }, 300);
  });
  on('worker', () => load());
}
