// Who is signed in: their name and role in the top bar, "Sign out", and
// the Account view with their sessions (each may be signed out). A person
// who is not an operator sees the operator controls hidden, and why
// (`html[data-role="user"]`, style.css). Any 401 sends the browser to the
// sign-in page, which brings it back here.

import { api, fmt } from './api.js';
import { $, h, say, sayError, busy, fillKv } from './ui.js';

let me = null;

// Whether the caller runs the service (the token, an Immich admin, or a
// server that needs no sign-in). Unknown until `load` answers: operator
// controls stay until then, and the server refuses what it must anyway.
export function isOperator() {
  return !me || me.role === 'operator';
}

// `/signin/?next=<this page>`, written as the server writes it.
export function signInUrl() {
  const here = location.pathname + location.search + location.hash;
  return `/signin/?next=${encodeURIComponent(here).replace(/%2F/g, '/')}`;
}

let leaving = false;
export function toSignIn() {
  if (leaving) return;
  leaving = true;
  location.assign(signInUrl());
}

function roleText(role) {
  return role === 'operator' ? 'Operator' : 'User';
}

function who(s) {
  if (s.user) return s.user.name || s.user.email;
  return s.mode === 'immich' || s.mode === 'token' ? 'Operator token' : 'This machine';
}

function render(s) {
  document.documentElement.dataset.role = s.role || 'operator';
  const signedIn = Boolean(s.authenticated && s.required);
  $('#me').hidden = !s.authenticated;
  $('#me-name').textContent = who(s);
  $('#me-role').textContent = roleText(s.role);
  $('#me-role').className = `pill ${s.role === 'operator' ? 'ok' : 'info'}`;
  // Nothing to sign out of where the server asks nobody to sign in.
  $('#sign-out').hidden = !signedIn;
  $('#acct-sign-out').hidden = !signedIn;
  $('#role-note').hidden = s.role !== 'user';
  $('#role-note-name').textContent = who(s);
  $('#acct-role').textContent = roleText(s.role);
  $('#acct-role').className = `pill ${s.role === 'operator' ? 'ok' : 'info'}`;
  const facts = s.user
    ? { name: s.user.name, email: s.user.email, 'Immich admin': s.user.isAdmin ? 'yes' : 'no' }
    : { 'signed in with': signedIn ? "the server's AUTH_TOKEN" : 'nothing (this server needs no sign-in)' };
  facts.role = s.role === 'operator'
    ? 'operator: runs the service (worker, imports, models, backups) and sees every item'
    : 'user: your own photos and what is shared with you in Immich';
  fillKv($('#acct-facts'), facts);
}

// Reads who is signed in; false when nobody is and the server wants
// somebody (the browser is then on its way to the sign-in page).
export async function load() {
  me = await api('/api/auth/status');
  if (me.required && !me.authenticated) {
    toSignIn();
    return false;
  }
  render(me);
  return true;
}

export async function signOut() {
  try {
    await api('/api/auth/logout', { method: 'POST' });
  } catch (e) {
    if (e.status !== 401) { sayError(e, 'Signing out'); return; }
  }
  leaving = true;
  location.assign('/signin/?next=/admin/');
}

function session(s) {
  const end = h('button.btn.small', {
    type: 'button',
    'aria-label': s.current ? 'Sign out of this browser' : `Sign out ${s.device} (${s.address})`,
    onclick: (e) => busy(e.currentTarget, () => endSession(s)),
  }, 'Sign out');
  return h('li.session', { dataset: { id: s.id, current: String(s.current) } },
    h('div.session-head', {},
      h('strong', {}, s.device || 'unknown browser'),
      s.current ? h('span.pill.ok', {}, 'This browser') : null,
      s.remember ? h('span.pill', {}, 'Remembered') : null),
    h('dl.kv.compact', {},
      h('dt', {}, 'address'), h('dd', {}, s.address || '–'),
      h('dt', {}, 'signed in'), h('dd', {}, h('time', { datetime: s.createdAt }, fmt.time(s.createdAt))),
      h('dt', {}, 'until'), h('dd', {}, h('time', { datetime: s.expiresAt }, fmt.time(s.expiresAt)))),
    h('div.actions', {}, end));
}

async function endSession(s) {
  if (s.current) return signOut();
  try {
    await api(`/api/auth/sessions/${encodeURIComponent(s.id)}`, { method: 'DELETE' });
    say(`${s.device} is signed out.`, 'ok');
  } catch (e) {
    sayError(e, 'Signing a session out');
  }
  await sessions();
}

export async function sessions() {
  const list = $('#sessions');
  try {
    const r = await api('/api/auth/sessions');
    list.replaceChildren(...(r.sessions.length
      ? r.sessions.map(session)
      : [h('li.muted', {}, me?.required ? 'No browser sessions: this page came with the token itself.' : 'This server needs no sign-in.')]));
  } catch (e) {
    list.replaceChildren(h('li.error-text', {}, `${e.title}: ${e.message}`));
  }
}

export function visible(yes) {
  if (yes) sessions();
}

export function init() {
  $('#sign-out').addEventListener('click', (e) => busy(e.currentTarget, signOut));
  $('#acct-sign-out').addEventListener('click', (e) => busy(e.currentTarget, signOut));
  $('#sessions-refresh').addEventListener('click', sessions);
}
