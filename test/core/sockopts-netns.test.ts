// socketOptions on real sockets, in network namespaces the tests create (the fixture
// fixtures/sockopts.ts runs one scenario per namespace, whose ephemeral range is
// 40000-40999): every option read back with getsockopt on connected sockets of both
// families, on ports porter binds and on ports the kernel picks; then what the options
// do: SO_MARK through policy routing and SO_BINDTODEVICE through a device (a peer
// namespace reached by two veth pairs), TCP_USER_TIMEOUT against a peer that stops
// answering (nftables), SO_LINGER zero against TIME_WAIT, IP_TRANSPARENT and IP_FREEBIND
// with a source address that is not the host's, TCP_FASTOPEN_CONNECT by the kernel's
// Fast Open counters; and options the kernel refuses, with and without CAP_NET_ADMIN.
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { type NetnsOptions, netnsUnavailableReason, runInNetns } from '../helpers/netns.mjs';
import { vethUnavailableReason } from '../helpers/peer-netns.js';
import { commandMissing, testIf, which } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';
import { type PorterSocketOptions, sockoptReaderMissing } from '../helpers/sockopts.js';

const script = fileURLToPath(new URL('./fixtures/sockopts.ts', import.meta.url));
const EPHEMERAL = { 'net.ipv4.ip_local_port_range': '40000 40999' };

/** The first thing missing here, if any. */
const missing = (...checks: (() => string | undefined)[]): string | undefined => {
  for (const check of checks) {
    const reason = check();
    if (reason !== undefined) return reason;
  }
  return undefined;
};
const netns = (): string | undefined => netnsUnavailableReason();

async function scenario<T>(t: ExecutionContext, name: string, options: NetnsOptions = {}, args: string[] = []) {
  const run = await runInNetns(script, [name, ...args], {
    timeoutMs: 90_000,
    ...options,
    sysctls: { ...EPHEMERAL, ...options.sysctls },
  });
  t.is(run.code, 0, run.stderr);
  const result = lastJson<T>(run.stdout);
  t.log(JSON.stringify(result));
  return result;
}

const inRange = (port: number, [first, last]: [number, number]): boolean => port >= first && port <= last;

interface Readback {
  defaultCongestion: string;
  sockets: {
    family: 4 | 6;
    how: string;
    localPort: number;
    kernelPicks: number;
    kernelFallbacks: number;
    options: PorterSocketOptions;
  }[];
}

const EVERY: PorterSocketOptions = {
  userTimeoutMs: 2_500,
  keepAlive: true,
  keepIdle: 13,
  keepIntvl: 4,
  keepCnt: 5,
  mark: 42,
  device: 'lo',
  tos: 0x28,
  freebind: true,
  transparent: true,
  linger: { on: true, seconds: 0 },
  fastOpen: true,
  congestion: 'reno',
};

testIf(missing(netns, sockoptReaderMissing))(
  'every option is on every socket: ports porter binds and ports the kernel picks, IPv4 and IPv6',
  async (t) => {
    const r = await scenario<Readback>(t, 'readback');
    t.is(r.sockets.length, 10);
    for (const family of [4, 6] as const) {
      const of = (how: string) => {
        const found = r.sockets.find((s) => s.family === family && s.how === how);
        if (found === undefined) throw new Error(`no socket '${how}' for IPv${family}`);
        return found;
      };
      const bound = of('porter binds');
      t.true(inRange(bound.localPort, [20_000, 20_009]));
      t.is(bound.kernelPicks + bound.kernelFallbacks, 0);
      const picked = of('connect picks');
      t.true(inRange(picked.localPort, [40_000, 40_999]));
      t.is(picked.kernelPicks, 1, 'the kernel picked the port at connect()');
      const fallback = of('bind(ip, 0) then connect picks');
      t.true(inRange(fallback.localPort, [40_000, 40_999]));
      t.is(fallback.kernelFallbacks, 1, 'the kernel picked the port after IP_BIND_ADDRESS_NO_PORT');
      for (const s of [bound, picked, fallback]) t.deepEqual(s.options, EVERY, `IPv${family} ${s.how}`);

      // Without socketOptions: what the kernel gives a new socket.
      const none = of('none');
      t.deepEqual(none.options, {
        ...none.options,
        userTimeoutMs: 0,
        keepAlive: false,
        mark: 0,
        device: '',
        tos: 0,
        freebind: false,
        transparent: false,
        linger: { on: false, seconds: 0 },
        fastOpen: false,
        congestion: r.defaultCongestion,
      });
      t.notDeepEqual(
        [none.options.keepIdle, none.options.keepIntvl, none.options.keepCnt],
        [EVERY.keepIdle, EVERY.keepIntvl, EVERY.keepCnt],
      );
      // The connect's own options over the Porter's, field by field; the value a new
      // socket has undoes the Porter's.
      t.deepEqual(of('overridden').options, {
        ...EVERY,
        mark: 7,
        keepAlive: false,
        keepIdle: none.options.keepIdle,
        keepIntvl: none.options.keepIntvl,
        keepCnt: none.options.keepCnt,
        linger: { on: false, seconds: 0 },
        tos: 0,
        congestion: r.defaultCongestion,
      });
    }
  },
);

testIf(missing(netns, vethUnavailableReason, () => commandMissing('nsenter', ['--version'])))(
  'SO_MARK takes the policy route, SO_BINDTODEVICE the device: the peer sees where from',
  async (t) => {
    const r = await scenario<Record<string, string>>(t, 'routing');
    const path1 = { 4: '10.97.1.1', 6: 'fd97:1::1' };
    const path2 = { 4: '10.97.2.1', 6: 'fd97:2::1' };
    for (const family of [4, 6] as const) {
      t.like(r, {
        [`${family} plain`]: path1[family],
        [`${family} mark`]: path2[family],
        [`${family} mark undone by the connect`]: path1[family],
        [`${family} mark, port picked by connect`]: path2[family],
        [`${family} mark on the connect`]: path2[family],
        [`${family} bindToDevice`]: path2[family],
        [`${family} bindToDevice undone by the connect`]: path1[family],
        [`${family} bindToDevice, port picked by connect`]: path2[family],
      });
    }
    t.is(Object.keys(r).length, 16);
  },
);

interface UserTimeout {
  elapsedMs: number;
  errors: Record<string, string>;
  withoutStillOpen: boolean;
  withoutState: boolean;
}

/** nftables' nft (not the nft of node_modules/.bin). */
const nftMissing = (): string | undefined => {
  const nft = which('nft');
  return nft === undefined ? 'nft (nftables) not found' : commandMissing(nft, ['--version']);
};

testIf(missing(netns, nftMissing))(
  'TCP_USER_TIMEOUT: a peer that stops answering fails the socket with ETIMEDOUT; one without it stays open',
  async (t) => {
    const r = await scenario<Record<'4' | '6', UserTimeout>>(t, 'user-timeout');
    for (const family of ['4', '6'] as const) {
      const f = r[family];
      t.deepEqual(f.errors, { withTimeout: 'ETIMEDOUT' }, `IPv${family}`);
      t.true(f.withoutStillOpen, `IPv${family}: the socket without it is open`);
      t.true(f.withoutState, `IPv${family}: and established in the kernel`);
      // Not before the timeout (kernel clock ticks aside); load only makes it later.
      t.true(f.elapsedMs >= 1_950, `IPv${family}: failed after ${f.elapsedMs} ms`);
    }
  },
);

interface Pool {
  inUse: number[];
  aging: number[];
  free: number;
}

testIf(missing(netns, sockoptReaderMissing))(
  'lingerZeroOnClose: destroy() leaves no TIME_WAIT and the port is free at once; end() answered by the peer ages it',
  async (t) => {
    const r = await scenario<Record<string, Record<string, unknown>>>(t, 'linger');
    for (const [family, base] of [
      [4, 20_000],
      [6, 20_010],
    ] as const) {
      t.deepEqual(r[`${family} lingerZeroOnClose, destroy()`], {
        linger: { on: true, seconds: 0 },
        released: true,
        pools: [{ inUse: [], aging: [], free: 1 }],
        timeWaits: [],
        serverSaw: 'ECONNRESET',
        again: base,
      });
      t.deepEqual(r[`${family} without, destroy()`], {
        linger: { on: false, seconds: 0 },
        released: true,
        pools: [{ inUse: [], aging: [base + 1], free: 0 }],
        timeWaits: [base + 1],
        again: 'ERR_PORTER_EXHAUSTED',
      });
      t.deepEqual(r[`${family} lingerZeroOnClose, end() answered by the peer`], {
        released: true,
        pools: [{ inUse: [], aging: [base + 2], free: 0 }],
        timeWaits: [base + 2],
      });
      const picked = r[`${family} lingerZeroOnClose, port picked by connect`] as {
        picked: number;
        released: boolean;
        pools: Pool[];
        timeWaits: number[];
      };
      t.true(inRange(picked.picked, [40_000, 40_999]));
      t.true(picked.released);
      t.deepEqual(
        picked.pools.map((p) => [p.inUse, p.aging]),
        [[[], []]],
      );
      t.deepEqual(picked.timeWaits, []);
    }
  },
);

interface Failure {
  code: string;
  errno: number;
  syscall: string;
  option?: string;
  message: string;
  address?: string;
  port?: number;
  localPort?: number;
}

interface Refused {
  error: Failure;
  pools: Pool[];
  connectErrors: Record<string, number>;
  next: number | string;
  kernel: { error: Failure; pools: Pool[]; allocations: number };
}

function checkRefused(t: ExecutionContext, r: Record<string, unknown>, cases: [string, string, number][]): void {
  for (const family of [4, 6] as const) {
    const host = family === 4 ? '127.0.0.1' : '::1';
    for (const [i, [name, code, errno]] of cases.entries()) {
      const c = r[`${family} ${name}`] as Refused;
      const option = family === 6 && name === 'IP_TRANSPARENT' ? 'IPV6_TRANSPARENT' : name;
      for (const error of [c.error, c.kernel.error]) {
        t.like(error, { code, errno: -errno, syscall: 'setsockopt', option, address: host }, `IPv${family} ${name}`);
        t.true(error.message.startsWith(`setsockopt ${option} ${code} `), error.message);
        t.is(error.localPort, undefined, 'nothing was bound');
      }
      // Nothing held, nothing aging: the one port is taken at once by the next connect.
      t.deepEqual(c.pools, [{ inUse: [], aging: [], free: 1 }]);
      t.deepEqual(c.connectErrors, { [code]: 1 });
      t.is(c.next, 20_000 + family * 10 + i);
      t.deepEqual(
        c.kernel.pools.map((p) => [p.inUse, p.aging]),
        [[[], []]],
      );
      t.is(c.kernel.allocations, 0, 'the kernel picked no port');
    }
  }
}

testIf(missing(netns))(
  'an option the kernel refuses (ENODEV, ENOENT) fails the connect naming it, and leaks no port',
  async (t) => {
    const r = await scenario<Record<string, unknown>>(t, 'refused');
    checkRefused(t, r, [
      ['SO_BINDTODEVICE', 'ENODEV', 19],
      ['TCP_CONGESTION', 'ENOENT', 2],
    ]);
  },
);

const NET_ADMIN = 12n;
const NET_RAW = 13n;

testIf(missing(netns, () => commandMissing('setpriv', ['--version'])))(
  'without CAP_NET_ADMIN, SO_MARK and IP_TRANSPARENT fail with EPERM, and a mark of 0 needs no privilege',
  async (t) => {
    const drop = '-net_admin,-net_raw';
    const r = await scenario<Record<string, unknown>>(
      t,
      'refused',
      { prefix: ['setpriv', `--inh-caps=${drop}`, `--bounding-set=${drop}`] },
      ['unprivileged'],
    );
    const caps = BigInt(`0x${r.capabilities as string}`);
    t.is((caps >> NET_ADMIN) & 1n, 0n, 'CAP_NET_ADMIN was dropped');
    t.is((caps >> NET_RAW) & 1n, 0n, 'CAP_NET_RAW was dropped');
    checkRefused(t, r, [
      ['SO_MARK', 'EPERM', 1],
      ['IP_TRANSPARENT', 'EPERM', 1],
    ]);
  },
);

interface Nonlocal {
  error?: Failure;
  serverSaw?: string;
  lease?: string;
  pools: Pool[];
}

testIf(missing(netns))(
  'transparent sends from an address that is not the host’s; freebind binds it (IPv6 also sends from it)',
  async (t) => {
    const r = await scenario<Record<string, Nonlocal>>(t, 'nonlocal');
    const source = { 4: '10.95.0.5', 6: 'fd95::5' };
    for (const family of [4, 6] as const) {
      const free = [{ inUse: [], aging: [], free: 1 }];
      const none = r[`${family} none`];
      t.like(none?.error, { code: 'EADDRNOTAVAIL', syscall: 'bind' }, `IPv${family}`);
      t.deepEqual(none?.pools, free);
      const transparent = r[`${family} transparent`];
      t.is(transparent?.error, undefined);
      t.is(transparent?.serverSaw, source[family]);
      t.is(transparent?.lease, source[family]);
    }
    // IP_FREEBIND lets bind() take the address; IPv4 still will not route from it
    // without IP_TRANSPARENT (ENETUNREACH at connect(), before any SYN: the port is free
    // at once), IPv6 does.
    t.like(r['4 freebind']?.error, { code: 'ENETUNREACH', syscall: 'connect' });
    t.deepEqual(r['4 freebind']?.pools, [{ inUse: [], aging: [], free: 1 }]);
    t.is(r['6 freebind']?.error, undefined);
    t.is(r['6 freebind']?.serverSaw, source[6]);
  },
);

testIf(missing(netns))(
  'fastOpen: once the server gave a cookie, the connect resolves before the handshake and the SYN carries the data',
  async (t) => {
    // 0x403: Fast Open for clients and servers, on every listener (Node sets no TCP_FASTOPEN).
    const r = await scenario<Record<string, unknown[]>>(t, 'fast-open', {
      sysctls: { 'net.ipv4.tcp_fastopen': 0x403 },
    });
    for (const family of ['4', '6']) {
      t.deepEqual(
        r[family],
        [
          // The first connect asks for a cookie: an ordinary handshake.
          { fastOpen: true, peerKnownAtConnect: true, echoed: 'hello', active: 0, passive: 0 },
          // Then the SYN carries the data, which the server takes (TCPFastOpenActive and
          // TCPFastOpenPassive), and the socket has no peer until the SYN-ACK.
          { fastOpen: true, peerKnownAtConnect: false, echoed: 'hello', active: 1, passive: 1 },
          // Turned off by the connect's own options: an ordinary handshake again.
          { fastOpen: false, peerKnownAtConnect: true, echoed: 'hello', active: 0, passive: 0 },
        ],
        `IPv${family}`,
      );
    }
  },
);
