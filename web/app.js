// Entry point: tabs bound to the URL hash, sign-in when the server wants a
// token, then the live stream.

import { api, onUnauthorized } from './js/api.js';
import { $, $$, sayError } from './js/ui.js';
import * as live from './js/live.js';
import * as queue from './js/queue.js';
import * as upload from './js/upload.js';
import * as worker from './js/worker.js';
import * as immich from './js/immich.js';
import * as library from './js/library.js';
import * as models from './js/models.js';

const VIEWS = ['queue', 'upload', 'worker', 'immich', 'models'];
const tabs = () => $$('[role="tab"]');

function show(view, focus = false) {
  if (!VIEWS.includes(view)) view = 'queue';
  for (const t of tabs()) {
    const on = t.dataset.view === view;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    if (on && focus) t.focus();
  }
  for (const v of VIEWS) $(`#view-${v}`).hidden = v !== view;
  worker.visible(view === 'worker');
  immich.visible(view === 'immich');
  if (view === 'immich') library.load();
  models.visible(view === 'models');
  if (view === 'queue') queue.load();
  document.title = `${$(`#tab-${view}`).textContent} · ImmichVR admin`;
}

const current = () => location.hash.slice(1) || 'queue';

function initTabs() {
  for (const t of tabs()) {
    t.addEventListener('click', () => { location.hash = `#${t.dataset.view}`; });
  }
  // Arrow keys move between tabs (the WAI-ARIA tabs pattern).
  $('.tabs').addEventListener('keydown', (e) => {
    const list = tabs();
    const i = list.indexOf(document.activeElement);
    if (i < 0) return;
    let j = null;
    if (e.key === 'ArrowRight') j = (i + 1) % list.length;
    if (e.key === 'ArrowLeft') j = (i - 1 + list.length) % list.length;
    if (e.key === 'Home') j = 0;
    if (e.key === 'End') j = list.length - 1;
    if (j === null) return;
    e.preventDefault();
    location.hash = `#${list[j].dataset.view}`;
    list[j].focus();
  });
  window.addEventListener('hashchange', () => show(current()));
}

let loginOpen = false;
function askLogin() {
  if (loginOpen) return;
  loginOpen = true;
  live.disconnect();
  const dlg = $('#login');
  dlg.showModal();
  $('#login-token').focus();
}

async function start() {
  try {
    const [root, auth] = await Promise.all([
      api('/'),
      api('/api/auth/status').catch(() => ({ required: false, authenticated: true })),
    ]);
    $('#version').textContent = `v${root.version}`;
    if (auth.required && !auth.authenticated) return askLogin();
  } catch (e) {
    sayError(e, 'Connecting');
  }
  live.connect();
  show(current());
}

function initLogin() {
  onUnauthorized(askLogin);
  $('#login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api('/api/auth/login', { method: 'POST', body: { token: $('#login-token').value } });
      loginOpen = false;
      $('#login').close();
      $('#login-error').textContent = '';
      live.connect();
      show(current());
    } catch (err) {
      $('#login-error').textContent = err.message;
    }
  });
  // The sign-in cannot be dismissed: nothing works without it.
  $('#login').addEventListener('cancel', (e) => e.preventDefault());
}

queue.init();
upload.init();
worker.init();
immich.init();
library.init();
models.init();
initTabs();
initLogin();
start();
