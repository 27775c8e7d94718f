// Upload view: drag and drop or picker, several files, one progress bar
// per file, and every server answer put into plain words.

import { uploadFile, fmt } from './api.js';
import { $, h } from './ui.js';

// Two at a time: the server receives a few uploads at once and lets more
// wait for a slot; two keep a home connection busy without starving the page.
const PARALLEL = 2;
const waiting = [];
let active = 0;

function explain(file, res) {
  const d = res.data || {};
  if (res.status === 201) return ['done', `Uploaded and queued for a depth map (${d.type || 'media'}).`];
  if (res.status === 200) {
    return d.duplicate
      ? ['duplicate', 'Already here: this exact file was uploaded before, so nothing new was stored. Its existing queue entry is kept.']
      : ['done', d.message || 'Uploaded.'];
  }
  if (res.status === 0) return ['error', 'The connection to the server broke during the upload. Check that it is running and try again.'];
  if (res.status === -1) return ['error', 'Upload cancelled.'];
  switch (res.code) {
    case 'file-too-large':
    case 'body-too-large':
      return ['error', `Too large: ${fmt.bytes(file.size)} is over the server's upload limit. ${d.message || ''} (The limit is MAX_UPLOAD_BYTES on the server.)`];
    case 'unsupported-media-type':
      return ['error', `Not a photo or video: the server looked at the file's contents and does not recognise it as an image or a video, so it was not stored. ${d.message || ''}`];
    case 'unauthorized':
      return ['error', 'Not signed in: the server needs its access token. Reload the page to sign in.'];
    case 'disk-full':
      return ['error', `The server's disk is full. ${d.message || ''}`];
    default:
      return ['error', `${d.error || `HTTP ${res.status}`}: ${d.message || 'the server refused this file.'}`];
  }
}

async function run(job) {
  active++;
  job.el.dataset.state = 'uploading';
  job.note.textContent = 'Uploading…';
  for (;;) {
    const res = await uploadFile(job.file, (f) => {
      job.bar.value = f;
      job.note.textContent = `Uploading… ${Math.round(f * 100)}%`;
    });
    if (res.code === 'too-many-uploads') {
      // The server is busy with other uploads: wait as it asks, then go on.
      job.bar.value = 0;
      job.note.textContent = `The server is busy with other uploads; trying again in ${res.retryAfter} s…`;
      await new Promise((r) => setTimeout(r, res.retryAfter * 1000));
      continue;
    }
    const [state, text] = explain(job.file, res);
    job.el.dataset.state = state;
    job.note.textContent = text;
    if (state !== 'error') job.bar.value = 1;
    if (res.data?.queueId) {
      job.note.append(' ', h('a', { href: '#queue' }, 'See it in the queue'));
    }
    break;
  }
  active--;
  next();
}

function next() {
  while (active < PARALLEL && waiting.length) run(waiting.shift());
}

export function add(files) {
  const list = $('#uploads');
  for (const file of files) {
    const bar = h('progress', { max: 1, value: 0, 'aria-label': `Upload progress of ${file.name}` });
    const note = h('div.note', { 'aria-live': 'polite' }, 'Waiting…');
    const el = h('li.upload', { dataset: { state: 'waiting' } },
      h('span.name', {}, file.name), h('span.size', {}, fmt.bytes(file.size)), bar, note);
    list.prepend(el);
    waiting.push({ file, el, bar, note });
  }
  next();
}

// The sample photos ship inside the binary (assets/samples), for a first
// try before any photo of one's own.
async function trySample() {
  const res = await fetch('/admin/samples/garden.jpg');
  if (!res.ok) return;
  add([new File([await res.blob()], 'garden.jpg', { type: 'image/jpeg' })]);
}

export function init() {
  $('#try-sample').addEventListener('click', trySample);
  const zone = $('#dropzone');
  const input = $('#file-input');
  input.addEventListener('change', () => { add([...input.files]); input.value = ''; });
  for (const t of ['dragenter', 'dragover']) {
    zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add('over'); });
  }
  for (const t of ['dragleave', 'drop']) {
    zone.addEventListener(t, () => zone.classList.remove('over'));
  }
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    if (e.dataTransfer?.files?.length) add([...e.dataTransfer.files]);
  });
  // A file dropped beside the zone would make the browser navigate away.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => {
    e.preventDefault();
    if (e.dataTransfer?.files?.length) { location.hash = '#upload'; add([...e.dataTransfer.files]); }
  });
}
