import { randomUUID } from 'node:crypto';

/** Marie's EventMessage status values. */
export type EventStatus = 'SUCCESS' | 'FAILURE' | 'INFO' | 'OK' | 'FAILED';

/**
 * Marie's EventMessage (marie/messaging/events.py). Two differences, both on purpose: `payload` is
 * a JSON object (Marie double-encodes it as a JSON string), and `timestamp` is documented:
 * **seconds** since the epoch, an integer, as Marie's code sends it (its docs say milliseconds).
 */
export interface EventMessage {
  /** A UUID v4: the idempotency key every handler dedupes on. */
  id: string;
  /** A URI, e.g. `job://started/<job_id>`. */
  source: string;
  api_key: string;
  jobid: string;
  /** `<name>.<scheduled|started|completed|failed>`, routing key on RabbitMQ. */
  event: string;
  /** Marie sets the ref_type here. */
  jobtag: string;
  status: EventStatus;
  /** Seconds since the epoch (integer). */
  timestamp: number;
  payload: Record<string, unknown>;
}

export type EventInit = Partial<EventMessage> & Pick<EventMessage, 'event'>;

/** An EventMessage with Marie's defaults filled in. */
export function createEvent(init: EventInit): EventMessage {
  const jobid = init.jobid ?? '';
  const kind = init.event.split('.').at(-1) ?? init.event;
  return {
    id: init.id ?? randomUUID(),
    source: init.source ?? `job://${kind}/${jobid}`,
    api_key: init.api_key ?? 'marie',
    jobid,
    event: init.event,
    jobtag: init.jobtag ?? '',
    status: init.status ?? 'INFO',
    timestamp: init.timestamp ?? Math.floor(Date.now() / 1000),
    payload: init.payload ?? {},
  };
}
