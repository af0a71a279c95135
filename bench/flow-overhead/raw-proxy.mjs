// The baseline for a gateway: a raw @grpc/grpc-js server that forwards the request bytes to each
// upstream in turn (the answer of one is the request of the next) and hands back the last answer,
// untouched. No decoding, no graph, no routes. Usage: raw-proxy.mjs PORT_A [PORT_B ...];
// prints `ready PORT`.
import * as grpc from '@grpc/grpc-js';

const PATH = '/jina.JinaSingleDataRequestRPC/process_single_data';
const identity = (b) => b;
const upstreams = process.argv.slice(2).map(
  (port) =>
    new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': -1,
    }),
);
const call = (client, bytes) =>
  new Promise((resolve, reject) =>
    client.makeUnaryRequest(PATH, identity, identity, bytes, (err, res) =>
      err ? reject(err) : resolve(res),
    ),
  );

const server = new grpc.Server({
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
});
server.addService(
  {
    process_single_data: {
      path: PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  },
  {
    process_single_data: async (c, callback) => {
      try {
        let bytes = c.request;
        for (const u of upstreams) bytes = await call(u, bytes);
        callback(null, bytes);
      } catch (err) {
        callback(err);
      }
    },
  },
);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`ready ${port}\n`);
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
