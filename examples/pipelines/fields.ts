// The field step of the example pipeline (examples/pipelines/document.yml): dates, amounts,
// e-mail addresses and invoice numbers found in the OCR words, each with its page and box; and
// the store step, which keeps what passed the guardrail in the executor's object store.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Executor, type RequestContext, requests } from '@marie/core';
import { isPlainObject } from '@marie/docs';
import { withStorage } from '@marie/storage';

export type FieldKind = 'date' | 'amount' | 'email' | 'invoice_number';

export interface Field {
  kind: FieldKind;
  value: string;
  /** The page (0-based) and the box of the words it was read from: [x, y, w, h]. */
  page: number;
  box: [number, number, number, number];
  confidence: number;
}

interface Word {
  text: string;
  box: number[];
  confidence?: number;
}
interface PageJson {
  meta: { page: number };
  lines: { words?: Word[]; text?: string; wordids?: number[] }[];
  words: (Word & { id?: number; line?: number })[];
}

const MONTHS =
  'jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?';
// OCR often drops the spaces between words: every pattern lets them be missing.
const PATTERNS: [FieldKind, RegExp][] = [
  ['email', /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g],
  [
    'date',
    new RegExp(
      `\\b(?:\\d{4}-\\d{2}-\\d{2}|\\d{1,2}[./]\\d{1,2}[./]\\d{2,4}|\\d{1,2}\\s?(?:${MONTHS})\\.?\\s?\\d{4}|(?:${MONTHS})\\.?\\s?\\d{1,2},?\\s?\\d{4})\\b`,
      'gi',
    ),
  ],
  [
    'amount',
    /(?:[$€£]\s?\d{1,3}(?:[,.]\d{3})*(?:[.,]\d{2})?|\b\d{1,3}(?:[,.]\d{3})*[.,]\d{2}\s?(?:EUR|USD|GBP|CHF)\b)/g,
  ],
  ['invoice_number', /\binvoice\s?(?:no\.?|number|#|nr\.?)?\s?:?\s?([A-Z0-9]*\d[A-Z0-9-]{2,})/gi],
];

/** Every Marie page JSON (`{meta: {page}, words, lines}`) under `value`, wherever it sits. */
export function pagesIn(value: unknown, out: PageJson[] = []): PageJson[] {
  if (Array.isArray(value)) for (const v of value) pagesIn(v, out);
  else if (isPlainObject(value)) {
    if (isPlainObject(value.meta) && Array.isArray(value.words) && Array.isArray(value.lines))
      out.push(value as unknown as PageJson);
    else for (const v of Object.values(value)) pagesIn(v, out);
  }
  return out;
}

/** The words of each line of a page, in reading order (Marie's JSON: lines name their word ids). */
function linesOf(page: PageJson): Word[][] {
  const byId = new Map(page.words.map((w, i) => [w.id ?? i, w]));
  return page.lines.map(
    (l) => l.words ?? (l.wordids ?? []).map((id) => byId.get(id)).filter((w): w is Word => !!w),
  );
}

/** The fields of OCR'd pages: each match in a line's text, boxed by the words it spans. */
export function extractFields(pages: PageJson[]): Field[] {
  const fields: Field[] = [];
  for (const page of pages) {
    for (const words of linesOf(page)) {
      if (!words.length) continue;
      // The line's text, and where each word starts in it.
      const starts: number[] = [];
      let text = '';
      for (const w of words) {
        if (text) text += ' ';
        starts.push(text.length);
        text += w.text;
      }
      for (const [kind, re] of PATTERNS) {
        for (const m of text.matchAll(re)) {
          const from = m.index!;
          const to = from + m[0].length;
          const spanned = words.filter((_, i) => {
            const s = starts[i]!;
            return s < to && s + words[i]!.text.length > from;
          });
          const x = Math.min(...spanned.map((w) => w.box[0]!));
          const y = Math.min(...spanned.map((w) => w.box[1]!));
          const r = Math.max(...spanned.map((w) => w.box[0]! + w.box[2]!));
          const b = Math.max(...spanned.map((w) => w.box[1]! + w.box[3]!));
          const conf = spanned.map((w) => w.confidence ?? 1);
          fields.push({
            kind,
            value: (kind === 'invoice_number' ? m[1]! : m[0]).trim(),
            page: page.meta.page,
            box: [x, y, r - x, b - y],
            confidence: Math.round((conf.reduce((a, c) => a + c, 0) / conf.length) * 1000) / 1000,
          });
        }
      }
    }
  }
  return fields;
}

export class FieldExtractor extends withStorage(Executor) {
  /** `parameters.pages`: what the OCR step answered (its pages' Marie JSON, wherever it sits). */
  @requests({ on: '/document/fields' })
  fields(_docs: unknown, ctx: RequestContext) {
    const pages = pagesIn(ctx.parameters.pages);
    const fields = extractFields(pages);
    return { pages: pages.length, fields };
  }

  /** Keeps the checked fields as JSON in the object store: `<workspace>/fields/<ref>.json`. */
  @requests({ on: '/document/store' })
  async keep(_docs: unknown, ctx: RequestContext) {
    const ref = String(ctx.parameters.ref_id ?? ctx.parameters.dag_id);
    const key = pathToFileURL(
      join(this.workspace, 'fields', `${ref.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`),
    ).href;
    const body = JSON.stringify({
      ref_id: ref,
      dag_id: ctx.parameters.dag_id,
      fields: ctx.parameters.fields,
    });
    await this.storage.objects.write(key, Buffer.from(body));
    return { stored: key, bytes: body.length };
  }
}
