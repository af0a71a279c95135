import { type AnyDocType, LegacyDocument, type TSchema, toJsonSchema } from '@marie/docs';
import { type Executor, OVERRIDES } from './executor.js';
import {
  type BatchingOptions,
  DEFAULT_ENDPOINT,
  DRY_RUN_ENDPOINT,
  endpointTableOf,
  type MethodBinding,
  type MethodKind,
  methodKind,
  validateBatching,
} from './requests.js';

/** An endpoint of one executor instance, everything the handler needs to call it. */
export interface Endpoint {
  name: string;
  method: string | symbol;
  kind: MethodKind;
  requestSchema: AnyDocType;
  responseSchema: AnyDocType;
  parametersSchema?: TSchema;
  single: boolean;
  allowConcurrent: boolean;
  isGenerator: boolean;
  batching?: BatchingOptions;
}

/** endpoint_discovery's `schemas` entry (spec/wire.md): JSON Schemas a Python peer rebuilds models from. */
export interface EndpointSchema {
  input: { name: string; model: Record<string, unknown> };
  output: { name: string; model: Record<string, unknown> };
  is_generator: boolean;
  is_singleton_doc: boolean;
  parameters: { name: string | null; model: Record<string, unknown> | null };
}

export interface EndpointListing {
  endpoints: string[];
  writeEndpoints: string[];
  schemas: Record<string, EndpointSchema>;
}

/**
 * Resolves an instance's endpoints: the class's decorator table (inherited, subclass wins), then the
 * YAML `requests:` remaps and `dynamic_batching:`. Throws naming the endpoint or method at fault.
 */
export function resolveEndpoints(executor: Executor): Map<string, Endpoint> {
  const cls = executor.constructor as new (...args: never[]) => Executor;
  const table = endpointTableOf(cls);
  const bindings = new Map<string, MethodBinding>(table.endpoints);
  const className = cls.name;

  for (const [endpoint, method] of Object.entries(executor[OVERRIDES].requests ?? {})) {
    if (typeof method !== 'string' || typeof (executor as any)[method] !== 'function') {
      throw new TypeError(
        `requests: "${endpoint}" maps to ${JSON.stringify(method)}, which is not a method of ${className}`,
      );
    }
    // Keep the schemas the method was decorated with, if it was bound anywhere.
    const known = [...table.endpoints.values()].find((b) => b.method === method);
    bindings.set(endpoint, {
      method,
      kind: methodKind((executor as any)[method]),
      options: known?.options ?? {},
    });
  }

  const out = new Map<string, Endpoint>();
  for (const [name, binding] of bindings) {
    const fn = (executor as any)[binding.method];
    if (typeof fn !== 'function') {
      throw new TypeError(
        `${className}: endpoint ${name} is bound to a missing method ${String(binding.method)}`,
      );
    }
    const kind = methodKind(fn);
    const o = binding.options;
    const requestSchema = o.requestSchema ?? (LegacyDocument as AnyDocType);
    const endpoint: Endpoint = {
      name,
      method: binding.method,
      kind,
      requestSchema,
      responseSchema: o.responseSchema ?? requestSchema,
      single: o.single === true,
      allowConcurrent: o.allowConcurrent === true || executor.runtimeArgs.allowConcurrent === true,
      isGenerator: kind === 'generator' || kind === 'asyncGenerator',
    };
    if (o.parametersSchema) endpoint.parametersSchema = o.parametersSchema;
    const batching = table.batching.get(binding.method);
    if (batching) endpoint.batching = batching;
    out.set(name, endpoint);
  }

  for (const [name, batching] of Object.entries(executor[OVERRIDES].dynamicBatching ?? {})) {
    const endpoint = out.get(name);
    if (!endpoint) {
      throw new TypeError(
        `dynamic_batching: "${name}" is not an endpoint of ${className} (it has: ${[...out.keys()].join(', ') || 'none'})`,
      );
    }
    validateBatching(batching, `dynamic_batching["${name}"]`);
    endpoint.batching = batching;
  }
  for (const endpoint of out.values()) {
    if (endpoint.batching && (endpoint.isGenerator || endpoint.single)) {
      throw new TypeError(
        `${className}: endpoint ${endpoint.name} cannot batch a ${endpoint.isGenerator ? 'generator' : 'single-document'} method`,
      );
    }
  }
  return out;
}

const schemaCache = new WeakMap<TSchema, Record<string, unknown>>();

function jsonSchemaOf(schema: TSchema): Record<string, unknown> {
  let s = schemaCache.get(schema);
  if (!s) {
    s = toJsonSchema(schema);
    schemaCache.set(schema, s);
  }
  return s;
}

/** The endpoint listing endpoint_discovery answers, with the reserved dry-run endpoint. */
export function listEndpoints(endpoints: Map<string, Endpoint>): EndpointListing {
  const schemas: Record<string, EndpointSchema> = {};
  const describe = (
    e: Pick<
      Endpoint,
      'requestSchema' | 'responseSchema' | 'parametersSchema' | 'isGenerator' | 'single' | 'name'
    >,
  ): EndpointSchema => ({
    input: { name: String(e.requestSchema.$id ?? 'Input'), model: jsonSchemaOf(e.requestSchema) },
    output: {
      name: String(e.responseSchema.$id ?? 'Output'),
      model: jsonSchemaOf(e.responseSchema),
    },
    is_generator: e.isGenerator,
    is_singleton_doc: e.single || e.isGenerator,
    parameters: e.parametersSchema
      ? {
          name: String(
            e.parametersSchema.title ??
              e.parametersSchema.$id ??
              `${e.name.replace(/\W/g, '')}Parameters`,
          ),
          model: jsonSchemaOf(e.parametersSchema),
        }
      : { name: null, model: null },
  });
  for (const e of endpoints.values()) schemas[e.name] = describe(e);
  schemas[DRY_RUN_ENDPOINT] = describe({
    name: DRY_RUN_ENDPOINT,
    requestSchema: LegacyDocument as AnyDocType,
    responseSchema: LegacyDocument as AnyDocType,
    isGenerator: false,
    single: false,
  });
  return { endpoints: [...endpoints.keys(), DRY_RUN_ENDPOINT], writeEndpoints: [], schemas };
}

/** The endpoint that serves `name`: its own binding, else `/default`, else none. */
export function routeEndpoint(
  endpoints: Map<string, Endpoint>,
  name: string | undefined,
): Endpoint | undefined {
  return endpoints.get(name || DEFAULT_ENDPOINT) ?? endpoints.get(DEFAULT_ENDPOINT);
}
