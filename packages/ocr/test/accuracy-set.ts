// The OCR accuracy set: 24 letter pages of known text, rendered here with real fonts (sharp from
// SVG): single-column letters and reports, two-column articles and tables with ruled rows, at
// 150 and 200 dpi, each clean and degraded (a 1.5 degree skew, blur, noise, JPEG at quality 35).
// Deterministic: the same pages on every run. Used by the accuracy spec (a clean subset, with
// the targets) and by bench/ocr (all of it, beside tesseract).
import sharp from 'sharp';
import type { RgbImage } from '../src/image.js';

export type PageKind = 'single' | 'two-column' | 'table';

export interface TestPage {
  name: string;
  kind: PageKind;
  degraded: boolean;
  dpi: number;
  /** The page's text in reading order, a line per line (table rows: cells joined by spaces). */
  text: string;
  /** PNG (clean) or JPEG (degraded) bytes, as a scanner would hand them over. */
  file: Buffer;
  image: RgbImage;
}

const FIRST = ['Anna', 'Jonas', 'Maria', 'Peter', 'Sofia', 'Lukas', 'Emma', 'David', 'Clara'];
const LAST = ['Becker', 'Laurent', 'Novak', 'Jensen', 'Moreau', 'Fischer', 'Rossi', 'Weber'];
const CITY = ['Hamburg', 'Lyon', 'Vienna', 'Porto', 'Ghent', 'Turin', 'Krakow', 'Aarhus'];
const THING = [
  'steel brackets',
  'packing crates',
  'printer cartridges',
  'office chairs',
  'cable reels',
  'safety gloves',
  'paper rolls',
  'hex bolts',
];
const MONTH = ['January', 'March', 'April', 'June', 'August', 'October', 'November'];
const SENTENCES = [
  'Thank you for your order of {d} {m}, which we received on time.',
  'We shipped {n} {t} from our warehouse in {c} last week.',
  'The total amount due is {p} EUR, payable within 30 days.',
  'Please quote the reference {r} on every payment you make.',
  '{f} {l} from our accounts team will answer your questions.',
  'Our office in {c} is closed on public holidays in {m}.',
  'The contract runs until {d} {m} and renews for one year.',
  'Delivery of the remaining {n} {t} is planned for {m}.',
  'A credit note of {p} EUR was issued for the damaged goods.',
  'Quarterly revenue grew by {q} percent over the same period.',
  'The audit found no errors in the ledgers for {m}.',
  'Invoices sent after {d} {m} carry the new tax rate.',
  'The service desk can be reached on +49 511 555 {r4}.',
  'Signed copies were returned by {f} {l} on {d} {m}.',
  'Each pallet holds {n} units and weighs about {q} kg.',
  'The price list for {t} changes on the first of {m}.',
];

function rng(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % n;
  };
}

function sentence(r: (n: number) => number): string {
  const pick = <T>(a: readonly T[]) => a[r(a.length)]!;
  return pick(SENTENCES).replace(/\{(\w+)\}/g, (_, k: string) => {
    switch (k) {
      case 'd':
        return String(1 + r(28));
      case 'm':
        return pick(MONTH);
      case 'n':
        return String(10 + r(990));
      case 't':
        return pick(THING);
      case 'c':
        return pick(CITY);
      case 'p':
        return `${1 + r(40)},${String(r(1000)).padStart(3, '0')}.${String(r(100)).padStart(2, '0')}`;
      case 'r':
        return `${2026}-${String(r(10000)).padStart(4, '0')}`;
      case 'r4':
        return String(1000 + r(9000));
      case 'f':
        return pick(FIRST);
      case 'l':
        return pick(LAST);
      case 'q':
        return String(2 + r(30));
      default:
        return k;
    }
  });
}

/** Sentences flowed into lines of at most `chars` characters. */
function flow(r: (n: number) => number, lines: number, chars: number): string[] {
  const out: string[] = [];
  let line = '';
  while (out.length < lines) {
    for (const word of sentence(r).split(' ')) {
      if (line && line.length + 1 + word.length > chars) {
        out.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
  }
  return out.slice(0, lines);
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
const FONTS = ['DejaVu Sans', 'DejaVu Serif', 'Liberation Sans', 'Liberation Serif'];

interface Layout {
  svg: string;
  text: string;
}

function single(r: (n: number) => number, W: number, H: number, s: number, font: string): Layout {
  const title = `Report ${2026}-${String(r(1000)).padStart(3, '0')} for ${CITY[r(CITY.length)]}`;
  const body = flow(r, 26, 66);
  const els = [
    `<text x="${110 * s}" y="${130 * s}" font-family="${font}" font-size="${32 * s}" font-weight="bold">${xml(title)}</text>`,
    ...body.map(
      (l, i) =>
        `<text x="${110 * s}" y="${(200 + i * 48) * s}" font-family="${font}" font-size="${24 * s}">${xml(l)}</text>`,
    ),
  ];
  return { svg: page(W, H, els), text: [title, ...body].join('\n') };
}

function twoColumn(
  r: (n: number) => number,
  W: number,
  H: number,
  s: number,
  font: string,
): Layout {
  const title = `News from the ${CITY[r(CITY.length)]} office`;
  const left = flow(r, 24, 34);
  const right = flow(r, 24, 34);
  const line = (l: string, x: number, i: number) =>
    `<text x="${x * s}" y="${(210 + i * 50) * s}" font-family="${font}" font-size="${23 * s}">${xml(l)}</text>`;
  const els = [
    `<text x="${100 * s}" y="${130 * s}" font-family="${font}" font-size="${34 * s}" font-weight="bold">${xml(title)}</text>`,
    ...left.map((l, i) => line(l, 100, i)),
    ...right.map((l, i) => line(l, 680, i)),
  ];
  return { svg: page(W, H, els), text: [title, ...left, ...right].join('\n') };
}

function table(r: (n: number) => number, W: number, H: number, s: number, font: string): Layout {
  const title = `Order ${2026}-${String(r(10000)).padStart(4, '0')} from ${LAST[r(LAST.length)]}`;
  const intro = flow(r, 3, 66);
  const head = ['Item', 'Quantity', 'Unit price', 'Amount'];
  const rows: string[][] = [];
  let total = 0;
  for (let i = 0; i < 12; i++) {
    const qty = 1 + r(400);
    const cents = 50 + r(9000);
    total += qty * cents;
    rows.push([
      THING[r(THING.length)]!,
      String(qty),
      (cents / 100).toFixed(2),
      ((qty * cents) / 100).toFixed(2),
    ]);
  }
  const xs = [110, 560, 780, 1010];
  const els = [
    `<text x="${110 * s}" y="${130 * s}" font-family="${font}" font-size="${32 * s}" font-weight="bold">${xml(title)}</text>`,
    ...intro.map(
      (l, i) =>
        `<text x="${110 * s}" y="${(200 + i * 46) * s}" font-family="${font}" font-size="${24 * s}">${xml(l)}</text>`,
    ),
  ];
  const top = 380;
  [head, ...rows].forEach((cells, i) => {
    const y = top + i * 58;
    for (const [k, c] of cells.entries())
      els.push(
        `<text x="${xs[k]! * s}" y="${y * s}" font-family="${font}" font-size="${24 * s}"${i === 0 ? ' font-weight="bold"' : ''}>${xml(c)}</text>`,
      );
    els.push(
      `<line x1="${100 * s}" x2="${1180 * s}" y1="${(y + 20) * s}" y2="${(y + 20) * s}" stroke="black" stroke-width="${2 * s}"/>`,
    );
  });
  const totalLine = `Total due: ${(total / 100).toFixed(2)} EUR`;
  els.push(
    `<text x="${110 * s}" y="${(top + 13 * 58 + 40) * s}" font-family="${font}" font-size="${24 * s}">${xml(totalLine)}</text>`,
  );
  const text = [title, ...intro, ...[head, ...rows].map((c) => c.join(' ')), totalLine];
  return { svg: page(W, H, els), text: text.join('\n') };
}

function page(W: number, H: number, els: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="100%" height="100%" fill="white"/>${els.join('')}</svg>`;
}

async function decode(file: Buffer): Promise<RgbImage> {
  const { data, info } = await sharp(file)
    .toColourspace('srgb')
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

/** A scan's defects: skew, blur, noise, and JPEG compression. */
async function degrade(png: Buffer, seed: number): Promise<Buffer> {
  const r = rng(seed);
  const { data, info } = await sharp(png)
    .rotate(1.5, { background: '#ffffff' })
    .blur(1.0)
    .greyscale()
    .raw()
    .toBuffer({ resolveWithObject: true });
  for (let i = 0; i < data.length; i++) data[i] = Math.max(0, Math.min(255, data[i]! + r(61) - 30));
  return sharp(data, { raw: { width: info.width, height: info.height, channels: 1 } })
    .jpeg({ quality: 35 })
    .toBuffer();
}

/**
 * The set: 12 layouts (6 single-column, 3 two-column, 3 tables; four fonts; 150 dpi, every third
 * at 200 dpi), each clean and degraded. `only` picks pages by name.
 */
export async function accuracySet(only?: (name: string) => boolean): Promise<TestPage[]> {
  const kinds: PageKind[] = [
    'single',
    'two-column',
    'single',
    'table',
    'single',
    'two-column',
    'single',
    'table',
    'single',
    'two-column',
    'single',
    'table',
  ];
  const out: TestPage[] = [];
  for (const [i, kind] of kinds.entries()) {
    const dpi = i % 3 === 2 ? 200 : 150;
    const s = dpi / 150;
    const W = Math.round(1275 * s);
    const H = Math.round(1650 * s);
    const font = FONTS[i % FONTS.length]!;
    const r = rng(1000 + i);
    const { svg, text } =
      kind === 'single'
        ? single(r, W, H, s, font)
        : kind === 'two-column'
          ? twoColumn(r, W, H, s, font)
          : table(r, W, H, s, font);
    const base = `${String(i).padStart(2, '0')}-${kind}-${font.replace(/ /g, '')}-${dpi}`;
    for (const degraded of [false, true]) {
      const name = `${base}${degraded ? '-degraded' : ''}`;
      if (only && !only(name)) continue;
      const png = await sharp(Buffer.from(svg)).flatten({ background: '#fff' }).png().toBuffer();
      const file = degraded ? await degrade(png, 77 + i) : png;
      out.push({ name, kind, degraded, dpi, text, file, image: await decode(file) });
    }
  }
  return out;
}
