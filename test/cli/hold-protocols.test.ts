/**
 * `porter hold` against real servers, each in a network namespace the test creates
 * (fixtures/hold-scenario.ts): an echo server for --message and its round trips, a server
 * that never answers, --lifetime churn and the aging it leaves, Mosquitto for mqtt:// and
 * mqtts:// (CONNACK counted as opened, publishes delivered back), a ws server for ws:// and
 * wss:// (the upgrade counted as opened, frames echoed).
 */
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { type HoldJson, inNetns } from '../helpers/cli.js';
import { netnsUnavailableReason } from '../helpers/netns.mjs';
import { programsMissing, testIf, which } from '../helpers/requirements.js';
import { lastJson } from '../helpers/run.mjs';

const script = fileURLToPath(new URL('./fixtures/hold-scenario.ts', import.meta.url));

interface Report extends HoldJson {
  churned: number;
  aging_max: number;
  messages_sent?: number;
  messages_received?: number;
  messages_skipped?: number;
  rtt_p50_ms?: number | null;
  rtt_p99_ms?: number | null;
  bytes_sent?: number;
  bytes_received?: number;
}

interface Run {
  code: number;
  stderr: string;
  lines: Report[];
  seen: { accepted: number; open: number };
}

async function scenario(t: ExecutionContext, servers: string, runs: string[][]): Promise<Run[]> {
  const run = await inNetns(t, [JSON.stringify({ servers, runs })], { script, timeoutMs: 120_000 });
  t.is(run.code, 0, run.stderr);
  return lastJson<{ runs: Run[] }>(run.stdout).runs;
}

const report = (run: Run | undefined): Report => {
  const last = run?.lines.at(-1);
  if (last === undefined) throw new Error(`no JSON result: ${run?.stderr}`);
  return last;
};

const netnsTest = testIf(netnsUnavailableReason());
const mqttTest = testIf(
  netnsUnavailableReason() ?? programsMissing({ mosquitto: which('mosquitto'), openssl: which('openssl') }),
);
const tlsTest = testIf(netnsUnavailableReason() ?? programsMissing({ openssl: which('openssl') }));

netnsTest('--message against an echo server: every message comes back, timed; bytes counted both ways', async (t) => {
  const [run] = await scenario(t, 'echo', [
    ['hold', '{target}', '-n', '20', '-d', '2', '--message', 'ping\\n', '--message-rate', '10', '--json'],
  ]);
  t.is(run?.code, 0, run?.stderr);
  const r = report(run);
  t.is(r.opened, 20);
  t.is(run?.seen.accepted, 20);
  t.true((r.messages_sent ?? 0) >= 20, `${r.messages_sent} sent`);
  t.is(r.messages_skipped, 0);
  // The echo returns everything before it ends its side: nothing is lost at the close.
  t.is(r.messages_received, r.messages_sent);
  t.is(r.bytes_sent, 5 * (r.messages_sent ?? 0));
  t.is(r.bytes_received, r.bytes_sent);
  t.true((r.rtt_p50_ms ?? -1) >= 0 && (r.rtt_p50_ms ?? 0) <= (r.rtt_p99_ms ?? -1));
  t.regex(run?.stderr ?? '', /│ messages +│ [\d,]+ sent, [\d,]+ back +│/);
});

netnsTest('--message against a server that never answers: sent, none back, no round trip', async (t) => {
  const [run] = await scenario(t, 'silent', [
    ['hold', '{target}', '-n', '10', '-d', '1', '--message', 'ping', '--message-rate', '20', '--json'],
  ]);
  t.is(run?.code, 0, run?.stderr);
  const r = report(run);
  t.true((r.messages_sent ?? 0) > 0);
  t.is(r.messages_received, 0);
  t.is(r.bytes_received, 0);
  t.is(r.rtt_p99_ms, null);
  t.regex(run?.stderr ?? '', /none came back \(is the peer an echo server\?\)/);
});

netnsTest('--lifetime: each connection is closed after it and another opened; the closed ports age', async (t) => {
  const [run] = await scenario(t, 'echo', [['hold', '{target}', '-n', '20', '-d', '3', '--lifetime', '0.7', '--json']]);
  t.is(run?.code, 0, run?.stderr);
  const r = report(run);
  t.true(r.churned >= 20, `${r.churned} closed after their lifetime`);
  t.is(r.failed, 0);
  t.is(r.dropped, 0);
  // Every churned connection was opened first, and replaced by one connect at most.
  t.true(r.opened >= r.churned);
  t.true(r.opened + r.failed <= r.count + r.churned);
  t.is(run?.seen.accepted, r.opened, 'the server accepted every connection opened');
  // This side closed each churned connection first: its port ages (30 s), none reused.
  t.is(r.pools[0]?.aging, r.churned);
  t.is(r.aging_max, r.churned);
});

mqttTest('mqtt:// against Mosquitto: CONNACK counted as opened, own-topic publishes delivered back', async (t) => {
  const [own, shared] = await scenario(t, 'mosquitto', [
    ['hold', '{url}', '-n', '200', '-d', '1', '--message', 'hello', '--message-rate', '5', '--json'],
    ['hold', '{url}', '-n', '20', '-d', '1', '--message', 'hello', '--topic', 'porter/shared', '--json'],
  ]);
  t.is(own?.code, 0, own?.stderr);
  const r = report(own);
  t.is(r.opened, 200);
  t.is(r.failed, 0);
  t.is(own?.seen.accepted, 200, 'the broker logged 200 clients connected');
  t.is(r.pools[0]?.in_use, 200, "each MQTT client holds one of porter's ports");
  t.true((r.messages_sent ?? 0) >= 200);
  t.true((r.messages_received ?? 0) > 0, 'the broker delivered the publishes back to their clients');
  t.true((r.messages_received ?? 0) <= (r.messages_sent ?? 0));
  t.not(r.rtt_p50_ms, null);
  // A topic shared by every client: publish only, nothing subscribed, no round trip.
  t.is(shared?.code, 0, shared?.stderr);
  const s = report(shared);
  t.is(s.opened, 20);
  t.true((s.messages_sent ?? 0) > 0);
  t.is(s.messages_received, 0);
  t.is(s.rtt_p50_ms, null);
});

mqttTest('mqtts:// against Mosquitto: verified with --ca, the handshake refused without it', async (t) => {
  const [verified, unverified] = await scenario(t, 'mosquitto-tls', [
    ['hold', '{url}', '-n', '30', '--ca', '{ca}', '--servername', 'localhost', '--json'],
    ['hold', '{url}', '-n', '5', '--json'],
  ]);
  t.is(verified?.code, 0, verified?.stderr);
  t.like(report(verified), { opened: 30, failed: 0, tls: true });
  t.is(verified?.seen.accepted, 30);
  t.is(unverified?.code, 1, unverified?.stderr);
  // Mosquitto sends its chain with the test CA in it, which the system does not trust.
  t.like(report(unverified), { opened: 0, failed: 5, errors: { SELF_SIGNED_CERT_IN_CHAIN: 5 } });
  t.is(unverified?.seen.accepted, 0);
});

netnsTest(
  'ws:// against a ws echo server: upgrades counted as opened, frames echoed; a 404 fails by its status',
  async (t) => {
    const [echo, missing, churn] = await scenario(t, 'ws', [
      ['hold', '{url}', '-n', '100', '-d', '1', '--message', 'hi', '--message-rate', '5', '--json'],
      ['hold', 'ws://{target}/nope', '-n', '10', '--json'],
      ['hold', '{url}', '-n', '10', '-d', '2', '--lifetime', '0.5', '--json'],
    ]);
    t.is(echo?.code, 0, echo?.stderr);
    const r = report(echo);
    t.is(r.opened, 100);
    t.is(echo?.seen.accepted, 100, 'the server completed 100 upgrades');
    t.is(r.pools[0]?.in_use, 100);
    t.true((r.messages_sent ?? 0) >= 100);
    t.is(r.messages_received, r.messages_sent, 'every frame came back before the close frame');
    t.is(missing?.code, 1, missing?.stderr);
    t.like(report(missing), { opened: 0, failed: 10, errors: { HTTP_404: 10 } });
    t.is(churn?.code, 0, churn?.stderr);
    const c = report(churn);
    t.true(c.churned >= 10, `${c.churned} churned`);
    t.is(churn?.seen.accepted, c.opened);
  },
);

tlsTest('wss:// against a TLS ws echo server, verified with --ca', async (t) => {
  const [run] = await scenario(t, 'wss', [
    ['hold', '{url}', '-n', '20', '-d', '1', '--ca', '{ca}', '--message', 'hi', '--json'],
  ]);
  t.is(run?.code, 0, run?.stderr);
  const r = report(run);
  t.like(r, { opened: 20, failed: 0, tls: true });
  t.is(run?.seen.accepted, 20);
  t.true((r.messages_received ?? 0) > 0);
});
