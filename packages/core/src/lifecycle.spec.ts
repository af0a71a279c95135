import { describe, expect, it } from 'vitest';
import { createDataRequest } from './data-request.js';
import { Executor } from './executor.js';
import { RequestHandler } from './request-handler.js';
import { DRY_RUN_ENDPOINT } from './requests.js';

class Probe extends Executor {
  healthyProbe = true;
  override async dryRun() {
    if (!this.healthyProbe) throw new Error('probe failed: GPU is lost');
  }
}

describe('executor lifecycle seams', () => {
  it('health changes reach listeners, once per change', () => {
    const e = new Probe();
    const h = new RequestHandler(e);
    const seen: string[] = [];
    const off = h.onHealthChange((x) => seen.push(`${x.serving}:${x.reason}`));
    expect(h.health()).toEqual({ serving: true, reason: '' });
    e.setHealth(false, 'nvml: GPU_IS_LOST');
    e.setHealth(false, 'nvml: GPU_IS_LOST');
    e.setHealth(true);
    off();
    e.setHealth(false, 'later');
    expect(seen).toEqual(['false:nvml: GPU_IS_LOST', 'true:']);
  });

  it('a dry run runs the executor probe; a failed probe fails the dry run', async () => {
    const e = new Probe();
    const h = new RequestHandler(e);
    const ok = await h.handle(createDataRequest({ endpoint: DRY_RUN_ENDPOINT }));
    expect(ok.header.status).toBeUndefined();
    e.healthyProbe = false;
    const bad = await h.handle(createDataRequest({ endpoint: DRY_RUN_ENDPOINT }));
    expect(bad.header.status?.description).toBe('Error: probe failed: GPU is lost');
  });

  it('terminate goes to the runtime listening, and rejects when none listens', async () => {
    const e = new Probe();
    await expect(e.terminate('lost', 3)).rejects.toThrow('fatal (lost), and no runtime listens');
    const calls: [string, number][] = [];
    e.onTerminate((reason, code) => {
      calls.push([reason, code]);
    });
    await e.terminate('lost', 3);
    expect(calls).toEqual([['lost', 3]]);
  });
});
