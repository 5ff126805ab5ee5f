/**
 * The live view in a real terminal: `porter hold` runs in a detached tmux session, and
 * the test reads the screen with capture-pane while it runs and after it ends. And
 * `porter inspect` on that terminal against an endpoint whose labels carry escape
 * sequences: they must neither set the window's title nor clear the screen.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { bin, requireTool } from '../helpers/cli.js';
import { findFreePortBlock } from '../helpers/ports.js';
import { startServers } from '../helpers/servers.mjs';
import { delay } from '../helpers/wait.js';

/** A tmux server of the test's own, with one session running `command`. */
function tmuxSession(
  t: ExecutionContext,
  command: string,
): { screen(): string; visible(): string; title(): string; keys(...keys: string[]): void } {
  const socket = `porter-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  tmux('new-session', '-d', '-s', 'porter', '-x', '200', '-y', '60', command);
  t.teardown(() => {
    try {
      tmux('kill-server');
    } catch {
      // already gone
    }
  });
  return {
    screen: () => tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', 'porter'),
    visible: () => tmux('capture-pane', '-p', '-J', '-t', 'porter'),
    title: () => tmux('display-message', '-p', '-t', 'porter', '#{pane_title}').trim(),
    keys: (...keys: string[]) => {
      tmux('send-keys', '-t', 'porter', ...keys);
    },
  };
}

/** Polls the screen until `pattern` shows, or fails after `ms`. */
async function waitFor(screen: () => string, pattern: RegExp, ms: number): Promise<RegExpExecArray> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const match = pattern.exec(screen());
    if (match) return match;
    await delay(50);
  }
  throw new Error(`${pattern} did not show within ${ms} ms; the screen:\n${screen()}`);
}

const shell = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

test('hold on a terminal: a live progress line while it runs, then the summary table and histogram', async (t) => {
  requireTool(t, 'tmux');
  const servers = await startServers({ mode: 'echo' });
  t.teardown(() => servers.stop());
  const range = await findFreePortBlock(3000);
  const target = `127.0.0.1:${servers.ports[0]}`;
  const command = [
    process.execPath,
    bin,
    'hold',
    target,
    '-n',
    '3000',
    '--rate',
    '1000',
    '--range',
    `${range[0]}-${range[1]}`,
  ]
    .map(shell)
    .join(' ');
  const term = tmuxSession(t, `${command}; echo porter-exit=$?; sleep 60`);

  // While it runs: the bar redrawn in place, with a count below the total.
  const live = await waitFor(
    term.screen,
    /^connections +[█░]+ ([\d,]+)\/3,000 \| opened ([\d,]+) \| failed 0 \| [\d,]+\/s \| connect p50 [\d.]+ m?s p99 [\d.]+ m?s \| opening *$/m,
    15_000,
  );
  const done = Number((live[1] as string).replaceAll(',', ''));
  t.true(done > 0 && done < 3000, `caught mid-run at ${done}`);
  t.regex(
    term.screen(),
    new RegExp(
      `^${target.replaceAll('.', '\\.')} from 0\\.0\\.0\\.0 +[█░]+ in use [\\d,]+ \\| aging \\d+ \\| free [\\d,]+ *$`,
      'm',
    ),
  );

  await waitFor(term.screen, /^porter-exit=0$/m, 30_000);
  const screen = term.screen();
  t.log(screen);
  // One progress line per bar, redrawn in place: not one per redraw.
  t.is(screen.match(/^connections /gm)?.length, 1);
  t.regex(screen, /^connections +█+ 3,000\/3,000 \| opened 3,000 \| failed 0 .*\| done *$/m);
  t.regex(screen, /^porter hold: all 3,000 connections opened$/m);
  t.regex(screen, /│ opened +│ 3,000 +│/);
  t.regex(screen, /│ destination +│ local address +│ in use │ aging │ +free │/);
  t.regex(screen, new RegExp(`│ ${target.replaceAll('.', '\\.')} │ 0\\.0\\.0\\.0 +│ +3,000 │`));
  t.regex(screen, /^Connect latency \(connections per bucket\)$/m);
  t.regex(screen, /^≤[\d.]+ m?s +╢█* [\d]+$/m);
});

test('hold on a terminal: Ctrl-C while holding closes everything and still prints the summary', async (t) => {
  requireTool(t, 'tmux');
  const servers = await startServers({ mode: 'echo' });
  t.teardown(() => servers.stop());
  const range = await findFreePortBlock(50);
  const command = [
    process.execPath,
    bin,
    'hold',
    `127.0.0.1:${servers.ports[0]}`,
    '-n',
    '50',
    '-d',
    '60',
    '--range',
    `${range[0]}-${range[1]}`,
  ]
    .map(shell)
    .join(' ');
  const term = tmuxSession(t, `${command}; echo porter-exit=$?; sleep 60`);
  await waitFor(term.screen, /\| holding 50, \d+ s left *$/m, 15_000);
  term.keys('C-c');
  await waitFor(term.screen, /^porter-exit=130$/m, 15_000);
  const screen = term.screen();
  t.regex(screen, /^porter hold: interrupted: 50 of 50 connects tried$/m);
  t.regex(screen, /│ opened +│ 50 +│/);
  t.regex(screen, /\| interrupted *$/m);
});

test('inspect on a terminal: escape sequences in labels are shown, not obeyed (no title set, no screen cleared)', async (t) => {
  requireTool(t, 'tmux');
  // OSC 2 sets the window's title, ED 2 clears the screen, SGR colours, CSI in its C1 form.
  const evil = 'evil\u001b]2;PWNED\u0007\u001b[2J\u001b[31mred\u009b1m';
  const body = [
    'porter_pools 1',
    'porter_allocations_total 1',
    `porter_ports_in_use{remote="${evil}",local="0.0.0.0"} 1`,
    `porter_ports_aging{remote="${evil}",local="0.0.0.0"} 0`,
    `porter_ports_free{remote="${evil}",local="0.0.0.0"} 9`,
    `porter_connect_errors_total{code="E\u001b[2JVIL"} 2`,
    '',
  ].join('\n');
  const server = createServer((_req, res) => res.end(body));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  const command = [process.execPath, bin, 'inspect', url].map(shell).join(' ');
  const term = tmuxSession(
    t,
    `printf '\\033]2;porter-test\\007'; echo before-inspect; ${command}; echo porter-exit=$?; sleep 60`,
  );
  await waitFor(term.screen, /^porter-exit=0$/m, 15_000);
  const screen = term.visible();
  t.log(screen);
  t.is(term.title(), 'porter-test', 'the title the shell set is still there');
  t.regex(screen, /^before-inspect$/m, 'the screen was not cleared');
  t.true(screen.includes('evil\\x1b]2;PWNED\\x07\\x1b[2J\\x1b[31mred\\x9b1m'), 'the label, escaped');
  t.true(screen.includes('E\\x1b[2JVIL 2'), 'the error code, escaped');
});
