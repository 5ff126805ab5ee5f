import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { lastJson } from '../helpers/run.mjs';
import { startServers } from '../helpers/servers.mjs';

const script = fileURLToPath(new URL('./fixtures/reserve.mjs', import.meta.url));
const run = promisify(execFile);

interface ReserveStats {
  capacity: number;
  ready: { ipv4: number; ipv6: number };
  taken: number;
  madeInline: number;
}

interface Seen {
  added: number;
  allCloseOnExec: boolean;
  allNonBlocking: boolean;
  inherited: number;
  afterFirst: ReserveStats;
  afterSecond: ReserveStats;
}

/**
 * One connect in a fresh process with PORTER_SOCKET_RESERVE (or, with `name`, the variable
 * of that name) as given (unset: default).
 */
async function connectWith(prepared: string | undefined, name = 'PORTER_SOCKET_RESERVE'): Promise<Seen> {
  const servers = await startServers({ mode: 'echo' });
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '' };
    delete env.PORTER_SOCKET_RESERVE;
    delete env.PORTER_PREPARED_SOCKETS;
    if (prepared !== undefined) env[name] = prepared;
    const { stdout } = await run(process.execPath, [script, String(servers.ports[0])], { env, timeout: 20_000 });
    return lastJson<Seen>(stdout);
  } finally {
    await servers.stop();
  }
}

test('after the first connect the reserve fills to 32 ready IPv4 sockets, close-on-exec', async (t) => {
  const seen = await connectWith(undefined);
  // The connected socket, and the reserve filled back to its capacity.
  t.is(seen.added, 1 + 32);
  t.true(seen.allCloseOnExec);
  t.true(seen.allNonBlocking);
  t.is(seen.inherited, 0, 'a spawned process inherits none of them');
  // stats(): the first connect found the reserve empty and made its socket; the second
  // took a ready one.
  t.deepEqual(seen.afterFirst, { capacity: 32, ready: { ipv4: 32, ipv6: 0 }, taken: 0, madeInline: 1 });
  t.is(seen.afterSecond.taken, 1);
  t.is(seen.afterSecond.madeInline, 1);
  t.is(seen.afterSecond.ready.ipv4, 31);
});

test('PORTER_SOCKET_RESERVE sets the reserve size; 0 turns it off; the earlier name still works', async (t) => {
  t.is((await connectWith('8')).added, 1 + 8);
  t.is((await connectWith('4', 'PORTER_PREPARED_SOCKETS')).added, 1 + 4);
  const off = await connectWith('0');
  t.is(off.added, 1);
  t.deepEqual(off.afterSecond, { capacity: 0, ready: { ipv4: 0, ipv6: 0 }, taken: 0, madeInline: 2 });
});
