// The calls tools/image-smoke.sh makes to the containers it started: a page to page-orientation
// (gRPC), a note to the user's own image (gRPC). Prints one line per check; exits 1 on a wrong one.
//   node tools/image-smoke-check.mjs ORIENTATION_PORT OWN_IMAGE_PORT SAMPLE_PATH_IN_CONTAINER
import { Client } from '@marie/client';

const [orientationPort, ownPort, asset] = process.argv.slice(2);
let failed = false;
const check = (name, ok, detail) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`);
  if (!ok) failed = true;
};

const orientation = new Client({ host: `grpc://127.0.0.1:${orientationPort}` });
let results;
await orientation.post('/document/orientation', [{ asset_key: asset }], {
  onDone: (r) => {
    results = r.parameters.__results__?.PageOrientationExecutor;
  },
});
orientation.close();
const pages = results?.pages ?? [];
check(
  'page-orientation',
  pages.length > 0 && pages.every((p) => p.rotation === 0 && p.lines > 0),
  JSON.stringify(pages),
);

const own = new Client({ host: `grpc://127.0.0.1:${ownPort}` });
const [doc] = await own.post('/default', [{ text: 'hello from my image' }]);
own.close();
check('own image', doc?.tags?.shouted === 'HELLO FROM MY IMAGE', JSON.stringify(doc?.tags));
process.exit(failed ? 1 : 0);
