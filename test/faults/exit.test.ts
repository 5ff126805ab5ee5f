// The process ends with connects in flight (on the core's reactor, in TLS handshakes, in
// connect loops, in two worker threads): by process.exit(0), or by an exception nobody
// catches. It ends as Node ends it, never by a signal or a native crash. Five times each,
// in a network namespace of the test's own (fixtures/exit.mjs).
import { fileURLToPath } from 'node:url';
import { runInNetns } from '../helpers/netns.mjs';
import { testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';
import { faultsMissing } from './requirements.js';

const script = fileURLToPath(new URL('./fixtures/exit.mjs', import.meta.url));
/** What a native crash or abort prints: Rust's panic message, V8's and Node's fatal errors. */
const crash = /panicked|FATAL|Abort|Segmentation|core dumped|napi_fatal/i;

for (const [how, code, stderr] of [
  ['exit', 0, /^$/],
  ['uncaught', 1, /Error: the fault suite ends this process on purpose/],
] as const) {
  testIf(faultsMissing())(
    `the process ends with 1,400 connects in flight (${how}): exit code ${code}, no crash`,
    async (t) => {
      for (let run = 0; run < 5; run++) {
        const result = await runInNetns(script, [how], { timeoutMs: 60_000 });
        t.is(result.signal, null, result.stderr);
        t.is(result.code, code, result.stderr);
        t.regex(result.stderr, stderr);
        t.notRegex(result.stderr, crash);
        const r = lastJson<{ inFlight: { hang: number; tls: number } }>(result.stdout);
        // In flight when it ended: 1,400 connects waiting on the reactor (1,000 of the
        // main thread, 200 of each worker), 20 TLS handshakes, the connect loops'.
        t.true(r.inFlight.hang >= 1_400 && r.inFlight.tls >= 20, JSON.stringify(r.inFlight));
      }
    },
  );
}
