/**
 * The pure parts of `porter hold` and `porter inspect`, exactly: the connect schedule with
 * its ramp, thresholds against a result, the echo matcher that times messages on a byte
 * stream, the streaming exposition reader fed in every possible split, and text made safe
 * for a terminal.
 */
import test from 'ava';
import { ExpositionError, ExpositionReader, MAX_LINE } from '../../packages/cli/src/exposition.js';
import { EchoMatcher } from '../../packages/cli/src/links.js';
import { Pacer } from '../../packages/cli/src/pacer.js';
import { mergePools } from '../../packages/cli/src/runner.js';
import { safeJson, terminalSafe } from '../../packages/cli/src/sanitize.js';
import { evaluateThresholds, parseThreshold } from '../../packages/cli/src/thresholds.js';

test('the schedule: --rate alone is even; with --ramp the rate rises linearly, then holds', (t) => {
  const even = new Pacer(100, 0);
  t.deepEqual(
    [0, 1, 50, 100].map((k) => even.dueMs(k)),
    [0, 10, 500, 1000],
  );
  // 100/s reached over 2 s: 100 connects in the ramp (its area), then 10 ms apart.
  const ramp = new Pacer(100, 2);
  t.is(ramp.dueMs(0), 0);
  t.is(ramp.dueMs(25), 1000); // N(1 s) = 100 * 1^2 / (2 * 2) = 25
  t.is(ramp.dueMs(100), 2000);
  t.is(ramp.dueMs(200), 3000);
  const gaps = [1, 2, 3, 50, 99].map((k) => ramp.dueMs(k + 1) - ramp.dueMs(k));
  t.deepEqual(
    [...gaps].sort((a, b) => b - a),
    gaps,
    'the gaps shrink through the ramp',
  );
  t.is(ramp.dueMs(150) - ramp.dueMs(149), 10);
  // No limit: everything is due at once.
  t.is(new Pacer(0, 5).dueMs(1000), 0);
});

test('the schedule split over workers: worker i takes slots i, i + n, ...; after a pause no slots are saved up', (t) => {
  const whole = new Pacer(300, 3);
  const workers = [0, 1, 2].map((i) => new Pacer(300, 3, i, 3));
  for (let k = 0; k < 200; k++) {
    for (const [i, w] of workers.entries()) t.is(w.dueMs(k), whole.dueMs(3 * k + i));
  }
  // At 5 s (3 s of ramp, then 2 s at 300/s): slot 450 + 600 = 1050 of the run.
  t.is(whole.firstSlotAt(5000), 1050);
  t.is(workers[1]?.firstSlotAt(5000), 350); // its slots 1, 4, ...: 3 * 350 + 1 = 1051
  t.is(new Pacer(0, 0).firstSlotAt(5000), 0);
});

test('thresholds: each operator against the result, codes of errors and retries counting 0 when absent, null crossed', (t) => {
  const result = {
    failed: 0,
    opened: 10,
    connect_p99_ms: 12.5,
    rtt_p99_ms: null,
    errors: { ETIMEDOUT: 2 },
    retries: {},
  };
  const judge = (...expressions: string[]): boolean[] =>
    evaluateThresholds(
      expressions.map((e) => parseThreshold(e, true)),
      result,
    ).map((r) => r.crossed);
  t.deepEqual(
    judge('failed==0', 'opened!=10', 'opened>9', 'opened>=11', 'connect_p99_ms<12.5', 'connect_p99_ms<=12.5'),
    [false, true, false, true, true, false],
  );
  t.deepEqual(judge('errors.ETIMEDOUT==2', 'errors.ECONNREFUSED==0', 'retries.EADDRINUSE>0'), [false, false, true]);
  t.deepEqual(evaluateThresholds([parseThreshold('rtt_p99_ms<5', true)], result), [
    { expression: 'rtt_p99_ms<5', value: null, crossed: true },
  ]);
  t.deepEqual(parseThreshold(' connect_p99_ms < -1.5 ', false), {
    expression: ' connect_p99_ms < -1.5 ',
    key: 'connect_p99_ms',
    op: '<',
    value: -1.5,
  });
  for (const bad of ['', 'failed', 'failed=0', 'failed==', '==0', 'failed==0x10', 'errors.==1', 'nope<1']) {
    t.throws(() => parseThreshold(bad, true), { code: 'ERR_INVALID_ARG_VALUE' }, bad);
  }
  t.throws(() => parseThreshold('messages_sent>0', false), { message: /with --message only/ });
});

test('the echo matcher: the --send prefix, then each message complete when its last byte is back, in any split', (t) => {
  const prefix = Buffer.from('HELLO\n');
  const message = Buffer.from('ping\n');
  const stream = Buffer.concat([prefix, message, message, message]);
  for (let cut = 0; cut <= stream.length; cut++) {
    for (let cut2 = cut; cut2 <= stream.length; cut2++) {
      const echo = new EchoMatcher(prefix, message);
      const parts = [stream.subarray(0, cut), stream.subarray(cut, cut2), stream.subarray(cut2)];
      t.is(
        parts.reduce((n, p) => n + echo.feed(p), 0),
        3,
      );
    }
  }
  const other = new EchoMatcher(Buffer.alloc(0), message);
  t.is(other.feed(Buffer.from('pi')), 0);
  t.is(other.feed(Buffer.from('nx\n')), -1, 'a byte that differs: not an echo');
  t.is(other.feed(Buffer.from('ping\n')), -1, 'and it stays so');
});

test('the exposition reader: every split of the text gives the same samples; other lines are passed over', (t) => {
  const text =
    '# HELP porter_pools Pools.\n# TYPE porter_pools gauge\nporter_pools 2\r\n' +
    'other_metric{x="ignored \\" } {"} 1\n' +
    'porter_ports_in_use{remote="10.0.0.1:443",local="0.0.0.0"} 7 1700000000000\n' +
    'porter_ports_in_use{remote="[::1]:80",local="é\\n\\"\\\\"} +Inf\n' +
    'porter_connect_duration_seconds_bucket{le="0.001"} 3\nporter_connect_duration_seconds_sum 1.5e-3';
  const bytes = Buffer.from(text);
  const read = (chunks: Buffer[]): unknown[] => {
    const out: unknown[] = [];
    const reader = new ExpositionReader('porter_', (name, labels, value) => out.push([name, { ...labels }, value]));
    for (const c of chunks) reader.write(c);
    reader.end();
    return out;
  };
  const whole = read([bytes]);
  t.deepEqual(whole, [
    ['porter_pools', {}, 2],
    ['porter_ports_in_use', { remote: '10.0.0.1:443', local: '0.0.0.0' }, 7],
    ['porter_ports_in_use', { remote: '[::1]:80', local: 'é\n"\\' }, Number.POSITIVE_INFINITY],
    ['porter_connect_duration_seconds_bucket', { le: '0.001' }, 3],
    ['porter_connect_duration_seconds_sum', {}, 0.0015],
  ]);
  for (let cut = 1; cut < bytes.length; cut++) {
    t.deepEqual(read([bytes.subarray(0, cut), bytes.subarray(cut)]), whole, `cut at ${cut}`);
  }
  t.deepEqual(read([...bytes].map((b) => Buffer.from([b]))), whole, 'one byte at a time');
});

test('the exposition reader: a bad or overlong line of ours is refused; an overlong other line is passed over', (t) => {
  const read = (text: string): void => {
    const reader = new ExpositionReader('porter_', () => {});
    for (let i = 0; i < text.length; i += 4096) reader.write(Buffer.from(text.slice(i, i + 4096)));
    reader.end();
  };
  t.throws(() => read('porter_pools{remote="x} 1\n'), {
    instanceOf: ExpositionError,
    message: /line 1: a label value is not closed/,
  });
  t.throws(() => read('porter_pools\n'), { message: /line 1: "" is not a number/ });
  t.throws(() => read('# ok\nporter_pools{a=b} 1\n'), { message: /line 2: a label is not name="value"/ });
  t.throws(() => read(`porter_pools{remote="${'x'.repeat(MAX_LINE)}"} 1\n`), { message: /longer than 64 KiB/ });
  t.notThrows(() => read(`other{label="${'x'.repeat(4 * MAX_LINE)}"} 1\nporter_pools 1\n`));
});

test('text made safe for a terminal: controls shown as escapes; JSON escapes what JSON.stringify leaves raw', (t) => {
  t.is(
    terminalSafe('a\u001b]0;title\u0007b\u001b[2Jc\u009bd\u202ee\u007f'),
    'a\\x1b]0;title\\x07b\\x1b[2Jc\\x9bd\\u202ee\\x7f',
  );
  t.is(terminalSafe('10.0.0.1:443 é ✓'), '10.0.0.1:443 é ✓');
  const value = { label: '\u001b[31m\u009b1m\u202e\u2028' };
  const json = safeJson(value);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for them is the point
  t.false(/[\u0000-\u001f\u007f-\u009f\u202e\u2028]/.test(json), json);
  t.deepEqual(JSON.parse(json), value, 'the same value, read back');
});

test('pools of several processes merge: in use and aging add up, free is what is left of the range (or adds up for slices)', (t) => {
  const a = [{ remote: 'r:1', local: '0.0.0.0', in_use: 10, aging: 2, free: 52 }];
  const b = [
    { remote: 'r:1', local: '0.0.0.0', in_use: 20, aging: 0, free: 44 },
    { remote: 'r:2', local: '0.0.0.0', in_use: 1, aging: 0, free: 63 },
  ];
  t.deepEqual(mergePools([a, b]), [
    { remote: 'r:1', local: '0.0.0.0', in_use: 30, aging: 2, free: 32 },
    { remote: 'r:2', local: '0.0.0.0', in_use: 1, aging: 0, free: 63 },
  ]);
  t.is(mergePools([a]), a);
  // Disjoint slices of the range (--workers): the free ports add up too.
  t.deepEqual(mergePools([a, b], true), [
    { remote: 'r:1', local: '0.0.0.0', in_use: 30, aging: 2, free: 96 },
    { remote: 'r:2', local: '0.0.0.0', in_use: 1, aging: 0, free: 63 },
  ]);
});
