// The sign-in page: one JSON call, POST /api/auth/login, with an Immich
// account, an Immich API key or the operator's token; then back to where
// the browser was going (`?next=`, a path of this server only).

const $ = (s) => document.querySelector(s);
let way = 'password';

function nextPath() {
  const next = new URLSearchParams(location.search).get('next') || '/';
  // Only a path of this server: never another site (an open redirect).
  return next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/';
}

function choose(w) {
  way = w;
  for (const b of document.querySelectorAll('#ways button')) b.setAttribute('aria-selected', String(b.dataset.way === w));
  for (const d of document.querySelectorAll('[data-for]')) d.hidden = d.dataset.for !== w;
  $('#error').textContent = '';
  const first = document.querySelector(`[data-for="${w}"] input`);
  if (first) first.focus();
}

async function status() {
  try {
    const r = await fetch('/api/auth/status', { headers: { accept: 'application/json' }, credentials: 'same-origin' });
    return await r.json();
  } catch { return null; }
}

function message(status, body, retryAfter) {
  if (status === 429) return `Too many failed sign-ins. Try again in ${retryAfter || body?.message?.match(/(\d+) s/)?.[1] || 'a few'} seconds.`;
  if (status === 0) return 'The server did not answer. Is it running?';
  return body?.message || `Sign-in failed (HTTP ${status}).`;
}

async function submit(e) {
  e.preventDefault();
  const body = { remember: $('#remember').checked };
  if (way === 'password') { body.email = $('#email').value.trim(); body.password = $('#password').value; }
  if (way === 'apiKey') body.apiKey = $('#apiKey').value.trim();
  if (way === 'token') body.token = $('#token').value;
  $('#submit').disabled = true;
  $('#error').textContent = '';
  let r = null; let data = null;
  try {
    r = await fetch('/api/auth/login', { method: 'POST', credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(body) });
    data = await r.json().catch(() => null);
  } catch { /* unreachable: below */ }
  $('#submit').disabled = false;
  if (r && r.ok) { location.replace(nextPath()); return; }
  $('#error').textContent = message(r ? r.status : 0, data, r?.headers.get('retry-after'));
}

async function main() {
  for (const b of document.querySelectorAll('#ways button')) b.addEventListener('click', () => choose(b.dataset.way));
  $('#form').addEventListener('submit', submit);
  const s = await status();
  if (s?.authenticated) { location.replace(nextPath()); return; }
  const methods = s?.methods || ['password', 'apiKey', 'token'];
  for (const b of document.querySelectorAll('#ways button')) b.hidden = !methods.includes(b.dataset.way);
  if (s?.immichUrl) {
    const a = document.createElement('a');
    a.href = `${s.immichUrl}/user-settings?isOpen=api-keys`; a.textContent = ' (open it)'; a.target = '_blank'; a.rel = 'noopener';
    $('#immich-link').append(a);
  }
  if (!methods.includes('password') && methods.includes('token')) {
    $('#note').textContent = 'This server has no Immich connection (IMMICH_URL): sign in with its token.';
  }
  choose(methods.includes('password') ? 'password' : methods[0] || 'token');
}

main();
