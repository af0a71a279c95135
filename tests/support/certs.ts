// Certificates made by openssl for the TLS tests: a CA, a server certificate it signs for
// 127.0.0.1 and localhost, a client certificate it signs (mutual TLS), and a client certificate
// from another CA (which a server asking for the first CA's must refuse).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCerts {
  dir: string;
  /** File paths (PEM). */
  files: {
    ca: string;
    serverCert: string;
    serverKey: string;
    clientCert: string;
    clientKey: string;
    strangerCert: string;
    strangerKey: string;
  };
  ca: Buffer;
  clientCert: Buffer;
  clientKey: Buffer;
  strangerCert: Buffer;
  strangerKey: Buffer;
  remove(): void;
}

const openssl = (args: string[], cwd: string) =>
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });

/** A fresh P-256 key, unencrypted, written to NAME.key. */
const newKey = (name: string) => [
  '-newkey',
  'ec',
  '-pkeyopt',
  'ec_paramgen_curve:prime256v1',
  '-nodes',
  '-keyout',
  `${name}.key`,
];

function ca(dir: string, name: string): void {
  openssl(
    ['req', '-x509', ...newKey(name), '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`],
    dir,
  );
}

function signed(dir: string, name: string, by: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(['req', ...newKey(name), '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${by}.pem`,
      '-CAkey',
      `${by}.key`,
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    ],
    dir,
  );
}

export function makeCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'marie-certs-'));
  ca(dir, 'ca');
  ca(dir, 'other-ca');
  signed(
    dir,
    'server',
    'ca',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  signed(dir, 'client', 'ca', 'extendedKeyUsage=clientAuth\n');
  signed(dir, 'stranger', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  const f = (n: string) => join(dir, n);
  const files = {
    ca: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
    strangerCert: f('stranger.pem'),
    strangerKey: f('stranger.key'),
  };
  return {
    dir,
    files,
    ca: readFileSync(files.ca),
    clientCert: readFileSync(files.clientCert),
    clientKey: readFileSync(files.clientKey),
    strangerCert: readFileSync(files.strangerCert),
    strangerKey: readFileSync(files.strangerKey),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
