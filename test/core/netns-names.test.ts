// Host names through the real resolver (dns.lookup, getaddrinfo), with family 4 and 6 and
// hints, from an /etc/hosts the test writes: in namespaces of their own, so that the
// host's /etc/hosts does not matter and no lookup leaves the machine.
import { fileURLToPath } from 'node:url';
import { netnsUnavailableReason, runInNetns } from '../helpers/netns.mjs';
import { testIf } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';

const script = fileURLToPath(new URL('./fixtures/netns-names.mjs', import.meta.url));

interface Seen {
  remoteAddress?: string;
  remoteFamily?: string;
  lease?: string;
  error?: string;
}

// The server listens on :: (dual stack), so IPv4 and IPv4-mapped clients reach it too.
const hosts = ['127.0.0.1 localhost', '::1 localhost', '127.0.0.1 v4only.test', '::1 v6only.test', ''].join('\n');

testIf(netnsUnavailableReason({ mount: true }))(
  'names resolve through dns.lookup with family 4, 6 and hints, and pools are per resolved address',
  async (t) => {
    const run = await runInNetns(script, ['20000 20009'], { hosts, timeoutMs: 45_000 });
    t.is(run.code, 0, run.stderr);
    const r = lastJson<Record<string, Seen> & { pools: string[]; v4onlyMappedLookup: string }>(run.stdout);
    t.log(JSON.stringify(r));
    t.deepEqual(r['localhost6'], { remoteAddress: '::1', remoteFamily: 'IPv6', lease: '::1' });
    t.deepEqual(r['localhost4'], { remoteAddress: '127.0.0.1', remoteFamily: 'IPv4', lease: '127.0.0.1' });
    t.deepEqual(r['v6only'], { remoteAddress: '::1', remoteFamily: 'IPv6', lease: '::1' });
    // An IPv4-only name asked for as IPv6: not found in /etc/hosts, and DNS is out of
    // reach. With V4MAPPED, getaddrinfo answers its IPv4 address mapped into IPv6
    // (::ffff:127.0.0.1), which porter connects to as the IPv4 address it is, in the
    // same pool.
    t.regex(r['v4onlyAs6']?.error ?? '', /^(ENOTFOUND|EAI_AGAIN)$/);
    t.is(r.v4onlyMappedLookup, '::ffff:127.0.0.1');
    t.deepEqual(r['v4onlyMapped'], { remoteAddress: '127.0.0.1', remoteFamily: 'IPv4', lease: '127.0.0.1' });
    t.deepEqual([...r.pools].sort(), ['127.0.0.1', '::1'].sort());
  },
);
