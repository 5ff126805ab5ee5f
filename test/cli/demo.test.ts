import { spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { findFreePortBlock } from '../helpers/servers.js';
import { bin, type HoldJson, lastJson, porter } from './helpers.js';

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
});

test('the bin in a checkout that was not built says how to build it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'porter-cli-unbuilt-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'bin'));
  await cp(bin, join(dir, 'bin', 'porter.js'));
  await cp(join(bin, '..', '..', 'package.json'), join(dir, 'package.json'));
  const run = spawnSync(process.execPath, [join(dir, 'bin', 'porter.js'), '--help'], { encoding: 'utf8' });
  t.is(run.status, 1);
  t.is(run.stdout, '');
  t.regex(run.stderr, /not built in this checkout/);
  t.regex(run.stderr, /npm run build/);
});
