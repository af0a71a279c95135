// The /ui/dags page of @marie/pipelines: recent DAGs, one DAG as a graph coloured by state and
// followed over its events, a node's output or error, an OCR node's pages with their word boxes.
// Plain JS for today's browsers: the gateway serves this file as it is.
import { api, call, el, events } from './api.js';

const ENDED = new Set(['completed', 'failed', 'cancelled']);
const STATES = ['blocked', 'pending', 'active', 'completed', 'failed', 'cancelled', 'skipped'];
const SVG = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);
let following;
let current;
let selected;

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

const seconds = (ms) => (ms === null || ms === undefined ? '' : `${(ms / 1000).toFixed(2)} s`);

function say(dag) {
  const late = dag.late !== 'no' ? ` · past its ${dag.late} SLA` : '';
  const status = $('status');
  status.textContent = `${dag.state} · ${dag.nodes_done}/${dag.nodes_total} nodes${late}${
    dag.error ? ` · ${dag.error.node_id}: ${dag.error.message}` : ''
  }`;
  status.dataset.state = dag.state;
  status.className = dag.late !== 'no' ? `late-${dag.late}` : '';
}

/** The DAG as a graph: a column per level, its nodes stacked, edges from each need. */
function draw(dag) {
  const W = 150;
  const H = 46;
  const GX = 60;
  const GY = 14;
  // A column per level; a map's fan-in gets its own, right after its pages.
  const columns = new Map();
  for (const n of dag.nodes) {
    const key = n.kind === 'fanin' ? n.level + 0.5 : n.level;
    const col = columns.get(key) ?? [];
    col.push(n);
    columns.set(key, col);
  }
  const at = new Map();
  let rows = 0;
  [...columns]
    .sort((a, b) => a[0] - b[0])
    .forEach(([, col], c) => {
      col.forEach((n, i) => {
        at.set(n.node_id, { x: 10 + c * (W + GX), y: 10 + i * (H + GY) });
      });
      rows = Math.max(rows, col.length);
    });
  const width = 20 + columns.size * (W + GX);
  const height = 20 + rows * (H + GY);
  const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
  for (const n of dag.nodes)
    for (const p of n.needs) {
      const a = at.get(p);
      const b = at.get(n.node_id);
      if (!a || !b) continue;
      const x1 = a.x + W;
      const y1 = a.y + H / 2;
      const x2 = b.x;
      const y2 = b.y + H / 2;
      root.append(
        svg('path', {
          class: 'edge',
          d: `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}`,
        }),
      );
    }
  for (const n of dag.nodes) {
    const { x, y } = at.get(n.node_id);
    const g = svg('g', {
      class: `node state-${n.state}${selected === n.node_id ? ' selected' : ''}`,
      'data-node': n.node_id,
      'data-state': n.state,
      transform: `translate(${x},${y})`,
      tabindex: 0,
    });
    g.append(svg('rect', { width: W, height: H }));
    const name = svg('text', { x: 8, y: 18 });
    name.textContent = n.node_id;
    const sub = svg('text', { x: 8, y: 36, class: 'sub' });
    sub.textContent = `${n.state}${n.duration_ms !== null ? ` · ${seconds(n.duration_ms)}` : ''}${
      n.attempts > 1 ? ` · ${n.attempts} attempts` : ''
    }`;
    g.append(name, sub);
    g.addEventListener('click', () => showNode(n.node_id));
    g.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') showNode(n.node_id);
    });
    root.append(g);
  }
  $('graph').replaceChildren(root);
}

/** Marie's per-page OCR JSON in a node's output (`metadata.ocr` of an executor's results). */
function ocrPages(output) {
  for (const r of Object.values(output?.results ?? {}))
    if (Array.isArray(r?.metadata?.ocr)) return r.metadata.ocr;
  return [];
}

async function pageImage(img, path) {
  const res = await call(path);
  if (res.ok) img.src = URL.createObjectURL(await res.blob());
}

function drawPages(dagId, pages) {
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
    void pageImage(img, `/ui/api/dags/${dagId}/pages/${page.meta.page}`);
    const boxes = svg('svg', { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none' });
    for (const word of page.words) {
      let [x, y, w, h] = word.box;
      if (page.meta.format === 'xyxy') [w, h] = [w - x, h - y];
      const rect = svg('rect', {
        x,
        y,
        width: w,
        height: h,
        class: word.confidence < 0.8 ? 'word low' : 'word',
      });
      rect.dataset.text = word.text;
      rect.dataset.confidence = String(word.confidence);
      boxes.append(rect);
    }
    boxes.addEventListener('mousemove', (event) => {
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
    boxes.addEventListener('mouseleave', () => {
      tip.hidden = true;
    });
    sheet.append(img, boxes);
    out.append(
      el(
        'article',
        { class: 'page', 'data-page': String(page.meta.page) },
        sheet,
        el('pre', { class: 'text' }, page.lines.map((l) => l.text).join('\n')),
      ),
    );
  }
}

/** A node's facts, and its output (an OCR node: its pages) or error. */
function showNode(id) {
  selected = id;
  const n = current?.nodes.find((x) => x.node_id === id);
  if (!n) return;
  draw(current);
  $('node').hidden = false;
  $('node-title').textContent = `${n.node_id} · ${n.kind}${n.endpoint ? ` · ${n.endpoint}` : ''}`;
  const facts = [
    ['state', n.state],
    ['attempts', String(n.attempts)],
    ['runs', String(n.runs)],
    ['started', n.started_on ?? ''],
    ['ended', n.ended_on ?? ''],
    ['took', seconds(n.duration_ms)],
    ['needs', n.needs.join(', ') || '(none)'],
    ['job', n.job_id],
  ];
  $('node-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  const out = $('node-output');
  out.className = n.error ? 'output error' : 'output';
  const pages = ocrPages(n.output);
  drawPages(current.dag_id, pages);
  if (n.error) out.textContent = n.error.message;
  else if (n.output !== undefined) {
    const text = JSON.stringify(n.output, null, 2);
    out.textContent =
      text.length > 20_000 ? `${text.slice(0, 20_000)}\n… (${text.length} characters)` : text;
  } else if (n.output_key) out.textContent = `stored at ${n.output_key}`;
  else out.textContent = n.state === 'completed' ? '(no output)' : '';
}

/** Shows a DAG and follows its events until it ends. */
async function open(id) {
  following?.abort();
  selected = undefined;
  $('node').hidden = true;
  history.replaceState(null, '', `/ui/dags?dag=${id}`);
  current = await api(`/api/v1/dags/${id}`);
  $('dag').hidden = false;
  $('dag-title').textContent =
    `${current.plan} v${current.version} · ${current.ref_id ?? current.dag_id}`;
  say(current);
  draw(current);
  if (ENDED.has(current.state)) return;
  const stream = new AbortController();
  following = stream;
  events(
    `/api/v1/dags/${id}/events`,
    async (event, data) => {
      if (event !== 'state') return;
      const dag = JSON.parse(data);
      say({ ...current, ...dag });
      // The state event carries no nodes: the DAG is read again (with outputs) when it changed.
      current = await api(`/api/v1/dags/${id}`);
      draw(current);
      if (selected) showNode(selected);
      if (ENDED.has(dag.state)) {
        stream.abort();
        say(current);
        refresh();
      }
    },
    stream.signal,
  ).catch((err) => {
    if (!stream.signal.aborted) $('status').textContent = `lost the DAG's events: ${err.message}`;
  });
}

async function refresh() {
  const { dags } = await api('/api/v1/dags?limit=20');
  $('dags').replaceChildren(
    ...dags.map((d) => {
      const row = el(
        'tr',
        { 'data-dag': d.dag_id },
        el('td', {}, d.ref_id ?? d.dag_id.slice(0, 8)),
        el('td', {}, `${d.plan} v${d.version}`),
        el('td', {}, d.state),
        el('td', {}, `${d.nodes_done}/${d.nodes_total}`),
        el('td', { class: d.late === 'no' ? '' : `late-${d.late}` }, d.late === 'no' ? '' : d.late),
        el('td', {}, new Date(d.created_on).toLocaleString()),
      );
      row.addEventListener('click', () => open(d.dag_id));
      return row;
    }),
  );
}

$('legend').replaceChildren(...STATES.map((s) => el('span', { class: `state-${s}` }, s)));
refresh();
const first = new URLSearchParams(location.search).get('dag');
if (first) open(first);
