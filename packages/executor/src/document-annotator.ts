import { hostname } from 'node:os';
import { ErrorCode, MarieError, type RequestContext } from '@marie/core';
import type { AssetKeyDoc, DocList, MarieDoc } from '@marie/docs';
import { docsFromAsset } from '@marie/storage';
import { MarieExecutor } from './marie-executor.js';

/** What `annotate` gets: the pages of the one asset, and the request's parameters. */
export interface AnnotateInput {
  pages: DocList<MarieDoc>;
  assetKey: string;
  /** `payload.op_params.key`: which annotator (the asset is `annotation/<key>`). */
  key: string;
  /** `payload.op_params.layout`. */
  layout: string | undefined;
  jobId: string;
  refId: string | undefined;
  refType: string | undefined;
  parameters: Readonly<Record<string, unknown>>;
  signal: AbortSignal;
}

/** Marie's answer: `{status, runtime_info, error}` (+ the annotation on success). */
export interface AnnotationAnswer {
  status: 'success' | 'error';
  runtime_info: {
    name: string;
    instance_name: string;
    model: string | null;
    host: string;
    workspace: string;
  };
  error: { name: string; message: string } | null;
  annotation?: unknown;
  asset?: { key: string; version: string } | null;
}

/**
 * Marie's DocumentAnnotatorExecutor: the base of extraction and annotation executors. A subclass
 * binds its endpoints (`/annotator/llm`, ...) to `this.annotateRequest(docs, ctx)` and implements
 * `annotate`. Exactly one AssetKeyDoc per request and `job_id` are required; the pages come
 * through docsFromAsset; the result is recorded as the asset `annotation/<key>`. Every failure
 * answers `status: "error"` (and only a failure does); cancellation is rethrown, never swallowed.
 */
export abstract class DocumentAnnotatorExecutor extends MarieExecutor {
  /** The model the annotator runs, reported in `runtime_info.model`. */
  protected model: string | null = null;

  abstract annotate(input: AnnotateInput): Promise<unknown>;

  protected async annotateRequest(
    docs: DocList<AssetKeyDoc>,
    ctx: RequestContext,
  ): Promise<AnnotationAnswer> {
    const runtime_info = {
      name: this.constructor.name,
      instance_name: this.runtimeArgs.name,
      model: this.model,
      host: hostname(),
      workspace: this.workspace,
    };
    try {
      const input = await this.#input(docs, ctx);
      const annotation = await this.annotate(input);
      if (ctx.signal.aborted) throw ctx.signal.reason;
      let asset: AnnotationAnswer['asset'] = null;
      if (this.assetTrackingEnabled) {
        const [rec] = await this.recordMaterializations(
          [
            {
              key: `annotation/${input.key}`,
              kind: 'annotation',
              payload: (annotation ?? null) as Record<string, unknown>,
              metadata: {
                layout: input.layout ?? null,
                ref_id: input.refId ?? null,
                page_count: input.pages.length,
              },
            },
          ],
          {
            jobId: input.jobId,
            ...optional('dagId', ctx.parameters.dag_id),
            ...optional('nodeTaskId', ctx.parameters.node_task_id),
          },
        );
        asset = { key: rec!.assetKey, version: rec!.version };
      }
      return { status: 'success', runtime_info, error: null, annotation, asset };
    } catch (err) {
      if (isCancellation(err, ctx.signal)) throw err;
      const e = err instanceof Error ? err : new Error(String(err));
      this.logger.error({ err: e }, 'annotation failed');
      return { status: 'error', runtime_info, error: { name: e.name, message: e.message } };
    }
  }

  async #input(docs: DocList<AssetKeyDoc>, ctx: RequestContext): Promise<AnnotateInput> {
    if (docs.length !== 1)
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `expected exactly one AssetKeyDoc, got ${docs.length}`,
        {
          field: 'docs',
        },
      );
    const p = ctx.parameters;
    if (typeof p.job_id !== 'string' || p.job_id === '')
      throw new MarieError(ErrorCode.InvalidArgument, 'parameters.job_id is required', {
        field: 'parameters.job_id',
      });
    const payload = (p.payload ?? {}) as { op_params?: { key?: unknown; layout?: unknown } };
    const key = payload.op_params?.key;
    if (typeof key !== 'string' || key === '')
      throw new MarieError(
        ErrorCode.InvalidArgument,
        'parameters.payload.op_params.key is required',
        {
          field: 'parameters.payload.op_params.key',
        },
      );
    const layout = payload.op_params?.layout;
    const doc = docs[0]!;
    const pages = await docsFromAsset(doc.asset_key, {
      pages: doc.pages ?? [],
      storage: this.storage.objects,
    });
    return {
      pages,
      assetKey: doc.asset_key,
      key,
      layout: typeof layout === 'string' ? layout : undefined,
      jobId: p.job_id,
      refId: typeof p.ref_id === 'string' ? p.ref_id : undefined,
      refType: typeof p.ref_type === 'string' ? p.ref_type : undefined,
      parameters: p,
      signal: ctx.signal,
    };
  }
}

function isCancellation(err: unknown, signal: AbortSignal): boolean {
  return (
    signal.aborted ||
    (err instanceof Error && err.name === 'AbortError') ||
    (err instanceof MarieError && err.code === ErrorCode.Canceled)
  );
}

function optional<K extends string>(key: K, value: unknown): Partial<Record<K, string>> {
  return typeof value === 'string' && value ? ({ [key]: value } as Record<K, string>) : {};
}
