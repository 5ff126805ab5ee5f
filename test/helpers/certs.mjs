// @ts-check
/**
 * Certificates for tests and benchmarks, made with the openssl CLI in a fresh temporary
 * directory: a CA, a server certificate for localhost / 127.0.0.1 / ::1, a client
 * certificate for mutual TLS, a server certificate with a wrong name, and a CA nobody
 * trusts with a server certificate of its own. Every key is ECDSA P-256.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * @typedef {object} KeyPair
 * @property {Buffer} cert
 * @property {Buffer} key
 * @property {string} certFile
 * @property {string} keyFile
 */

/**
 * @typedef {object} Certs
 * @property {string} dir
 * @property {Buffer} ca
 * @property {string} caFile
 * @property {KeyPair} server Signed by `ca`; SAN DNS:localhost, IP:127.0.0.1, IP:::1.
 * @property {KeyPair} client Signed by `ca`; extendedKeyUsage clientAuth.
 * @property {KeyPair} wrongName Signed by `ca`; SAN DNS:wrong.example only.
 * @property {KeyPair} unknownCa Signed by a CA no test trusts; SAN as `server`.
 * @property {() => void} cleanup Removes `dir`.
 */

/** @param {string} dir @param {string[]} args */
function openssl(dir, ...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** @param {string} dir @param {string} name */
function newKey(dir, name) {
  openssl(dir, 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
}

/** A self-signed CA, `name`.crt and `name`.key. @param {string} dir @param {string} name @param {string} cn */
function newCa(dir, name, cn) {
  newKey(dir, name);
  const ext = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'];
  const req = [
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
  ];
  openssl(dir, ...req, ...ext.flatMap((e) => ['-addext', e]));
}

/**
 * A certificate signed by the CA `ca`, with `extensions` (lines of an openssl extension file).
 * @param {string} dir @param {string} name @param {string} ca @param {string} cn @param {string[]} extensions
 * @returns {KeyPair}
 */
function leaf(dir, name, ca, cn, extensions) {
  newKey(dir, name);
  openssl(dir, 'req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
  writeFileSync(join(dir, `${name}.ext`), `${extensions.join('\n')}\n`);
  const signer = ['-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial'];
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    ...signer,
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

const LEAF = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature'];
const SERVER = [...LEAF, 'extendedKeyUsage=serverAuth', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1'];

/**
 * Creates every certificate (about 100 ms) in a new temporary directory; `cleanup()`
 * removes it.
 * @returns {Certs}
 */
export function makeCerts() {
  const dir = mkdtempSync(join(tmpdir(), 'porter-certs-'));
  newCa(dir, 'ca', 'porter test CA');
  newCa(dir, 'other-ca', 'untrusted test CA');
  const server = leaf(dir, 'server', 'ca', 'localhost', SERVER);
  const client = leaf(dir, 'client', 'ca', 'porter test client', [...LEAF, 'extendedKeyUsage=clientAuth']);
  const wrongName = leaf(dir, 'wrong', 'ca', 'wrong.example', [
    ...LEAF,
    'extendedKeyUsage=serverAuth',
    'subjectAltName=DNS:wrong.example',
  ]);
  const unknownCa = leaf(dir, 'unknown', 'other-ca', 'localhost', SERVER);
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
