// The baseline: a raw @grpc/grpc-js unary server on the same method path that hands back the
// request bytes it received, untouched. Prints `ready PORT`.
import * as grpc from '@grpc/grpc-js';

const server = new grpc.Server({
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
});
const identity = (b) => b;
server.addService(
  {
    process_single_data: {
      path: '/jina.JinaSingleDataRequestRPC/process_single_data',
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  },
  { process_single_data: (call, callback) => callback(null, call.request) },
);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`ready ${port}\n`);
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
