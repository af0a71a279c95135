import { ConfigError } from '@marie/core';

/** `with.health` of a MarieExecutor: Marie's keys and defaults (config/service/extract/*.yml). */
export interface HealthConfig {
  /** `gpu_monitor_enabled` (false). */
  enabled: boolean;
  /** `interval_s` between passes (30). */
  intervalS: number;
  /** `consecutive_failures` before a fatal stop when not failing fast (3). */
  consecutiveFailures: number;
  /** `fail_fast_on_error`: one failed pass is fatal (true). */
  failFast: boolean;
  /** `compute_check_enabled` (Marie: `torch_check_enabled`): run the CUDA compute probe (on with the monitor). */
  computeCheck: boolean;
  /** `compute_check_every` (Marie: `torch_check_every`): the probe runs every Nth pass (3). */
  computeEvery: number;
  /** `max_interval_s`: the interval doubles on failure up to this (90). */
  maxIntervalS: number;
  /** `jitter_s`: up to this much is added to every sleep (1). */
  jitterS: number;
}

const KEYS: Record<string, keyof HealthConfig> = {
  gpu_monitor_enabled: 'enabled',
  interval_s: 'intervalS',
  consecutive_failures: 'consecutiveFailures',
  fail_fast_on_error: 'failFast',
  compute_check_enabled: 'computeCheck',
  torch_check_enabled: 'computeCheck',
  compute_check_every: 'computeEvery',
  torch_check_every: 'computeEvery',
  max_interval_s: 'maxIntervalS',
  jitter_s: 'jitterS',
};

export function parseHealthConfig(raw: unknown, path = 'health'): HealthConfig {
  const cfg: HealthConfig = {
    enabled: false,
    intervalS: 30,
    consecutiveFailures: 3,
    failFast: true,
    computeCheck: true,
    computeEvery: 3,
    maxIntervalS: 90,
    jitterS: 1,
  };
  if (raw === undefined || raw === null) return cfg;
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw new ConfigError(`${path}: expected a mapping`);
  for (const [key, value] of Object.entries(raw)) {
    const field = KEYS[key];
    if (!field)
      throw new ConfigError(`${path}.${key}: unknown key (known: ${Object.keys(KEYS).join(', ')})`);
    const current = cfg[field];
    if (typeof current === 'boolean') {
      if (typeof value !== 'boolean' && value !== 'true' && value !== 'false')
        throw new ConfigError(`${path}.${key}: expected true or false`);
      (cfg as unknown as Record<string, unknown>)[field] = value === true || value === 'true';
    } else {
      const n = Number(value);
      const integer = field === 'consecutiveFailures' || field === 'computeEvery';
      if (!Number.isFinite(n) || n < 0 || (integer && (!Number.isInteger(n) || n < 1)))
        throw new ConfigError(
          `${path}.${key}: expected ${integer ? 'a positive integer' : 'a number of seconds'}`,
        );
      (cfg as unknown as Record<string, unknown>)[field] = n;
    }
  }
  return cfg;
}
