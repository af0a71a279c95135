// The /ui page of @marie/jobs: upload a document, follow its job, draw its pages with their word
// boxes. Plain JS for today's browsers: the gateway serves this file as it is.
import { api, call, el, events } from './api.js';

const TERMINAL = new Set(['completed', 'expired', 'cancelled', 'failed']);
/** Where a page's words came from (Marie's per-page JSON, meta.source). */
const SOURCES = { text: 'from its text layer', ocr: 'OCR', mixed: 'text layer and OCR' };
const SVG = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);
const status = $('status');
let following;

function say(text, state) {
  status.textContent = text;
  status.dataset.state = state ?? '';
}

$('upload').addEventListener('submit', async (event) => {
  event.preventDefault();
  const file = $('file').files[0];
  if (!file) return;
  say(`uploading ${file.name} (${Math.ceil(file.size / 1024)} KiB)…`);
  try {
    const { job_id } = await api(`/ui/api/upload?name=${encodeURIComponent(file.name)}`, {
      method: 'POST',
      headers: { 'content-type': file.type || 'application/octet-stream' },
      body: file,
    });
    follow(job_id, file.name);
    refresh();
  } catch (err) {
    say(`upload failed: ${err.message}`, 'failed');
  }
});

/** Follows a job's state changes (Server-Sent Events) until it ends, then shows it. */
function follow(id, name) {
  following?.abort();
  const stream = new AbortController();
  following = stream;
  events(
    `/api/v1/jobs/${id}/events`,
    (event, data) => {
      if (event !== 'state') return;
      const job = JSON.parse(data);
      const attempt = job.attempts > 1 ? `, attempt ${job.attempts}` : '';
      say(`${name ?? job.ref_id ?? 'job'} · job ${job.job_id}: ${job.state}${attempt}`, job.state);
      if (TERMINAL.has(job.state)) {
        stream.abort();
        if (job.error) say(`${status.textContent}: ${job.error.message}`, job.state);
        refresh();
        if (job.state === 'completed') show(job);
      }
    },
    stream.signal,
  ).catch((err) => {
    if (!stream.signal.aborted) say(`lost the job's events: ${err.message}`, 'failed');
  });
}

/** A page image, fetched with the key, as an object URL for an <img>. */
async function pageImage(img, path) {
  const res = await call(path);
  if (res.ok) img.src = URL.createObjectURL(await res.blob());
}

/** Marie's per-page OCR JSON in a job's result (`metadata.ocr` of an executor's results). */
function ocrPages(job) {
  for (const r of Object.values(job.result?.results ?? {}))
    if (Array.isArray(r?.metadata?.ocr)) return r.metadata.ocr;
  return [];
}

function show(job) {
  const pages = ocrPages(job);
  $('viewer').hidden = false;
  $('viewer-title').textContent = `${job.ref_id ?? job.job_id}: ${pages.length} page(s)`;
  const out = $('pages');
  out.replaceChildren();
  const tip = $('tip');
  for (const page of pages) {
    const { width, height } = page.meta.imageSize;
    const sheet = el('div', { class: 'sheet' });
    const img = el('img', {
      alt: `page ${page.meta.page + 1}`,
      width: String(width),
      height: String(height),
    });
    void pageImage(img, `/ui/api/jobs/${job.job_id}/pages/${page.meta.page}`);
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.setAttribute('preserveAspectRatio', 'none');
    for (const word of page.words) {
      let [x, y, w, h] = word.box;
      if (page.meta.format === 'xyxy') [w, h] = [w - x, h - y];
      const rect = document.createElementNS(SVG, 'rect');
      for (const [k, v] of Object.entries({ x, y, width: w, height: h }))
        rect.setAttribute(k, String(v));
      rect.setAttribute('class', word.confidence < 0.8 ? 'word low' : 'word');
      rect.dataset.text = word.text;
      rect.dataset.confidence = String(word.confidence);
      svg.append(rect);
    }
    svg.addEventListener('mousemove', (event) => {
      const rect = event.target.closest?.('rect');
      if (!rect) {
        tip.hidden = true;
        return;
      }
      tip.textContent = `${rect.dataset.text} · ${Number(rect.dataset.confidence).toFixed(3)}`;
      tip.style.left = `${event.clientX + 12}px`;
      tip.style.top = `${event.clientY + 12}px`;
      tip.hidden = false;
    });
    svg.addEventListener('mouseleave', () => {
      tip.hidden = true;
    });
    sheet.append(img, svg);
    const text = el('pre', { class: 'text' }, page.lines.map((l) => l.text).join('\n'));
    out.append(
      el(
        'article',
        { class: 'page', 'data-page': String(page.meta.page) },
        sheet,
        el(
          'div',
          {},
          el(
            'h3',
            {},
            `page ${page.meta.page + 1} · ${page.words.length} words${page.meta.source ? ` · ${SOURCES[page.meta.source] ?? page.meta.source}` : ''}`,
          ),
          text,
        ),
      ),
    );
  }
}

async function open(id) {
  const job = await api(`/api/v1/jobs/${id}`);
  if (TERMINAL.has(job.state)) {
    say(`${job.ref_id ?? 'job'} · job ${job.job_id}: ${job.state}`, job.state);
    if (job.state === 'completed') show(job);
  } else follow(id, job.ref_id);
}

async function refresh() {
  try {
    const { jobs } = await api('/api/v1/jobs?limit=15');
    $('jobs').replaceChildren(
      ...jobs.map((job) => {
        const view = el('button', { type: 'button' }, 'view');
        view.addEventListener('click', () =>
          open(job.job_id).catch((e) => say(e.message, 'failed')),
        );
        return el(
          'tr',
          { 'data-job': job.job_id, 'data-state': job.state },
          el('td', {}, el('code', {}, job.job_id.slice(0, 8))),
          el('td', {}, job.ref_id ?? job.asset_key ?? ''),
          el('td', {}, job.state),
          el('td', {}, String(job.attempts)),
          el('td', {}, new Date(job.created_on).toLocaleString()),
          el('td', {}, view),
        );
      }),
    );
  } catch (err) {
    say(`cannot list jobs: ${err.message}`, 'failed');
  }
}

refresh();
setInterval(refresh, 5000);
