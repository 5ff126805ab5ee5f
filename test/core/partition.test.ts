// partitionRange(range, index, count): one range split between the processes of a
// cluster, each with its own slice and no port shared. (Its validation of bad input is
// tested with the options.)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { partitionRange } from '@porter/core';
import test from 'ava';
import { findFreePortBlock } from '../helpers/ports.js';
import { startServers } from '../helpers/servers.mjs';

const script = fileURLToPath(new URL('./fixtures/partition.mjs', import.meta.url));

const ports = ([first, last]: readonly [number, number]): number[] =>
  Array.from({ length: last - first + 1 }, (_, i) => first + i);

test('the slices are consecutive, disjoint, cover the range, and the last takes the remainder', (t) => {
  for (const [range, count] of [
    [[1024, 65535], 1],
    [[1024, 65535], 7],
    [[20_000, 20_099], 4],
    [[20_000, 20_010], 3],
    [[30_000, 30_004], 5],
  ] as [[number, number], number][]) {
    const slices = Array.from({ length: count }, (_, i) => partitionRange(range, i, count));
    const size = Math.floor((range[1] - range[0] + 1) / count);
    t.is(slices[0]?.[0], range[0]);
    t.is(slices.at(-1)?.[1], range[1]);
    for (let i = 0; i < count; i++) {
      const [first, last] = slices[i] as [number, number];
      if (i > 0) t.is(first, (slices[i - 1] as [number, number])[1] + 1, `slice ${i} follows slice ${i - 1}`);
      if (i < count - 1) t.is(last - first + 1, size, `slice ${i} of ${count}`);
      else t.is(last - first + 1, range[1] - range[0] + 1 - size * (count - 1), 'the last takes the remainder');
    }
    t.deepEqual(slices.flatMap(ports), ports(range));
  }
});

test('two processes with a slice each connect to one destination from every port, none shared', async (t) => {
  const servers = await startServers();
  t.teardown(() => servers.stop());
  const range = await findFreePortBlock(12);
  const children = [0, 1].map((index) =>
    spawn(
      process.execPath,
      [script, String(range[0]), String(range[1]), String(index), '2', String(servers.ports[0])],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    ),
  );
  t.teardown(() => {
    for (const child of children) child.kill();
  });
  const seen = await Promise.all(
    children.map(async (child) => {
      let out = '';
      for await (const chunk of child.stdout) {
        out += String(chunk);
        if (out.includes('\n')) break;
      }
      return JSON.parse(out) as { slice: [number, number]; ports: number[]; error?: string };
    }),
  );
  const [a, b] = seen as [(typeof seen)[0], (typeof seen)[0]];
  t.deepEqual(a.slice, partitionRange(range, 0, 2));
  t.deepEqual(b.slice, partitionRange(range, 1, 2));
  // Each process used up its own slice, every connection open at once in both...
  t.deepEqual(
    [...a.ports].sort((x, y) => x - y),
    ports(a.slice),
  );
  t.deepEqual(
    [...b.ports].sort((x, y) => x - y),
    ports(b.slice),
  );
  t.is(a.error, 'ERR_PORTER_EXHAUSTED');
  t.is(b.error, 'ERR_PORTER_EXHAUSTED');
  // ...and together they hold the whole range, no port twice.
  t.deepEqual(
    [...a.ports, ...b.ports].sort((x, y) => x - y),
    ports(range),
  );
  for (const child of children) child.stdin.end();
  await Promise.all(children.map((child) => (child.exitCode === null ? once(child, 'exit') : undefined)));
  t.deepEqual(
    children.map((c) => c.exitCode),
    [0, 0],
  );
});
