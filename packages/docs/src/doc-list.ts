import { type TSchema, TypeRegistry } from '@sinclair/typebox';
import { coerce, docListHooks } from './coerce.js';
import type { AnyDocType, DocInit } from './define-doc.js';
import { DOC_LIST_KIND, type TDocList } from './fields.js';
import { describe } from './ndarray.js';
import { type JsonOptions, toJsonValue } from './to-json.js';
import { DocValidationError } from './validation-error.js';

export interface DocListOptions {
  /** Path prefix for validation errors (`docs` unless given, e.g. `docs[0].chunks`). */
  path?: string;
  /**
   * Skip validation: the items are trusted to be documents of this type already (produced by
   * this library). For hot paths that re-wrap validated documents.
   */
  trusted?: boolean;
}

/**
 * An ordered list of documents that knows their schema; docarray's `DocList[T]`. It is an Array,
 * so indexing, iteration, `length` and the array methods work as usual (`map`, `filter`, `slice`
 * return plain arrays); `push` validates what it adds.
 */
export class DocList<T extends object = Record<string, unknown>> extends Array<T> {
  // Array methods build plain arrays: a mapped list rarely holds documents of the same type.
  static override get [Symbol.species](): ArrayConstructor {
    return Array;
  }

  readonly #docType: TSchema;
  readonly #pathPrefix: string;
  /** A DocList.lazy list's reading, until it is done (or while it fails). */
  #lazy: LazyState | undefined = undefined;

  /** The document type of every item. */
  get docType(): TSchema {
    return this.#docType;
  }

  private get pathPrefix(): string {
    return this.#pathPrefix;
  }

  constructor(
    docType: TSchema & { static: T },
    items: Iterable<NoInfer<DocInit<T> | T>> = [],
    options: DocListOptions = {},
  ) {
    super();
    this.#docType = docType;
    this.#pathPrefix = options.path ?? 'docs';
    if (options.trusted) {
      for (const item of items) super.push(item as T);
      return;
    }
    if (!isIterable(items)) {
      throw new DocValidationError(
        this.pathPrefix,
        `expected a list of documents, got ${describe(items)}`,
      );
    }
    for (const item of items) super.push(this.validate(item, this.length));
  }

  /** Parses JSON text (or an already parsed array) into a DocList of `docType`. */
  static fromJSON<D extends AnyDocType>(
    docType: D,
    json: string | readonly unknown[],
    options: Omit<DocListOptions, 'trusted'> = {},
  ): DocList<D['static']> {
    const data = typeof json === 'string' ? (JSON.parse(json) as unknown) : json;
    if (!Array.isArray(data)) {
      throw new DocValidationError(
        options.path ?? 'docs',
        `expected a JSON array of documents, got ${describe(data)}`,
      );
    }
    return new DocList(docType, data as DocInit<D['static']>[], options);
  }

  /**
   * A DocList whose documents are read, and validated, the first time anything but its type is
   * asked of it: an index, iteration, any method (and `length`, unless `count` tells it). `read` gives the documents as plain
   * values (a transport's decoder over the bytes it received); its DocValidationError, or the
   * validation's, is thrown at that first use, and again at every use after it. Until then
   * `DocList.unreadSource(list)` hands back `source` (those bytes), so that a list nobody looked
   * at is answered with what it came as (Jina's lazy requests). It is a Proxy of a DocList:
   * `instanceof DocList`, `Array.isArray` and every array and DocList method behave as usual.
   */
  static lazy<D extends AnyDocType>(
    docType: D,
    read: () => Iterable<unknown>,
    options: { source: unknown; path?: string; count?: () => number },
  ): DocList<D['static']> {
    const target = new DocList(docType, [], options.path ? { path: options.path } : {});
    target.#lazy = { read, source: options.source, count: options.count };
    return new Proxy(target, DocList.#lazyTraps) as DocList<D['static']>;
  }

  /** What a `DocList.lazy` list was made from, while nothing has read it; otherwise undefined. */
  static unreadSource(list: object): unknown {
    return list instanceof DocList
      ? (list as unknown as Record<symbol, unknown>)[UNREAD]
      : undefined;
  }

  /** Reads a lazy list's documents into it, once; a failure is thrown again at every use. */
  static #fill(target: DocList<any>): void {
    const state = target.#lazy;
    if (state === undefined) return;
    if (state.failure !== undefined) throw state.failure;
    target.#lazy = undefined;
    try {
      for (const item of state.read()) arrayPush.call(target, target.validate(item, target.length));
    } catch (err) {
      target.length = 0;
      state.failure = err;
      target.#lazy = state;
      throw err;
    }
  }

  /**
   * The traps of every lazy list (one object for all: a list costs its state alone). Properties
   * are read on the DocList itself (getters see it, not the Proxy: its private fields are its).
   */
  static readonly #lazyTraps: ProxyHandler<DocList<any>> = {
    get(t, key) {
      const state = t.#lazy;
      if (state !== undefined) {
        if (key === UNREAD) return state.failure === undefined ? state.source : undefined;
        // How many there are is known without reading them (a metrics counter asks).
        if (key === 'length' && state.count && state.failure === undefined) return state.count();
        // Looking at what a list is, or awaiting it, is not reading its documents.
        if (key === 'then') return undefined;
        if (!QUIET_KEYS.has(key)) DocList.#fill(t);
      }
      return Reflect.get(t, key);
    },
    set(t, key, value) {
      DocList.#fill(t);
      return Reflect.set(t, key, value);
    },
    has(t, key) {
      DocList.#fill(t);
      return Reflect.has(t, key);
    },
    deleteProperty(t, key) {
      DocList.#fill(t);
      return Reflect.deleteProperty(t, key);
    },
    ownKeys(t) {
      DocList.#fill(t);
      return Reflect.ownKeys(t);
    },
    getOwnPropertyDescriptor(t, key) {
      DocList.#fill(t);
      return Reflect.getOwnPropertyDescriptor(t, key);
    },
    defineProperty(t, key, desc) {
      DocList.#fill(t);
      return Reflect.defineProperty(t, key, desc);
    },
  };

  /** Validates and appends documents (defaults applied, ids generated). */
  override push(...items: (DocInit<T> | T)[]): number {
    for (const item of items) super.push(this.validate(item, this.length));
    return this.length;
  }

  /** One field of every document, in order: `docs.get('text')`. */
  get<K extends keyof T>(field: K): T[K][] {
    const out = new Array<T[K]>(this.length);
    for (let i = 0; i < this.length; i++) out[i] = (this[i] as T)[field];
    return out;
  }

  /** Sets one field of every document from a list of the same length, validating each document. */
  set<K extends keyof T>(field: K, values: readonly unknown[]): void {
    if (values.length !== this.length) {
      throw new DocValidationError(
        `${this.pathPrefix}.${String(field)}`,
        `expected ${this.length} values, got ${values.length}`,
      );
    }
    for (let i = 0; i < this.length; i++) {
      this[i] = this.validate({ ...(this[i] as object), [field]: values[i] }, i);
    }
  }

  /** JSON-ready documents: tensors as nested lists (or base64 with `{ tensors: 'base64' }`), bytes as base64. */
  toJSON(options?: JsonOptions | string): unknown[] {
    const opts = typeof options === 'object' ? options : undefined;
    const toJson = toJsonValue(this.docType, opts);
    return Array.from(this, (doc) => toJson(doc));
  }

  private validate(item: unknown, index: number): T {
    return coerce(this.docType, item, `${this.pathPrefix}[${index}]`) as T;
  }
}

const arrayPush = Array.prototype.push;

/** A DocList.lazy list's reading: what reads it, what it came from, and how reading failed. */
interface LazyState {
  read: () => Iterable<unknown>;
  source: unknown;
  count: (() => number) | undefined;
  failure?: unknown;
}

/** The key under which a lazy list not read yet answers its source (DocList.unreadSource). */
const UNREAD = Symbol('DocList.unreadSource');

/** What may be asked of a lazy list without reading it: its type, its class, its tag. */
const QUIET_KEYS = new Set<PropertyKey>([
  'docType',
  'pathPrefix',
  'constructor',
  Symbol.toStringTag,
]);

function isIterable(value: unknown): value is Iterable<unknown> {
  return value != null && typeof (value as Iterable<unknown>)[Symbol.iterator] === 'function';
}

TypeRegistry.Set<TDocList>(
  DOC_LIST_KIND,
  (schema, value) => value instanceof DocList && value.docType === schema.docType(),
);

docListHooks.prepare = (docType, value, path) => {
  if (value instanceof DocList && value.docType === docType) return value;
  if (Array.isArray(value) || value instanceof DocList) {
    return new DocList(docType as TSchema & { static: object }, value, { path });
  }
  throw new DocValidationError(path, `expected a list of documents, got ${describe(value)}`);
};
