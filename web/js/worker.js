// Worker and AI view: running state with start/stop, items in flight, each
// AI endpoint's reachability, and the AI service's own /health and /info.

import { api } from './api.js';
import { $, h, say, sayError, busy, fillKv } from './ui.js';
import { on } from './live.js';
import { isOperator } from './account.js';

let last = null;

function render(w) {
  last = w;
  const state = $('#w-state');
  state.textContent = w.running ? 'Running' : 'Stopped';
  state.className = `pill ${w.running ? 'ok' : 'warn'}`;
  $('#w-start').disabled = w.running;
  $('#w-stop').disabled = !w.running;
  $('#w-summary').textContent = !w.running
    ? 'Stopped: uploads, imports and following Immich wait until it is started again; the VR app\'s own requests are still served.'
    : w.pausedReason
      ? `Paused: ${w.pausedReason}. It resumes by itself.`
      : w.backgroundPausedReason
        ? `Background work waits: ${w.backgroundPausedReason}. The VR app's own requests are served.`
        : (w.processing ? 'Processing now.' : 'Waiting for work.');
  fillKv($('#w-facts'), {
    'completed since start': w.processed,
    'failed since start': w.failed,
    'parallel requests per endpoint': w.concurrency,
    'app requests in flight': w.onDemandInFlight,
    'rate (per second)': w.ratePerSec == null ? '–' : w.ratePerSec.toFixed(2),
    'background hours': w.backgroundHours || 'any time',
    'AI reachable': w.aiReachable ? 'yes' : 'no',
  });
  const inflight = $('#w-inflight');
  inflight.replaceChildren(...(w.inFlight.length
    ? w.inFlight.map((id) => h('li', {}, h('code', {}, id)))
    : [h('li.muted', {}, 'Nothing in flight.')]));
  $('#w-endpoints').replaceChildren(...w.endpoints.map((e) => h('li', { dataset: { url: e.url } },
    h('div.card-head', {},
      h('span.url', {}, e.url),
      h(`span.pill.${e.reachable ? 'ok' : 'bad'}`, {}, e.reachable ? 'Reachable' : 'Unreachable')),
    h('div.muted', {}, `${e.inFlight} in flight`),
    e.lastError ? h('div.err', {}, `Last error: ${e.lastError}`) : null)));
}

export async function load() {
  if (!isOperator()) {
    // The worker's state and endpoints are the operators' (403 for others).
    $('#w-endpoints').replaceChildren(h('li.muted', {}, 'The AI endpoints and their errors are shown to operators.'));
  } else {
    try {
      render(await api('/api/queue/worker/status'));
    } catch (e) {
      sayError(e, 'Worker status');
    }
  }
  const ai = async (path, dl, what) => {
    try {
      fillKv(dl, await api(path));
    } catch (e) {
      dl.replaceChildren(h('dt', {}, 'error'), h('dd.error-text', {}, `${e.title}: ${e.message}`));
      if (e.code !== 'ai-unhealthy' && e.code !== 'ai-unreachable') sayError(e, what);
    }
  };
  await Promise.all([ai('/api/ai/health', $('#ai-health'), 'AI health'), ai('/api/ai/info', $('#ai-info'), 'AI info')]);
}

async function toggle(button, action) {
  await busy(button, async () => {
    try {
      const r = await api(`/api/queue/worker/${action}`, { method: 'POST' });
      say(r.message, 'ok');
    } catch (e) {
      sayError(e, action === 'start' ? 'Starting the worker' : 'Stopping the worker');
    }
  });
  await load();
}

let timer = null;
export function visible(yes) {
  clearInterval(timer);
  timer = null;
  if (yes) {
    load();
    timer = setInterval(load, 5000);
  }
}

export function init() {
  $('#w-start').addEventListener('click', (e) => toggle(e.currentTarget, 'start'));
  $('#w-stop').addEventListener('click', (e) => toggle(e.currentTarget, 'stop'));
  $('#w-refresh').addEventListener('click', load);
  on('worker', (m) => { if (last) render({ ...last, running: m.running }); });
  on('ai_endpoint', (m) => {
    if (!last) return;
    render({ ...last, endpoints: last.endpoints.map((e) => (e.url === m.url ? { ...e, reachable: m.reachable, lastError: m.last_error } : e)) });
  });
}
