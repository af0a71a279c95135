// A seeded generator of bad input for the front-door fuzz tests: the same seed gives the same
// inputs, so a failure reproduces (the test prints the seed and the input's index). Inputs are
// valid requests mutated the way broken or hostile clients send them: wrong types, missing and
// extra keys, prototype keys, huge numbers and strings, deep nesting, truncated or spliced text
// and bytes, random bytes.

import { readFileSync } from 'node:fs';

/** mulberry32: small, fast, and good enough to spread inputs. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const ODD_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\ud800',
  '💥'.repeat(50),
  '../../../../etc/passwd',
  'file:///etc/shadow',
  's3://bucket/../../x',
  '$' + '{{ ENV.HOME }}',
  '(a+)+$',
  '[',
  '*',
  '/',
  '//',
  '/default',
  '/upper',
  '/nowhere',
  '_jina_dry_run_',
  'null',
  'NaN',
  '-1',
  '1e309',
  '<script>alert(1)</script>',
  "'; DROP TABLE marie_job; --",
  '__proto__',
  'constructor',
];
const ODD_NUMBERS = [
  0,
  -0,
  -1,
  1.5,
  2 ** 31,
  -(2 ** 31) - 1,
  2 ** 53 + 1,
  1e308,
  -1e308,
  Number.MIN_VALUE,
  Number.MAX_SAFE_INTEGER,
];
const ODD_KEYS = ['__proto__', 'constructor', 'prototype', '', 'id', 'tensor', 'embedding', 'text'];

export class Fuzzer {
  readonly random: () => number;

  constructor(readonly seed: number) {
    this.random = rng(seed);
  }

  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  chance(p: number): boolean {
    return this.random() < p;
  }

  string(): string {
    switch (this.int(4)) {
      case 0:
        return this.pick(ODD_STRINGS);
      case 1:
        return 'x'.repeat(this.pick([1, 100, 10_000, 200_000]));
      case 2:
        return String.fromCharCode(...Array.from({ length: this.int(40) }, () => this.int(0xffff)));
      default:
        return this.random()
          .toString(36)
          .slice(2, 2 + this.int(20));
    }
  }

  /** A random JSON value, nested up to `depth`. */
  value(depth = 3): unknown {
    switch (this.int(depth > 0 ? 8 : 5)) {
      case 0:
        return null;
      case 1:
        return this.chance(0.5);
      case 2:
        return this.pick(ODD_NUMBERS);
      case 3:
        return this.random() * 1e6 - 5e5;
      case 4:
        return this.string();
      case 5:
        return Array.from({ length: this.int(6) }, () => this.value(depth - 1));
      case 6: {
        const out: Record<string, unknown> = {};
        for (let i = this.int(5); i > 0; i--)
          out[this.chance(0.3) ? this.pick(ODD_KEYS) : this.string().slice(0, 20)] = this.value(
            depth - 1,
          );
        return out;
      }
      default:
        return this.nested(this.pick([50, 500, 1000]));
    }
  }

  /** Arrays or objects nested `depth` deep. */
  nested(depth: number): unknown {
    let v: unknown = 1;
    const asArray = this.chance(0.5);
    for (let i = 0; i < depth; i++) v = asArray ? [v] : { a: v };
    return v;
  }

  /** A copy of `seed` with one to three of its nodes replaced, removed or added to. */
  mutateJson(seed: unknown): unknown {
    const copy = structuredClone(seed);
    const root = { v: copy };
    for (let n = 1 + this.int(3); n > 0; n--) this.#mutateAt(root, 'v');
    return root.v;
  }

  #mutateAt(parent: Record<string, unknown> | unknown[], key: string | number, depth = 0): void {
    const node = (parent as Record<string | number, unknown>)[key];
    const children: (string | number)[] =
      node !== null && typeof node === 'object'
        ? Array.isArray(node)
          ? node.map((_, i) => i)
          : Object.keys(node)
        : [];
    // Go deeper most of the time while there is somewhere to go.
    if (children.length && depth < 40 && this.chance(0.6)) {
      this.#mutateAt(node as Record<string, unknown>, this.pick(children), depth + 1);
      return;
    }
    const target = parent as Record<string | number, unknown>;
    switch (this.int(6)) {
      case 0:
        target[key] = this.value(2);
        break;
      case 1:
        if (Array.isArray(parent)) parent.splice(Number(key), 1);
        else delete target[key];
        break;
      case 2:
        if (node && typeof node === 'object' && !Array.isArray(node))
          Object.defineProperty(node, this.pick(ODD_KEYS), {
            value: this.value(2),
            enumerable: true,
            configurable: true,
            writable: true,
          });
        else target[key] = [node];
        break;
      case 3:
        target[key] = Array.isArray(node) ? node[0] : { value: node };
        break;
      case 4:
        target[key] = this.pick(ODD_STRINGS);
        break;
      default:
        target[key] = this.pick(ODD_NUMBERS);
    }
  }

  /** JSON text with its characters damaged: truncated, spliced, a quote or bracket off. */
  mutateText(text: string): string {
    switch (this.int(5)) {
      case 0:
        return text.slice(0, this.int(text.length));
      case 1: {
        const at = this.int(text.length);
        return text.slice(0, at) + this.string().slice(0, 8) + text.slice(at);
      }
      case 2: {
        const at = this.int(text.length);
        return `${text.slice(0, at)}${this.pick(['"', '{', '}', '[', ']', ',', ':', '\\'])}${text.slice(at + 1)}`;
      }
      case 3:
        return text + text.slice(this.int(text.length));
      default:
        return this.pick([
          '',
          'null',
          '[]',
          '"x"',
          '{}{}',
          'NaN',
          '{"data":',
          '\u0000',
          // Nesting deeper than any recursive reader's stack.
          `{"data":[{"tags":${'['.repeat(200_000)}${']'.repeat(200_000)}}]}`,
          `{"data":[${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}]}`,
        ]);
    }
  }

  /** Bytes damaged: flipped, truncated, spliced, duplicated, or replaced by random ones. */
  mutateBytes(bytes: Uint8Array): Uint8Array {
    const b = Buffer.from(bytes);
    switch (this.int(5)) {
      case 0:
        for (let k = 1 + this.int(8); k > 0; k--) b[this.int(b.length)] = this.int(256);
        return b;
      case 1:
        return b.subarray(0, this.int(b.length));
      case 2: {
        const at = this.int(b.length);
        return Buffer.concat([
          b.subarray(0, at),
          Buffer.from(Array.from({ length: 1 + this.int(16) }, () => this.int(256))),
          b.subarray(at),
        ]);
      }
      case 3:
        return Buffer.concat([b, b.subarray(this.int(b.length))]);
      default:
        return Buffer.from(Array.from({ length: this.int(300) }, () => this.int(256)));
    }
  }
}

/** The resident set of a process, in MB (Linux). */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}
