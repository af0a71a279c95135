/** A configuration that cannot be loaded: the message names the file and the cause. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
