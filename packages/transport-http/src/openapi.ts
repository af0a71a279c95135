import type { EndpointListing } from '@marie/core';

type Json = Record<string, unknown>;

/** Rewrites `#/$defs/X` references to `X#`, the shared-schema form @fastify/swagger turns into components. */
function relink(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(relink);
  if (typeof value !== 'object' || value === null) return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === '$defs') continue;
    out[k] =
      k === '$ref' && typeof v === 'string' ? v.replace(/^#\/\$defs\//, '') + '#' : relink(v);
  }
  return out;
}

export interface OpenApiModels {
  /** Shared schemas (one per document type and parameters model), each with `$id`. */
  shared: Json[];
  /** Per endpoint: the JSON Schemas of its request body and answer. */
  routes: Map<string, { body: Json; response: Json; isGenerator: boolean; input: string }>;
}

/**
 * OpenAPI models from the endpoint listing: every document type becomes a component (nested
 * ones too), each endpoint's body and answer refer to them. Tensors are nested number lists.
 */
export function openApiModels(listing: EndpointListing): OpenApiModels {
  const shared = new Map<string, Json>();
  const share = (name: string, model: Json) => {
    for (const [defName, def] of Object.entries(
      (model.$defs as Record<string, Json> | undefined) ?? {},
    )) {
      if (!shared.has(defName)) shared.set(defName, { ...(relink(def) as Json), $id: defName });
    }
    if (!shared.has(name)) shared.set(name, { ...(relink(model) as Json), $id: name });
    return { $ref: `${name}#` };
  };
  const routes: OpenApiModels['routes'] = new Map();
  for (const [endpoint, s] of Object.entries(listing.schemas)) {
    if (endpoint === '_jina_dry_run_') continue;
    const input = share(s.input.name, s.input.model);
    const output = share(s.output.name, s.output.model);
    const parameters =
      s.parameters.model && s.parameters.name
        ? share(s.parameters.name, s.parameters.model)
        : { type: 'object', additionalProperties: true };
    const header = {
      type: 'object',
      properties: { request_id: { type: 'string' }, target_executor: { type: 'string' } },
    };
    routes.set(endpoint, {
      input: s.input.name,
      isGenerator: s.is_generator,
      body: {
        type: 'object',
        properties: { data: { type: 'array', items: input }, parameters, header },
        description: `Documents (${s.input.name}) for ${endpoint}; tensors as nested number lists, bytes as base64.`,
      },
      response: {
        type: 'object',
        properties: {
          data: { type: 'array', items: output },
          parameters: { type: 'object', additionalProperties: true },
          header: { type: 'object', additionalProperties: true },
          routes: { type: 'array', items: { type: 'object', additionalProperties: true } },
        },
      },
    });
  }
  return { shared: [...shared.values()], routes };
}

export const ERROR_SCHEMA = {
  type: 'object',
  properties: {
    detail: { type: 'string' },
    exception: {
      type: 'object',
      properties: {
        name: { type: 'string' },
        args: { type: 'array', items: { type: 'string' } },
        stacks: { type: 'array', items: { type: 'string' } },
        executor: { type: 'string' },
      },
    },
  },
};
