import { Type } from '@marie/docs';
import { describe, expect, it } from 'vitest';
import { Executor } from './executor.js';
import { type EndpointInterceptor, registerInterceptor, useInterceptor } from './interceptor.js';
import { RequestHandler } from './request-handler.js';
import { requests } from './requests.js';

class Echo extends Executor {
  opened = 0;
  override async open() {
    this.opened++;
  }
  @requests({ on: '/r' })
  r() {
    return { ok: true };
  }
  @requests({ on: '/big' })
  big() {
    return { nested: [{ n: 1n }] };
  }
  @requests({ on: '/fn' })
  fn() {
    return { f: () => 1 };
  }
  @requests({ on: '/date' })
  date() {
    return { at: new Date(0) };
  }
  @requests({ on: '/typed', parametersSchema: Type.Object({ pages: Type.Integer() }) })
  typed() {
    return { ok: true };
  }
}

describe('endpoint interceptors', () => {
  it('run around the method, outermost first, and see the answer', async () => {
    const e = new Echo();
    const seen: string[] = [];
    const mark =
      (name: string): EndpointInterceptor =>
      async (call, next) => {
        seen.push(`${name}>${call.endpoint}:${String(call.parameters.job_id)}`);
        const answer = await next();
        seen.push(`<${name}:${JSON.stringify(answer.results)}`);
        return answer;
      };
    const off = registerInterceptor(mark('global'));
    useInterceptor(e, mark('own'));
    const h = new RequestHandler(e);
    try {
      await h.post('/r', [], { parameters: { job_id: 'j' } });
    } finally {
      off();
    }
    expect(seen).toEqual(['global>/r:j', 'own>/r:j', '<own:{"ok":true}', '<global:{"ok":true}']);
    expect(e.opened).toBe(1);
  });

  it('see a call whose parameters the schema refuses, as sent, fail with the validation error', async () => {
    const e = new Echo();
    const seen: string[] = [];
    useInterceptor(e, async (call, next) => {
      seen.push(`>${String(call.parameters.job_id)}`);
      try {
        return await next();
      } catch (err) {
        seen.push(`failed: ${(err as Error).message}`);
        throw err;
      }
    });
    const h = new RequestHandler(e);
    await expect(h.post('/typed', [], { parameters: { job_id: 'j', pages: 'x' } })).rejects.toThrow(
      'parameters.pages: expected integer, got string "x"',
    );
    expect(seen).toEqual(['>j', 'failed: parameters.pages: expected integer, got string "x"']);
  });

  it('can fail a request, and a failed open() is tried again on the next request', async () => {
    const e = new Echo();
    useInterceptor(e, async () => {
      throw new Error('refused by interceptor');
    });
    const h = new RequestHandler(e);
    await expect(h.post('/r')).rejects.toThrow('refused by interceptor');
    let fails = 1;
    const f = new (class extends Echo {
      override async open() {
        if (fails-- > 0) throw new Error('db down');
      }
    })();
    const hf = new RequestHandler(f);
    await expect(hf.post('/r')).rejects.toThrow('db down');
    await expect(hf.post('/r')).resolves.toBeDefined();
  });

  it.each([
    ['/big', '__results__.Echo.nested[0].n is a BigInt'],
    ['/fn', '__results__.Echo.f is a function'],
    ['/date', '__results__.Echo.at is a Date, not a plain object'],
  ])(
    'a result that cannot be encoded (%s) fails inside the interceptors',
    async (endpoint, message) => {
      const e = new Echo();
      const outcomes: string[] = [];
      useInterceptor(e, async (_call, next) => {
        try {
          return await next();
        } catch (err) {
          outcomes.push((err as Error).message);
          throw err;
        }
      });
      const h = new RequestHandler(e);
      await expect(h.post(endpoint)).rejects.toThrow(message);
      expect(outcomes).toHaveLength(1);
      expect(outcomes[0]).toContain(message);
    },
  );
});
