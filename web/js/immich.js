// Immich view: connection status, a paged thumbnail grid of photos or
// videos, queueing one or several, and "import all photos" with progress.

import { api } from './api.js';
import { $, $$, h, say, sayError, busy } from './ui.js';
import { on } from './live.js';
import { isOperator } from './account.js';

const PAGE_SIZE = 24;
const st = { type: 'photos', page: 1, nextPage: null, total: null, loaded: false, configured: false };

function setupHelp(reason) {
  return h('div.setup', {},
    h('p', {}, reason),
    h('p', {}, 'To browse and import your Immich library, start ImmichVR with these two settings (environment variables or the same names in your .env file) and restart it:'),
    h('pre', {}, h('code', {}, 'IMMICH_URL=http://your-immich-server:2283\nIMMICH_API_KEY=your-api-key')),
    h('p.muted', {}, 'Create the API key in Immich under Account Settings → API Keys. It needs the asset.read, asset.view, asset.download, asset.statistics and user.read permissions (user.read lets it follow the library).'));
}

function state(text, kind) {
  const pill = $('#im-state');
  pill.textContent = text;
  pill.className = `pill ${kind}`;
}

async function checkConnection() {
  const box = $('#im-status');
  try {
    const test = await api('/api/immich/test');
    st.configured = true;
    const parts = [`${(test.message || 'Connected to Immich').replace(/\.$/, '')}.`];
    if (test.data?.version) parts.push(`Immich version ${test.data.version} at ${test.data.url}.`);
    // An import is the operators' (its state too: 403 for others).
    const [stats, running] = await Promise.allSettled([api('/api/immich/statistics'),
      isOperator() ? api('/api/immich/import') : Promise.resolve(null)]);
    if (running.status === 'fulfilled' && (running.value?.running || running.value?.finishedAt)) showImport(running.value);
    if (stats.status === 'fulfilled' && stats.value?.data) {
      const s = stats.value.data;
      st.total = s.images;
      parts.push(`${s.images} photos and ${s.videos} videos in the library.`);
    }
    if (test.data?.warning) parts.push(test.data.warning);
    box.replaceChildren(h('p', {}, parts.join(' ')));
    state('Connected', 'ok');
    $('#im-browser').hidden = false;
    await loadPage();
  } catch (e) {
    $('#im-browser').hidden = true;
    if (e.code === 'immich-not-configured') {
      state('Not configured', 'warn');
      box.replaceChildren(setupHelp('Immich is not connected yet.'));
    } else if (e.code === 'not-found') {
      state('Unavailable', 'warn');
      box.replaceChildren(h('p', {}, 'This server has no Immich connector.'));
    } else {
      state('Error', 'bad');
      box.replaceChildren(h('p.error-text', {}, `${e.title}: ${e.message}`),
        h('p.muted', {}, 'Check that Immich is running, that IMMICH_URL points at it, and that IMMICH_API_KEY is valid.'));
    }
  }
}

function selected() {
  return $$('#im-grid input[type="checkbox"]:checked');
}

function updateSelection() {
  const n = selected().length;
  const b = $('#im-enqueue-selected');
  b.disabled = n === 0;
  b.textContent = n ? `Queue ${n} selected` : 'Queue selected';
}

async function enqueue(asset, tile) {
  const note = tile.querySelector('.meta-note');
  try {
    const { status, data: r } = await api(`/api/immich/assets/${asset.id}/enqueue`, { method: 'POST', full: true });
    // 200 means this asset was imported before; 201 that it was queued now.
    note.textContent = status === 200 ? 'Already imported' : 'Queued ✓';
    note.className = 'meta-note queued-note';
    tile.dataset.queued = r.queueId || 'yes';
    const box = tile.querySelector('input');
    box.checked = false;
    return true;
  } catch (e) {
    sayError(e, `Queueing ${asset.originalFileName}`);
    return false;
  }
}

function tile(asset) {
  const name = asset.originalFileName || asset.id;
  const check = h('input', { type: 'checkbox', 'aria-label': `Select ${name}`, onchange: updateSelection });
  const op = isOperator();
  const el = h('li.tile', { dataset: { id: asset.id } },
    h('img', { src: `/api/immich/assets/${asset.id}/thumbnail?size=thumbnail`, alt: name, loading: 'lazy' }),
    op ? h('label.pick', {}, check) : null,
    asset.type === 'VIDEO' ? h('span.kind', {}, '▶ video') : null,
    h('div.meta', {},
      h('span', { title: name }, name),
      h('span.meta-note', {})),
    op ? h('div.meta', {}, h('button.btn.small', { type: 'button', 'aria-label': `Queue ${name}`,
      onclick: (e) => busy(e.currentTarget, () => enqueue(asset, el)) }, 'Queue for depth')) : null);
  el.asset = asset;
  return el;
}

async function loadPage() {
  const grid = $('#im-grid');
  try {
    const r = await api(`/api/immich/${st.type}?page=${st.page}&size=${PAGE_SIZE}`);
    st.nextPage = r.nextPage ?? null;
    grid.replaceChildren(...(r.data || []).map(tile));
    if (!r.data?.length) grid.replaceChildren(h('li.empty', {}, `No ${st.type} on this page.`));
    $('#im-page').textContent = `Page ${st.page}`;
    $('#im-prev').disabled = st.page <= 1;
    $('#im-next').disabled = !st.nextPage;
    updateSelection();
  } catch (e) {
    sayError(e, `Loading Immich ${st.type}`);
  }
}

function showImport(m) {
  const box = $('#im-import');
  box.hidden = false;
  const bar = $('#im-import-bar');
  const doneCount = (m.queued || 0) + (m.skipped || 0) + (m.failed || 0);
  if (st.total) {
    bar.max = st.total;
    bar.value = Math.min(doneCount, st.total);
  } else {
    bar.removeAttribute('value');
  }
  const finished = m.running === false;
  if (finished) { bar.max = 1; bar.value = 1; }
  $('#im-import-text').textContent = `${finished ? 'Import finished' : 'Importing'}: ${m.queued || 0} queued, ${m.skipped || 0} already there, ${m.failed || 0} failed`;
  $('#im-import-all').disabled = !finished;
}

export function visible(yes) {
  if (yes && !st.loaded) {
    st.loaded = true;
    checkConnection();
  }
}

export function init() {
  const setType = (type) => {
    st.type = type;
    st.page = 1;
    $('#im-photos').setAttribute('aria-pressed', String(type === 'photos'));
    $('#im-videos').setAttribute('aria-pressed', String(type === 'videos'));
    loadPage();
  };
  $('#im-photos').addEventListener('click', () => setType('photos'));
  $('#im-videos').addEventListener('click', () => setType('videos'));
  $('#im-prev').addEventListener('click', () => { st.page = Math.max(1, st.page - 1); loadPage(); });
  $('#im-next').addEventListener('click', () => { if (st.nextPage) { st.page = Number(st.nextPage) || st.page + 1; loadPage(); } });
  $('#im-enqueue-selected').addEventListener('click', (e) => busy(e.currentTarget, async () => {
    const tiles = selected().map((c) => c.closest('.tile'));
    let ok = 0;
    for (const t of tiles) if (await enqueue(t.asset, t)) ok++;
    if (ok) say(`${ok} item(s) queued for depth maps.`, 'ok');
    updateSelection();
  }));
  $('#im-import-all').addEventListener('click', async (e) => {
    const b = e.currentTarget;
    b.disabled = true;
    try {
      const r = await api('/api/immich/import', { method: 'POST', body: { type: 'IMAGE' } });
      say(r.message || 'Import started: every photo in Immich will be queued.', 'ok');
      showImport({ running: true, ...r });
    } catch (err) {
      b.disabled = false;
      sayError(err, err.code === 'import-running' ? 'An import is already running' : 'Import');
    }
  });
  on('import', showImport);
}
