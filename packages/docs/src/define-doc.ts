import { randomUUID } from 'node:crypto';
import {
  type ObjectOptions,
  type Static,
  type TObject,
  type TProperties,
  type TSchema,
  type TString,
  Type,
} from '@sinclair/typebox';
import type { DocList } from './doc-list.js';
import { DOC_MARKER } from './fields.js';
import type { NdArray, TypedArray } from './ndarray.js';

/** A document type: a TypeBox object schema with an `id` field, named by `$id`. */
export type DocType<P extends TProperties = TProperties> = TObject<P & { id: TString }> & {
  $id: string;
  title: string;
  [DOC_MARKER]: true;
};

/** A document type seen only through its static type (for recursive types written by hand). */
export interface DocSchema<T extends object> extends TSchema {
  static: T;
  type: 'object';
  properties: TProperties;
  $id: string;
  title: string;
  [DOC_MARKER]: true;
}

/** The static type of a document type: `type InputDoc = DocOf<typeof InputDoc>`. */
export type DocOf<T extends TSchema> = Static<T>;

/** A schema whose static type is a document (what `DocList` and endpoints accept). */
export type AnyDocType = TSchema & { static: object };

type InitValue<V> = V extends NdArray
  ? NdArray | TypedArray | unknown[] | { dtype: string; shape: number[]; data: string }
  : V extends DocList<infer D>
    ? DocList<D> | DocInit<D>[]
    : V extends Uint8Array
      ? Uint8Array | string
      : V extends { id: string }
        ? DocInit<V>
        : V;

/**
 * What a document can be made from: every field may be left out (defaults and a fresh id fill
 * in; required fields are checked at run time), tensors may be TypedArrays or nested lists,
 * bytes may be base64.
 */
export type DocInit<T> = { [K in keyof T]?: InitValue<T[K]> | null };

/** A new document id: 32 random hex characters, as docarray makes them. */
export function newDocId(): string {
  return randomUUID().replaceAll('-', '');
}

/**
 * Declares a document type in one place: the runtime schema and, through `DocOf`, the static type.
 *
 * ```ts
 * const InputDoc = defineDoc('InputDoc', { text: Type.String({ default: '' }) });
 * type InputDoc = DocOf<typeof InputDoc>;
 * ```
 *
 * Field names cross the wire to Python peers unchanged: keep Python's spelling (snake_case).
 */
export function defineDoc<P extends TProperties>(
  name: string,
  properties: P,
  options: ObjectOptions = {},
): DocType<P> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new TypeError(`defineDoc: "${name}" is not a valid document type name`);
  }
  const schema = Type.Object(
    {
      id: Type.String({ docarrayType: 'id', description: 'The ID of the document' }),
      ...properties,
    },
    { ...options, $id: name, title: name },
  ) as DocType<P>;
  schema[DOC_MARKER] = true;
  return schema;
}
