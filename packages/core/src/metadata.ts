// TC39 decorators hand each class a metadata object through `Symbol.metadata`, which Node 20 does
// not define yet. TypeScript's emit only creates metadata when the symbol exists; esbuild's falls
// back to Symbol.for('Symbol.metadata'). Defining it here, before any executor class is
// evaluated (they import this package first), makes both agree.
(Symbol as { metadata?: symbol }).metadata ??= Symbol.for('Symbol.metadata');

export const METADATA: symbol = (Symbol as unknown as { metadata: symbol }).metadata;
