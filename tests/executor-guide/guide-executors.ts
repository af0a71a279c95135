// Every example of Marie-AI's executor guide (shared/reference/marie-executors.md), in TypeScript.
// Each class keeps the guide's name; the Python original is quoted above it where it helps.
import { setTimeout as sleep } from 'node:timers/promises';
import { Executor, type ExecutorArgs, type RequestContext, requests } from '@marie/core';
import {
  AssetKeyDoc,
  DocList,
  type DocOf,
  defineDoc,
  Embedding,
  type LegacyDocument,
  NdArray,
  TextDoc,
  Type,
} from '@marie/docs';

/** Python's ValueError, so the name that reaches the client is the guide's. */
export class ValueError extends Error {
  override name = 'ValueError';
}

// "Creating your first executor"
export class MyExecutor extends Executor {
  @requests
  process(docs: DocList<LegacyDocument>) {
    for (const doc of docs) {
      // Process each document
      doc.tags.seen = true;
    }
    return docs;
  }
}

// "Constructor" and "Destructor"
export interface ModelExecutorConfig {
  model_path: string;
  device?: string;
}

export class ModelExecutor extends Executor {
  readonly modelPath: string;
  readonly device: string;
  model: { path: string } | undefined;
  closed = 0;

  constructor({ model_path, device = 'cuda', ...rest }: ModelExecutorConfig & ExecutorArgs) {
    super(rest);
    this.modelPath = model_path;
    this.device = device;
    this.model = { path: model_path };
  }

  override async close() {
    this.model = undefined;
    this.closed++;
  }
}

// "Basic endpoint binding"
export class EndpointsExecutor extends Executor {
  @requests({ on: '/process' })
  processDocuments(docs: DocList<LegacyDocument>) {
    return docs;
  }

  @requests({ on: '/status' })
  getStatus() {
    return { status: 'healthy' };
  }
}

// "Default endpoint"
export class DefaultExecutor extends Executor {
  @requests
  defaultHandler(docs: DocList<LegacyDocument>, ctx: RequestContext) {
    for (const d of docs) d.tags.handledAs = ctx.endpoint;
    return docs;
  }
}

// "Multiple endpoints"
export class MultiExecutor extends Executor {
  calls: string[] = [];

  @requests({ on: ['/extract', '/process'] })
  handleExtraction(docs: DocList<LegacyDocument>, ctx: RequestContext) {
    this.calls.push(ctx.endpoint);
    return docs;
  }
}

// "Async endpoints"
export class AsyncExecutor extends Executor {
  @requests({ on: '/async-process' })
  async asyncProcess(docs: DocList<LegacyDocument>) {
    await sleep(100); // Simulate async operation
    return docs;
  }
}

// "Document type binding"
export const InputDoc = defineDoc('InputDoc', { text: Type.String({ default: '' }) });
export type InputDoc = DocOf<typeof InputDoc>;
export const OutputDoc = defineDoc('OutputDoc', {
  text: Type.String({ default: '' }),
  embedding: Type.Optional(Embedding()),
});
export type OutputDoc = DocOf<typeof OutputDoc>;

/** A stand-in model: a deterministic 8-dim character histogram, normalised. */
export const toyModel = {
  encode(text: string): Float32Array {
    const v = new Float32Array(8);
    for (const ch of text) v[ch.charCodeAt(0) % 8]! += 1;
    const norm = Math.hypot(...v) || 1;
    return v.map((x) => x / norm);
  },
};

export class EmbedExecutor extends Executor {
  model = toyModel;

  @requests({ on: '/embed', requestSchema: InputDoc, responseSchema: OutputDoc })
  embed(docs: DocList<InputDoc>) {
    const results = new DocList(OutputDoc);
    for (const doc of docs) {
      results.push({ text: doc.text, embedding: new NdArray(this.model.encode(doc.text)) });
    }
    return results;
  }
}

// "Marie-AI document types": AssetKeyDoc
export class DocumentProcessor extends Executor {
  seen: { asset_key: string; pages: number[] | undefined }[] = [];

  @requests({ on: '/extract', requestSchema: AssetKeyDoc })
  async extract(docs: DocList<AssetKeyDoc>, _ctx: RequestContext) {
    const doc = docs[0]!;
    this.seen.push({ asset_key: doc.asset_key, pages: doc.pages });
    return { status: 'success' };
  }
}

// "Parameters"
export const ExtractionParams = Type.Object(
  {
    job_id: Type.String({ description: 'Unique job identifier' }),
    layout: Type.String({ default: 'default', description: 'Layout configuration' }),
    confidence_threshold: Type.Number({ default: 0.5 }),
  },
  { title: 'ExtractionParams' },
);

export class ParamsExecutor extends Executor {
  @requests({ on: '/extract', parametersSchema: ExtractionParams })
  extract(docs: DocList<LegacyDocument>, ctx: RequestContext<typeof ExtractionParams.static>) {
    const { job_id, layout, confidence_threshold } = ctx.parameters;
    for (const d of docs) d.tags = { job_id, layout, confidence_threshold };
    return docs;
  }
}

// "Storage integration" (the YAML half: `storage.psql.password: ${POSTGRES_PASSWORD}`)
export class PersistentExecutor extends Executor {
  readonly storage: Record<string, any> | undefined;

  constructor({ storage, ...rest }: { storage?: Record<string, any> } & ExecutorArgs) {
    super(rest);
    this.storage = storage;
  }
}

// "Configuration (YAML)"
export class ConfiguredExecutor extends Executor {
  readonly config: { model_path: string; device: string; num_workers: number };

  constructor({
    model_path,
    device = 'cuda',
    num_workers = 1,
    ...rest
  }: { model_path: string; device?: string; num_workers?: number } & ExecutorArgs) {
    super(rest);
    this.config = { model_path, device, num_workers };
  }

  @requests({ on: '/config' })
  describe() {
    return { ...this.config, name: this.metas.name, description: this.metas.description };
  }
}

// "Executor attributes": workspace, metas, runtime_args
export class AttributesExecutor extends Executor {
  @requests({ on: '/whoami' })
  whoami() {
    return {
      workspace: this.workspace,
      name: this.metas.name,
      description: this.metas.description,
      shardId: this.runtimeArgs.shardId,
      replicas: this.runtimeArgs.replicas,
    };
  }
}

// "Exception handling"
export class RaisingExecutor extends Executor {
  @requests({ on: '/process' })
  process(docs: DocList<LegacyDocument>) {
    if (docs.length === 0) throw new ValueError('No documents provided');
    return docs;
  }
}

// "Health checks"
export class HealthyExecutor extends Executor {
  @requests({ on: '/status', requestSchema: TextDoc })
  async status(_docs: DocList<TextDoc>) {
    return new DocList(TextDoc, [{ text: '{"healthy": true, "gpu": "available"}' }]);
  }
}
