// IPv6 link-local addresses with a scope (`fe80::1%lo`), as net.connect takes them: in a
// namespace of the test's own whose loopback gets fe80::1.
import { fileURLToPath } from 'node:url';
import { netnsUnavailableReason, runInNetns } from '../helpers/netns.mjs';
import { testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';

const script = fileURLToPath(new URL('./fixtures/link-local.mjs', import.meta.url));

interface Seen {
  localAddress?: string;
  remoteAddress?: string;
  lease?: string;
  error?: string;
}
interface Thrown {
  returned?: boolean;
  error?: string;
  name?: string;
}
interface Result {
  index: number;
  byName: Seen;
  byIndex: Seen;
  fromScopedSource: Seen;
  withoutScope: Seen;
  netWithoutScope: string;
  unknownInterface: Thrown;
  unknownLocal: Thrown;
  unknownSource: Thrown;
  unknownIndex: Thrown;
  unknownIndexLocal: Thrown;
  unknownIndexSource: Thrown;
  pools: string[];
  oneFlow: number[];
  globalScope: string[];
}

testIf(netnsUnavailableReason())('link-local destinations and sources with a scope, by name or index', async (t) => {
  const run = await runInNetns(script, [], { timeoutMs: 45_000 });
  t.is(run.code, 0, run.stderr);
  const r = lastJson<Result>(run.stdout);
  t.log(JSON.stringify(r));
  for (const seen of [r.byName, r.byIndex, r.fromScopedSource]) {
    t.is(seen.error, undefined);
    t.is(seen.remoteAddress, 'fe80::1%lo');
    t.is(seen.localAddress, 'fe80::1%lo');
    t.is(seen.lease, 'fe80::1%lo');
  }
  // Without a scope the kernel cannot tell the interface: porter answers as net does.
  t.not(r.netWithoutScope, 'connected');
  t.is(r.withoutScope.error, r.netWithoutScope);
  // An interface the host lacks, by name or by index, is bad input, thrown at the call.
  const unknown = [r.unknownInterface, r.unknownLocal, r.unknownSource];
  for (const thrown of [...unknown, r.unknownIndex, r.unknownIndexLocal, r.unknownIndexSource]) {
    t.deepEqual(thrown, { error: 'ERR_INVALID_IP_ADDRESS', name: 'TypeError' });
  }
  // One pool per scoped destination, shown with the interface's name.
  t.deepEqual([...new Set(r.pools)].sort(), [':: fe80::1', ':: fe80::1%lo', 'fe80::1%lo fe80::1%lo']);
  t.deepEqual(r.oneFlow, [2]);
  t.deepEqual(r.globalScope, ['::1']);
});
