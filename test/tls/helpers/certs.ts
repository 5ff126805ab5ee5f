/**
 * Test certificates, made with the openssl CLI in a fresh temporary directory: a CA, a
 * server certificate for localhost / 127.0.0.1 / ::1, a client certificate for mutual
 * TLS, a server certificate with a wrong name, and a CA nobody trusts with a server
 * certificate of its own.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KeyPair {
  cert: Buffer;
  key: Buffer;
  certFile: string;
  keyFile: string;
}

export interface Certs {
  dir: string;
  ca: Buffer;
  caFile: string;
  /** Signed by `ca`; SAN DNS:localhost, IP:127.0.0.1, IP:::1. */
  server: KeyPair;
  /** Signed by `ca`; extendedKeyUsage clientAuth. */
  client: KeyPair;
  /** Signed by `ca`; SAN DNS:wrong.example only. */
  wrongName: KeyPair;
  /** Signed by a CA no test trusts; SAN as `server`. */
  unknownCa: KeyPair;
  cleanup(): void;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function newKey(dir: string, name: string): void {
  openssl(dir, 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
}

function newCa(dir: string, name: string, cn: string): void {
  newKey(dir, name);
  openssl(
    dir,
    'req',
    '-x509',
    '-new',
    '-key',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-subj',
    `/CN=${cn}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
}

function leaf(dir: string, name: string, ca: string, cn: string, extensions: string[]): KeyPair {
  newKey(dir, name);
  openssl(dir, 'req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
  writeFileSync(join(dir, `${name}.ext`), `${extensions.join('\n')}\n`);
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  );
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  return { cert: readFileSync(certFile), key: readFileSync(keyFile), certFile, keyFile };
}

const serverExt = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature',
  'extendedKeyUsage=serverAuth',
  'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
];

/** Creates every certificate the TLS tests use (about 100 ms). */
export function makeCerts(): Certs {
  const dir = mkdtempSync(join(tmpdir(), 'porter-tls-certs-'));
  newCa(dir, 'ca', 'porter test CA');
  newCa(dir, 'other-ca', 'untrusted test CA');
  const server = leaf(dir, 'server', 'ca', 'localhost', serverExt);
  const client = leaf(dir, 'client', 'ca', 'porter test client', [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=clientAuth',
  ]);
  const wrongName = leaf(dir, 'wrong', 'ca', 'wrong.example', [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=DNS:wrong.example',
  ]);
  const unknownCa = leaf(dir, 'unknown', 'other-ca', 'localhost', serverExt);
  const caFile = join(dir, 'ca.crt');
  return {
    dir,
    ca: readFileSync(caFile),
    caFile,
    server,
    client,
    wrongName,
    unknownCa,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
