/**
 * Character error rate: the Levenshtein distance between the texts over the reference's length.
 * Whitespace is layout, not recognition: every run of it (a line break between two table cells
 * or a space) counts as one separator. Reading order counts.
 */
export function characterErrorRate(reference: string, hypothesis: string): number {
  const squeeze = (s: string) => s.replace(/\s+/g, ' ').trim();
  const a = [...squeeze(reference)];
  const b = [...squeeze(hypothesis)];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(
        prev[j]! + 1,
        cur[j - 1]! + 1,
        prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    prev = cur;
  }
  return prev[b.length]! / Math.max(a.length, 1);
}

/** Order-free word F1: words compared as multisets, so reading order does not count. */
export function wordF1(reference: string, hypothesis: string): number {
  const count = (s: string) =>
    s
      .split(/\s+/)
      .filter(Boolean)
      .reduce((m, w) => m.set(w, (m.get(w) ?? 0) + 1), new Map<string, number>());
  const r = count(reference);
  const h = count(hypothesis);
  let tp = 0;
  for (const [w, n] of h) tp += Math.min(n, r.get(w) ?? 0);
  if (tp === 0) return 0;
  const precision = tp / [...h.values()].reduce((a, n) => a + n, 0);
  const recall = tp / [...r.values()].reduce((a, n) => a + n, 0);
  return (2 * precision * recall) / (precision + recall);
}
