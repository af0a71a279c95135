import { ConfigError } from '@marie/core';
import { isPlainObject } from '@marie/docs';
import { parsePsqlConfig } from '@marie/storage';
import {
  type EventHandler,
  JsonlHandler,
  PsqlHandler,
  type RabbitConfig,
  RabbitHandler,
} from './handlers.js';
import { type DeliveryOptions, Toast, type ToastOptions } from './toast.js';

/**
 * A Toast from Marie's `toast:` config: `native: {enabled, path}`, `psql: {enabled, <storage.psql
 * keys>}`, `rabbitmq: {enabled, hostname, port, username, password, vhost | virtualhost, tls, url}`,
 * each with `queue: {maxsize, drop_if_full, enqueue_timeout_s}` and `retry: {backoff_base_s,
 * backoff_max_s, max_attempts}`. The native handler is on unless `native.enabled: false`.
 */
export function toastFromConfig(raw: unknown, options: ToastOptions, path = 'toast'): Toast {
  if (raw !== undefined && !isPlainObject(raw))
    throw new ConfigError(`${path}: expected a mapping`);
  const cfg = (raw ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(cfg))
    if (!['native', 'psql', 'rabbitmq', 'spool_dir'].includes(k))
      throw new ConfigError(`${path}.${k}: unknown key (known: native, psql, rabbitmq, spool_dir)`);
  const handlers: { handler: EventHandler; options: Partial<DeliveryOptions> }[] = [];
  const section = (name: string) => {
    const v = cfg[name];
    if (v === undefined || v === null) return undefined;
    if (!isPlainObject(v)) throw new ConfigError(`${path}.${name}: expected a mapping`);
    const { enabled, queue, retry, ...rest } = v;
    if (enabled === false || enabled === 'false') return undefined;
    return { rest, delivery: delivery(queue, retry, `${path}.${name}`) };
  };
  const native = cfg.native === undefined ? { rest: {}, delivery: {} } : section('native');
  if (native) {
    const p = native.rest.path;
    if (p !== undefined && typeof p !== 'string')
      throw new ConfigError(`${path}.native.path: expected a string`);
    for (const k of Object.keys(native.rest))
      if (k !== 'path')
        throw new ConfigError(
          `${path}.native.${k}: unknown key (known: enabled, path, queue, retry)`,
        );
    handlers.push({ handler: new JsonlHandler(p as string | undefined), options: native.delivery });
  }
  const psql = section('psql');
  if (psql)
    handlers.push({
      handler: new PsqlHandler(parsePsqlConfig({ ...psql.rest, enabled: true }, `${path}.psql`)),
      options: psql.delivery,
    });
  const rabbit = section('rabbitmq');
  if (rabbit)
    handlers.push({
      handler: new RabbitHandler(rabbitConfig(rabbit.rest, `${path}.rabbitmq`)),
      options: rabbit.delivery,
    });
  return new Toast(handlers, options);
}

function rabbitConfig(raw: Record<string, unknown>, path: string): RabbitConfig {
  const out: RabbitConfig = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined || v === null) continue;
    if (k === 'url' || k === 'hostname' || k === 'username' || k === 'password') out[k] = String(v);
    else if (k === 'vhost' || k === 'virtualhost') out.vhost = String(v);
    else if (k === 'port' || k === 'heartbeat') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${path}.${k}: expected an integer`);
      if (k === 'port') out.port = n;
      else out.heartbeatS = n;
    } else if (k === 'tls') out.tls = v === true || v === 'true';
    else if (k === 'provider')
      continue; // Marie's `amazon-rabbitmq` etc.: tls decides here
    else
      throw new ConfigError(
        `${path}.${k}: unknown key (known: url, hostname, port, username, password, vhost, virtualhost, tls, heartbeat)`,
      );
  }
  return out;
}

function delivery(queue: unknown, retry: unknown, path: string): Partial<DeliveryOptions> {
  const out: Partial<DeliveryOptions> = {};
  const num = (v: unknown, key: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0)
      throw new ConfigError(`${path}.${key}: expected a non-negative number`);
    return n;
  };
  if (queue !== undefined) {
    if (!isPlainObject(queue)) throw new ConfigError(`${path}.queue: expected a mapping`);
    for (const [k, v] of Object.entries(queue)) {
      if (k === 'maxsize') out.maxQueue = num(v, 'queue.maxsize');
      else if (k === 'drop_if_full') out.dropIfFull = v === true || v === 'true';
      else if (k === 'enqueue_timeout_s')
        out.enqueueTimeoutMs = num(v, 'queue.enqueue_timeout_s') * 1000;
      else
        throw new ConfigError(
          `${path}.queue.${k}: unknown key (known: maxsize, drop_if_full, enqueue_timeout_s)`,
        );
    }
  }
  if (retry !== undefined) {
    if (!isPlainObject(retry)) throw new ConfigError(`${path}.retry: expected a mapping`);
    for (const [k, v] of Object.entries(retry)) {
      if (k === 'backoff_base_s') out.backoffBaseMs = num(v, 'retry.backoff_base_s') * 1000;
      else if (k === 'backoff_max_s') out.backoffMaxMs = num(v, 'retry.backoff_max_s') * 1000;
      else if (k === 'max_attempts') out.maxAttempts = num(v, 'retry.max_attempts');
      else
        throw new ConfigError(
          `${path}.retry.${k}: unknown key (known: backoff_base_s, backoff_max_s, max_attempts)`,
        );
    }
  }
  return out;
}
