import { describe, expect, it } from 'vitest';
import {
  cudaVisibleDevices,
  dockerCpus,
  dockerMemory,
  type Gpus,
  parseAutoscale,
  parseGpus,
  parseResources,
} from './resources.js';

describe('deployment settings', () => {
  it('reads gpus as Jina writes them, and spreads listed devices over replicas', () => {
    expect(parseGpus('all', 'g')).toEqual({ kind: 'all' });
    expect(parseGpus(2, 'g')).toEqual({ kind: 'count', count: 2 });
    expect(parseGpus('1', 'g')).toEqual({ kind: 'count', count: 1 });
    expect(parseGpus('device=0,2', 'g')).toEqual({ kind: 'devices', ids: ['0', '2'] });
    expect(parseGpus([1, 3], 'g')).toEqual({ kind: 'devices', ids: ['1', '3'] });
    expect(parseGpus('GPU-8f3a-11', 'g')).toEqual({ kind: 'devices', ids: ['GPU-8f3a-11'] });
    expect(() => parseGpus(0, 'ocr.gpus')).toThrow('ocr.gpus: 0 is not a number of GPUs');
    expect(() => parseGpus('device=x', 'ocr.gpus')).toThrow(/ocr\.gpus: "device=x" is not all/);
    const ids: Gpus = { kind: 'devices', ids: ['0', '1'] };
    expect([0, 1, 2, 3].map((i) => cudaVisibleDevices(ids, i))).toEqual(['0', '1', '0', '1']);
    expect(cudaVisibleDevices({ kind: 'count', count: 2 }, 5)).toBe('0,1');
    expect(cudaVisibleDevices({ kind: 'all' }, 0)).toBeUndefined();
  });

  it('reads resources in Kubernetes units and writes docker units', () => {
    expect(
      parseResources({ requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: 2 } }, 'r'),
    ).toEqual({ requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '2' } });
    expect(() => parseResources({ limits: { gpu: 1 } }, 'ocr.resources')).toThrow(
      'ocr.resources.limits.gpu: unknown key (cpu, memory)',
    );
    expect(() => parseResources({ limits: { memory: 'lots' } }, 'r')).toThrow(
      'r.limits.memory: "lots" is not an amount of memory (512Mi, 4Gi)',
    );
    expect([dockerCpus('500m'), dockerCpus('2'), dockerCpus('1.5')]).toEqual(['0.5', '2', '1.5']);
    expect([
      dockerMemory('512Mi'),
      dockerMemory('4Gi'),
      dockerMemory('1G'),
      dockerMemory('1.5Gi'),
    ]).toEqual(['512m', '4g', '1000000000', String(1.5 * 1024 ** 3)]);
  });

  it('reads autoscale, defaulting to 70% CPU from one replica, and names what is wrong', () => {
    expect(parseAutoscale({ max_replicas: 4 }, 'a')).toEqual({
      minReplicas: 1,
      maxReplicas: 4,
      cpu: 70,
    });
    expect(
      parseAutoscale({ min_replicas: 2, max_replicas: 8, target_pending_requests: 4 }, 'a'),
    ).toEqual({ minReplicas: 2, maxReplicas: 8, pendingRequests: 4 });
    expect(() => parseAutoscale({ min_replicas: 2 }, 'ocr.autoscale')).toThrow(
      'ocr.autoscale.max_replicas: the autoscaler needs an upper bound',
    );
    expect(() => parseAutoscale({ max_replicas: 2, min_replicas: 3 }, 'a')).toThrow(
      'a: min_replicas 3 > max_replicas 2',
    );
    expect(() => parseAutoscale({ max_replicas: 2, target_cpu_utilization: 150 }, 'a')).toThrow(
      'a.target_cpu_utilization: 150 is not a percentage (1-100)',
    );
  });
});
