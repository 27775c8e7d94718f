// Entry point: tabs bound to the URL hash, who is signed in (the sign-in
// page when nobody is), then the live stream.

import { api, onUnauthorized } from './js/api.js';
import { $, $$, sayError } from './js/ui.js';
import * as live from './js/live.js';
import * as queue from './js/queue.js';
import * as upload from './js/upload.js';
import * as worker from './js/worker.js';
import * as immich from './js/immich.js';
import * as library from './js/library.js';
import * as models from './js/models.js';
import * as account from './js/account.js';

// `account` has no tab: the name in the top bar opens it.
const VIEWS = ['queue', 'upload', 'worker', 'immich', 'models', 'account'];
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
  account.visible(view === 'account');
  if (view === 'queue') queue.load();
  const title = view === 'account' ? 'Account' : $(`#tab-${view}`).textContent;
  document.title = `${title} · ImmichVR admin`;
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

async function start() {
  try {
    const [root, signedIn] = await Promise.all([api('/'), account.load()]);
    $('#version').textContent = `v${root.version}`;
    if (!signedIn) return;
  } catch (e) {
    // A 401 is on its way to the sign-in page already.
    if (e.status === 401) return;
    sayError(e, 'Connecting');
  }
  live.connect();
  show(current());
}

// Nothing works without a sign-in: any 401 (a session signed out from
// another device, or expired) goes to the sign-in page and back here.
onUnauthorized(() => {
  live.disconnect();
  account.toSignIn();
});

queue.init();
upload.init();
worker.init();
immich.init();
library.init();
models.init();
account.init();
initTabs();
start();
