// The baselines: a raw fastify route that parses the JSON body and returns it, and a raw `ws`
// server that echoes every frame. Prints `ready HTTP_PORT WS_PORT`.
import Fastify from 'fastify';
import { WebSocketServer } from 'ws';

const app = Fastify({ bodyLimit: 100 * 1024 * 1024 });
app.post('/noop', async (req) => req.body);
await app.listen({ host: '127.0.0.1', port: 0 });
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 1 << 30 });
wss.on('connection', (socket) =>
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary })),
);
await new Promise((r) => wss.on('listening', r));
process.stdout.write(`ready ${app.server.address().port} ${wss.address().port}\n`);
process.on('SIGTERM', async () => {
  wss.close();
  await app.close();
  process.exit(0);
});
