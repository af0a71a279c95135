import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';

export type Provider = 'cuda' | 'cpu' | 'tensorrt' | 'webgpu';

export interface SessionOptions {
  /** Execution providers by preference (default `['cuda', 'cpu']`); the first that loads wins. */
  providers?: readonly Provider[];
  /** Threads inside one operator (default: ONNX Runtime's choice). */
  intraOpNumThreads?: number;
  /** Threads across operators (parallel execution mode only). */
  interOpNumThreads?: number;
  /** Told when a provider cannot load and the next one is tried. */
  onFallback?: (provider: Provider, error: Error) => void;
  /** CUDA device id (default 0). */
  deviceId?: number;
}

export interface Session {
  session: InferenceSession;
  /** The provider the session runs on. */
  provider: Provider;
  /** Providers tried before it, with why they failed. */
  skipped: { provider: Provider; reason: string }[];
}

/**
 * An ONNX Runtime session on the first execution provider that loads. onnxruntime-node throws when
 * the CUDA provider's libraries are missing instead of falling back: this tries each provider on
 * its own, in order, and reports which one it got. (Its install script, which downloads the CUDA
 * libraries, stays skipped: the CUDA provider is used where the machine provides CUDA.)
 */
export async function createSession(
  model: string | Uint8Array,
  options: SessionOptions = {},
): Promise<Session> {
  const ort = await import('onnxruntime-node').catch((err: unknown) => {
    throw new Error(
      `createSession needs onnxruntime-node (an optional peer of @marie/gpu): npm install onnxruntime-node (${(err as Error).message})`,
    );
  });
  const providers = options.providers?.length ? options.providers : (['cuda', 'cpu'] as const);
  const skipped: Session['skipped'] = [];
  for (const provider of providers) {
    const sessionOptions: InferenceSession.SessionOptions = {
      executionProviders: [
        provider === 'cuda' ? { name: 'cuda', deviceId: options.deviceId ?? 0 } : provider,
      ],

      ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
      ...(options.interOpNumThreads
        ? { interOpNumThreads: options.interOpNumThreads, executionMode: 'parallel' as const }
        : {}),
    };
    const missing = provider === 'cuda' ? cudaProviderMissing() : undefined;
    if (missing) {
      const error = new Error(missing);
      skipped.push({ provider, reason: missing });
      options.onFallback?.(provider, error);
      continue;
    }
    try {
      const session =
        typeof model === 'string'
          ? await ort.InferenceSession.create(model, sessionOptions)
          : await ort.InferenceSession.create(model, sessionOptions);
      return { session, provider, skipped };
    } catch (err) {
      const error = err as Error;
      skipped.push({ provider, reason: error.message });
      options.onFallback?.(provider, error);
    }
  }
  throw new Error(
    `no execution provider could load the model: ${skipped.map((s) => `${s.provider}: ${s.reason}`).join('; ')}`,
  );
}

/**
 * Why the CUDA provider cannot load, when its library is not there at all: onnxruntime-node's
 * install script downloads `libonnxruntime_providers_cuda.so`, and it is skipped offline. (Trying
 * anyway makes ONNX Runtime print its own error lines before the fallback.)
 */
function cudaProviderMissing(): string | undefined {
  try {
    const root = join(
      dirname(createRequire(import.meta.url).resolve('onnxruntime-node')),
      '..',
      'bin',
    );
    for (const napi of readdirSync(root)) {
      const dir = join(root, napi, process.platform, process.arch);
      if (
        existsSync(join(dir, 'libonnxruntime_providers_cuda.so')) ||
        existsSync(join(dir, 'onnxruntime_providers_cuda.dll'))
      )
        return undefined;
    }
    return 'onnxruntime-node has no CUDA provider library (its install script, which downloads it, did not run)';
  } catch {
    return undefined; // an unusual layout: let ONNX Runtime try and say why
  }
}
