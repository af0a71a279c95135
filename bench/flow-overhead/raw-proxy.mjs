// The baseline for a gateway: a raw @grpc/grpc-js server that forwards the request bytes to each
// upstream in turn (the answer of one is the request of the next) and hands back the last answer,
// untouched. No decoding, no graph, no routes. Usage: raw-proxy.mjs PORT_A [PORT_B ...];
// prints `ready PORT`.
import * as grpc from '@grpc/grpc-js';
import { SINGLE, serveRaw } from '../lib/grpc-load.mjs';

const identity = (b) => b;
const upstreams = process.argv.slice(2).map(
  (port) =>
    new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': -1,
    }),
);
const call = (client, bytes) =>
  new Promise((resolve, reject) =>
    client.makeUnaryRequest(SINGLE, identity, identity, bytes, (err, res) =>
      err ? reject(err) : resolve(res),
    ),
  );

serveRaw(async (bytes) => {
  let out = bytes;
  for (const u of upstreams) out = await call(u, out);
  return out;
});
