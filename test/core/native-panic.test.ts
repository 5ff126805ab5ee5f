// A panic in the native addon reaches JavaScript as an error with the code
// ERR_PORTER_INTERNAL; the process goes on, and so does the addon.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { lastJson } from '../helpers/run.mjs';

const script = fileURLToPath(new URL('./fixtures/native-panic.mjs', import.meta.url));

interface Seen {
  returned?: boolean;
  error?: { name: string; code: string; message: string; cause?: string };
  second?: string;
  after: { port: number; released: boolean; pools: number };
}

test('panicForTest: ERR_PORTER_INTERNAL, no abort, the addon keeps working', async (t) => {
  const { code, signal, stdout, stderr } = await new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>((resolve) => {
    const child = execFile(
      process.execPath,
      [script],
      { env: { ...process.env, NODE_OPTIONS: '', RUST_BACKTRACE: '0' }, timeout: 30_000 },
      (_err, out, err) => resolve({ code: child.exitCode, signal: child.signalCode, stdout: out, stderr: err }),
    );
  });
  t.is(signal, null, `the process was killed by ${signal}: ${stderr}`);
  t.is(code, 0, stderr);
  // The panic really happened: Rust's panic hook reported it.
  t.regex(stderr, /panicked at .*\n.*deliberate panic 42/);
  const seen = lastJson<Seen>(stdout);
  t.is(seen.returned, undefined, 'the call did not return');
  t.is(seen.error?.code, 'ERR_PORTER_INTERNAL');
  t.is(seen.error?.name, 'PorterError');
  t.regex(seen.error?.message ?? '', /deliberate panic 42/);
  t.regex(seen.error?.cause ?? '', /deliberate panic 42/, 'the napi error is kept as the cause');
  t.is(seen.second, 'ERR_PORTER_INTERNAL');
  t.deepEqual(seen.after, { port: seen.after.port, released: true, pools: 1 });
  t.true(seen.after.port === 20000 || seen.after.port === 20001);
});
