export {
  Client,
  type ClientOptions,
  type PostOptions,
  type Protocol,
  resolveAddress,
} from './client.js';
