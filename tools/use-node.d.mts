/** The Node we develop, test and ship on. */
export declare const NODE_LTS: string;
/** The oldest major the packages support. */
export declare const MIN_MAJOR: number;
/** The cache folder for fetched Node binaries. */
export declare function cacheRoot(): string;
/** The bin folder of Node `version` from the cache, fetched from the npm registry on first use. */
export declare function ensureNode(version?: string): string;
/** PATH with a Node >= MIN_MAJOR first. */
export declare function nodePath(env?: NodeJS.ProcessEnv): {
  bin: string;
  fetched: boolean;
  env: NodeJS.ProcessEnv;
};
