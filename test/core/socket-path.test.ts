import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { lastJson } from '../helpers/run.mjs';
import { startServers } from '../helpers/servers.mjs';

const script = fileURLToPath(new URL('./fixtures/socket-path.mjs', import.meta.url));
const run = promisify(execFile);

interface Seen {
  socketPath: 'handle' | 'fd';
  echoed: string;
  isNetSocket: boolean;
  localPort: number;
  leasePort: number;
  localAddress: string;
  socketLocalAddress: string;
  released: boolean;
  warnings: string[];
}

/** Runs the fixture in a fresh Node process with `execArgv` and `env` added. */
async function connectIn(execArgv: string[], env: Record<string, string> = {}, args: string[] = []): Promise<Seen> {
  const servers = await startServers({ mode: 'echo' });
  try {
    const { stdout } = await run(process.execPath, [...execArgv, script, String(servers.ports[0]), ...args], {
      env: { ...process.env, NODE_OPTIONS: '', ...env },
      timeout: 20_000,
    });
    return lastJson<Seen>(stdout);
  } finally {
    await servers.stop();
  }
}

function assertWorking(t: ExecutionContext, seen: Seen): void {
  t.true(seen.isNetSocket);
  t.is(seen.echoed, 'ping');
  t.is(seen.leasePort, seen.localPort);
  // The pool is on the unspecified address; the lease reports the address the kernel chose.
  t.is(seen.localAddress, '127.0.0.1');
  t.is(seen.localAddress, seen.socketLocalAddress);
  t.true(seen.released);
}

test('by default porter opens the descriptor on a TCP handle of its own', async (t) => {
  const seen = await connectIn([]);
  t.is(seen.socketPath, 'handle');
  assertWorking(t, seen);
});

// The control for the tests below: under --pending-deprecation a process.binding() call
// does print DEP0111, and the fixture sees it, so their empty warning lists mean something.
test('under --pending-deprecation a process.binding() call is seen as DEP0111', async (t) => {
  const seen = await connectIn(['--pending-deprecation'], {}, ['call-binding']);
  t.deepEqual(seen.warnings, ['DEP0111']);
  t.is(seen.socketPath, 'fd');
  assertWorking(t, seen);
});

test('under --pending-deprecation porter uses new Socket({ fd }) and prints no DEP0111', async (t) => {
  const seen = await connectIn(['--pending-deprecation']);
  t.is(seen.socketPath, 'fd');
  assertWorking(t, seen);
  t.deepEqual(seen.warnings, []);
});

test('NODE_OPTIONS=--pending-deprecation is seen too', async (t) => {
  const seen = await connectIn([], { NODE_OPTIONS: '--pending-deprecation' });
  t.is(seen.socketPath, 'fd');
  assertWorking(t, seen);
  t.deepEqual(seen.warnings, []);
});

test('PORTER_SOCKET_FROM_FD=1 selects new Socket({ fd })', async (t) => {
  const seen = await connectIn([], { PORTER_SOCKET_FROM_FD: '1' });
  t.is(seen.socketPath, 'fd');
  assertWorking(t, seen);
});
