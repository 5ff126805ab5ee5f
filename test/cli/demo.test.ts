import { spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { bin, type HoldJson, porter, root } from '../helpers/cli.js';
import { findFreePortBlock } from '../helpers/ports.js';
import { lastJson } from '../helpers/run.mjs';

test('demo: two destinations through one range, each with every port of it', async (t) => {
  const range = await findFreePortBlock(300);
  const run = await porter(['demo', '--count', '300', '--first-port', String(range[0]), '--json']);
  t.is(run.code, 0, run.stderr);
  const r = lastJson<HoldJson>(run.stdout);
  t.is(r.opened, 600);
  t.is(r.failed, 0);
  t.is(r.pools.length, 2);
  for (const pool of r.pools) t.like(pool, { local: '0.0.0.0', in_use: 300, free: 0 });
  t.regex(run.stderr, /porter demo: 300 connections to each of 127\.0\.0\.1:\d+ and 127\.0\.0\.1:\d+/);
  t.regex(run.stderr, /600 connections from 300 local ports/);
  t.notRegex(run.stderr, /MaxListenersExceededWarning|\(node:\d+\)/);
});

test('before the build: --help runs from the sources; without them the bin says how to build', async (t) => {
  const cli = join(bin, '..', '..');
  // A copy of the package without dist/, inside the repository so that its dev
  // dependencies (tsx, commander) resolve as they do in a checkout after npm ci.
  const cache = join(root, 'node_modules', '.cache');
  await mkdir(cache, { recursive: true });
  const unbuilt = await mkdtemp(join(cache, 'porter-cli-unbuilt-'));
  t.teardown(() => rm(unbuilt, { recursive: true, force: true }));
  for (const part of ['bin', 'src', 'package.json'])
    await cp(join(cli, part), join(unbuilt, part), { recursive: true });
  const help = spawnSync(process.execPath, [join(unbuilt, 'bin', 'porter.js'), 'hold', '--help'], { encoding: 'utf8' });
  t.is(help.status, 0, help.stderr);
  t.regex(help.stdout, /^Usage: porter hold \[options\] <destination\.\.\.>/);

  // Published or copied without its sources and dev dependencies: a message, exit 1.
  const bare = await mkdtemp(join(tmpdir(), 'porter-cli-unbuilt-'));
  t.teardown(() => rm(bare, { recursive: true, force: true }));
  await mkdir(join(bare, 'bin'));
  await cp(bin, join(bare, 'bin', 'porter.js'));
  await cp(join(cli, 'package.json'), join(bare, 'package.json'));
  const run = spawnSync(process.execPath, [join(bare, 'bin', 'porter.js'), '--help'], { encoding: 'utf8' });
  t.is(run.status, 1);
  t.is(run.stdout, '');
  t.regex(run.stderr, /not built in this checkout/);
  t.regex(run.stderr, /npm run build/);
});
