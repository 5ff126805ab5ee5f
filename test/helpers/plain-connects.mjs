// @ts-check
/**
 * Plain `net.connect()` calls (the kernel picks their ports) made one after the other
 * from a child process: what another process of the host gets while porter holds its
 * connections. Used by the namespace fixtures on host safety.
 */
import { spawn } from 'node:child_process';

/**
 * Opens `n` plain connections to 127.0.0.1:`port` from a child process and keeps them
 * open until it is done; resolves to how many connected and the errors by code.
 * @param {number} port @param {number} n
 * @returns {Promise<{ ok: number, errors: Record<string, number> }>}
 */
export async function plainConnectsFromChild(port, n) {
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { connect } from 'node:net';
       const r = { ok: 0, errors: {} }; const open = [];
       for (let i = 0; i < ${n}; i++) await new Promise((done) => {
         const s = connect({ host: '127.0.0.1', port: ${port} });
         s.once('connect', () => { r.ok++; open.push(s); done(); });
         s.once('error', (e) => { r.errors[e.code] = (r.errors[e.code] ?? 0) + 1; done(); }); });
       process.stdout.write(JSON.stringify(r)); process.exit(0);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  await new Promise((resolve) => child.once('close', resolve));
  return JSON.parse(out);
}
