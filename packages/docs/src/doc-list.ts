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

  /** The document type of every item. */
  declare readonly docType: TSchema;
  declare private readonly pathPrefix: string;

  constructor(
    docType: TSchema & { static: T },
    items: Iterable<NoInfer<DocInit<T> | T>> = [],
    options: DocListOptions = {},
  ) {
    super();
    Object.defineProperty(this, 'docType', { value: docType, enumerable: false });
    Object.defineProperty(this, 'pathPrefix', { value: options.path ?? 'docs', enumerable: false });
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
