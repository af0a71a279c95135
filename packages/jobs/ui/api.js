// What the pages under /ui share (served at /ui/api.js, and by @marie/pipelines at
// /ui/dags/api.js): elements, the gateway's API with its key, Server-Sent Events over fetch.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

// A gateway with API keys answers 401: the page asks for a key once, keeps it for the tab
// (sessionStorage), and sends it as a Bearer token on every call, the event stream and the page
// images included (fetched, since an <img> or EventSource cannot send a header).
const KEY = 'marie-api-key';

function authorized(init = {}) {
  const key = sessionStorage.getItem(KEY);
  return key ? { ...init, headers: { ...init.headers, authorization: `Bearer ${key}` } } : init;
}

export async function call(path, init) {
  let res = await fetch(path, authorized(init));
  if (res.status === 401) {
    const key = window.prompt('This gateway wants an API key:');
    if (key) {
      sessionStorage.setItem(KEY, key.trim());
      res = await fetch(path, authorized(init));
    }
  }
  return res;
}

export async function api(path, init) {
  const res = await call(path, init);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.detail ?? `${res.status} ${res.statusText}`);
  return body;
}

/** Server-Sent Events over fetch: `onEvent(name, data)` for each, until `signal` aborts. */
export async function events(path, onEvent, signal) {
  const res = await call(path, { signal });
  if (!res.ok || !res.body) throw new Error(`${res.status} ${res.statusText}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end).split('\n');
      buffer = buffer.slice(end + 2);
      const name = block.find((l) => l.startsWith('event: '))?.slice(7) ?? 'message';
      const data = block
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      if (data) onEvent(name, data);
      end = buffer.indexOf('\n\n');
    }
  }
}
