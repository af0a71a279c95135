export { HttpClient, type HttpClientOptions, WsClient, type WsClientOptions } from './client.js';
export { answerFromJson, answerJson, requestFromJson } from './json-wire.js';
export { endpointPath, type HttpProtocol, HttpServer, type HttpServerOptions } from './server.js';
