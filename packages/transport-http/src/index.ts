export type { TlsClientOptions } from '@marie/core';
export type { PostOptions } from './client-common.js';
export { fromHttpStatus, toHttpStatus } from './codes.js';
export { HttpClient, type HttpClientOptions } from './http-client.js';
export { answerFromJson, answerJson, requestFromJson } from './json-wire.js';
export {
  endpointPath,
  type HttpPlugin,
  type HttpProtocol,
  HttpServer,
  type HttpServerOptions,
} from './server.js';
export { WsClient, type WsClientOptions } from './ws-client.js';
