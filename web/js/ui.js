// Small DOM helpers and the message area.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

// h('button.btn.small', {onclick}, 'text', child...)
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag);
  if (classes.length) el.className = classes.join(' ');
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && k !== 'list' && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const box = () => document.getElementById('messages');

// Shows a message; errors stay until dismissed, others fade after a while.
export function say(text, kind = 'info', title) {
  const close = h('button', { type: 'button', 'aria-label': 'Dismiss message' }, '✕');
  const msg = h(`div.msg.${kind}`, { role: kind === 'error' ? 'alert' : 'status' },
    h('p', {}, title ? h('strong', {}, `${title}: `) : null, text), close);
  close.addEventListener('click', () => msg.remove());
  box().append(msg);
  while (box().children.length > 4) box().firstElementChild.remove();
  if (kind !== 'error') setTimeout(() => msg.remove(), 5000);
  return msg;
}

export function sayError(err, context) {
  if (err?.name === 'AbortError') return;
  const title = context ? `${context} — ${err.title || 'Error'}` : (err.title || 'Error');
  say(err.message || String(err), 'error', title);
}

// Fills a <dl> from an object; nested values are shown as compact JSON.
export function fillKv(dl, obj) {
  dl.replaceChildren();
  for (const [k, v] of Object.entries(obj || {})) {
    const shown = v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v ?? '–');
    dl.append(h('dt', {}, k.replace(/_/g, ' ')), h('dd', {}, shown));
  }
}

// Runs an async action with the button disabled meanwhile.
export async function busy(button, fn) {
  button.disabled = true;
  try { return await fn(); } finally { button.disabled = false; }
}
