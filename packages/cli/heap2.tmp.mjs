const mb = () => {
  gc();
  gc();
  return (process.memoryUsage().heapUsed / 1e6).toFixed(1);
};
const { RequestHandler, loadExecutor } = await import('@marie/core');
const { GrpcServer } = await import('@marie/transport-grpc');
console.log('imports', mb());
const { loadSync } = await import('@grpc/proto-loader');
const { PROTO_FILES, PROTO_ROOT } = await import('@marie/proto');
const pkg = loadSync(
  PROTO_FILES.map((f) => `${PROTO_ROOT}${f}`),
  { includeDirs: [PROTO_ROOT], keepCase: true },
);
console.log('loadSync', mb());
const ex = await loadExecutor('../../bench/grpc-overhead/noop.yml', {});
console.log('executor', mb());
const s = new GrpcServer(new RequestHandler(ex), { host: '127.0.0.1', port: 0 });
console.log('server', mb());
await s.start();
console.log('started', mb());
process.exit(0);
