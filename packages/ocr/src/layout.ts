/** A box in page pixels: x, y, width, height. */
export type Box = [number, number, number, number];

/**
 * Reading order of line boxes: top to bottom, columns kept apart. Lines that span a vertical gutter
 * (titles, full-width paragraphs) cut the page into bands; within a band, each column is read top
 * to bottom, columns left to right. Returns the indexes in reading order.
 */
export function readingOrder(
  boxes: readonly Box[],
  pageWidth: number,
  wordCounts?: readonly number[],
): number[] {
  const idx = boxes.map((_, i) => i).sort((a, b) => boxes[a]![1] - boxes[b]![1]);
  const gutters = findGutters(boxes, pageWidth);
  const spans = (b: Box) => gutters.some((g) => b[0] < g[0] && b[0] + b[2] > g[1]);
  const out: number[] = [];
  let band: number[] = [];
  const flush = () => {
    if (!band.length) return;
    const columnOf = (b: Box) => {
      const cx = b[0] + b[2] / 2;
      return gutters.filter((g) => cx > g[1]).length;
    };
    const cols = new Map<number, number[]>();
    for (const i of band) {
      const c = columnOf(boxes[i]!);
      cols.set(c, [...(cols.get(c) ?? []), i]);
    }
    if (cols.size > 1 && isTable(band, boxes, columnOf, wordCounts))
      out.push(...sortLines(band, boxes));
    else
      for (const c of [...cols.keys()].sort((a, b) => a - b))
        out.push(...sortLines(cols.get(c)!, boxes));
    band = [];
  };
  for (const i of idx) {
    if (gutters.length && spans(boxes[i]!)) {
      flush();
      out.push(i);
    } else band.push(i);
  }
  flush();
  return out;
}

/**
 * A band whose columns are a table's: most of its boxes sit on a row shared with a box of another
 * column, and they are short (a median of 3 words or fewer; a column of prose has more). A table
 * is read row by row; prose columns one after the other.
 */
function isTable(
  band: readonly number[],
  boxes: readonly Box[],
  columnOf: (b: Box) => number,
  wordCounts: readonly number[] | undefined,
): boolean {
  if (!wordCounts || band.length < 6) return false;
  const counts = band.map((i) => wordCounts[i] ?? 0).sort((a, b) => a - b);
  if (counts[Math.floor(counts.length / 2)]! > 3) return false;
  const overlaps = (a: Box, b: Box) =>
    Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]) > 0.5 * Math.min(a[3], b[3]);
  const paired = band.filter((i) => {
    const b = boxes[i]!;
    const c = columnOf(b);
    return band.some((j) => j !== i && columnOf(boxes[j]!) !== c && overlaps(b, boxes[j]!));
  }).length;
  return paired >= 0.7 * band.length;
}

/** Lines top to bottom; boxes on the same visual line (vertical overlap > half) left to right. */
function sortLines(ids: number[], boxes: readonly Box[]): number[] {
  const sorted = [...ids].sort((a, b) => boxes[a]![1] - boxes[b]![1]);
  const rows: number[][] = [];
  for (const i of sorted) {
    const b = boxes[i]!;
    const row = rows.at(-1);
    const last = row ? boxes[row[0]!]! : undefined;
    const overlap = last ? Math.min(last[1] + last[3], b[1] + b[3]) - Math.max(last[1], b[1]) : 0;
    if (row && last && overlap > 0.5 * Math.min(last[3], b[3])) row.push(i);
    else rows.push([i]);
  }
  return rows.flatMap((r) => r.sort((a, c) => boxes[a]![0] - boxes[c]![0]));
}

/**
 * Vertical gutters: x ranges that no box covers, at least 2% of the page wide, with text on both
 * sides over a good part of the page (so that a ragged right edge is not a gutter).
 */
function findGutters(boxes: readonly Box[], pageWidth: number): [number, number][] {
  if (boxes.length < 4) return [];
  const W = Math.ceil(pageWidth);
  const cover = new Int32Array(W + 1);
  // Boxes wider than 60% of the page (titles) do not define columns.
  const narrow = boxes.filter((b) => b[2] < 0.6 * pageWidth);
  if (narrow.length < 4) return [];
  for (const b of narrow) {
    const x0 = Math.max(0, Math.floor(b[0]));
    const x1 = Math.min(W, Math.ceil(b[0] + b[2]));
    for (let x = x0; x < x1; x++) cover[x]!++;
  }
  const minX = Math.min(...narrow.map((b) => b[0]));
  const maxX = Math.max(...narrow.map((b) => b[0] + b[2]));
  const gutters: [number, number][] = [];
  let start = -1;
  // A title or a heading may cross a gutter: a few boxes over it still leave it a gutter (they
  // become bands of their own, see `spans`).
  const allowed = Math.floor(narrow.length * 0.05);
  for (let x = Math.ceil(minX); x <= Math.floor(maxX); x++) {
    if (cover[x]! <= allowed && start < 0) start = x;
    if ((cover[x]! > allowed || x === Math.floor(maxX)) && start >= 0) {
      if (x - start >= 0.02 * pageWidth) {
        const left = narrow.filter((b) => b[0] + b[2] <= start).length;
        const right = narrow.filter((b) => b[0] >= x).length;
        if (left >= 2 && right >= 2) gutters.push([start, x]);
      }
      start = -1;
    }
  }
  return gutters;
}
