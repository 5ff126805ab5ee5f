/**
 * The registry test's user projects (test/packaging/registry.test.ts): folders outside the
 * repository whose .npmrc takes @porter/* from the test's Verdaccio, the four packages
 * installed there (an ES module project and one made by `npm init -y`), and the fixtures'
 * checks run in them.
 */
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { mustRun, userEnv } from '../../helpers/packaging.js';
import { run } from '../../helpers/run.mjs';
import { FOUR, memo, type Registry, registry } from './publish.js';

export const fixtures = fileURLToPath(new URL('../fixtures', import.meta.url));

export interface App {
  dir: string;
  env: NodeJS.ProcessEnv;
  /** How long `npm install` of the four packages took. */
  installMs: number;
}

/** A project outside the repository whose .npmrc takes @porter/* from the registry. */
export async function project(
  r: Registry,
  name: string,
  kind: 'esm' | 'npm-init',
): Promise<{ dir: string; env: NodeJS.ProcessEnv }> {
  const dir = join(r.tmp, name);
  await mkdir(dir);
  const env = userEnv(r.home);
  if (kind === 'esm') {
    await writeFile(
      join(dir, 'package.json'),
      `${JSON.stringify({ name, version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`,
    );
  } else {
    await mustRun('npm', ['init', '-y'], { cwd: dir, env });
  }
  await writeFile(join(dir, '.npmrc'), `@porter:registry=${r.verdaccio.url}\n`);
  return { dir, env };
}

/** Installs the four packages in a new project and copies the checks in (as index.js). */
async function installApp(r: Registry, name: string, kind: 'esm' | 'npm-init'): Promise<App> {
  const { dir, env } = await project(r, name, kind);
  const started = process.hrtime.bigint();
  await mustRun('npm', ['install', ...FOUR], { cwd: dir, env, timeoutMs: 8 * 60_000 });
  const installMs = Number(process.hrtime.bigint() - started) / 1e6;
  await cp(join(fixtures, 'checks.cjs'), join(dir, 'checks.cjs'));
  await cp(join(fixtures, kind === 'esm' ? 'esm.mjs' : 'cjs.cjs'), join(dir, 'index.js'));
  return { dir, env, installMs };
}

export const esmApp = (): Promise<App> => memo('esm', async () => installApp(await registry(), 'esm-app', 'esm'));
export const cjsApp = (): Promise<App> => memo('cjs', async () => installApp(await registry(), 'cjs-app', 'npm-init'));

export interface Report {
  format: string;
  node: string;
  modules: string;
  versions: Record<string, string>;
  parts: Record<string, { ok: boolean; error?: string; detail?: unknown }>;
}

/** Runs the app's index.js with `node`; checks that every part worked; returns the report. */
export async function useApp(t: ExecutionContext, r: Registry, app: App, node = process.execPath): Promise<Report> {
  const result = await run(node, ['index.js', r.certs.server.keyFile, r.certs.server.certFile, r.certs.caFile], {
    cwd: app.dir,
    env: app.env,
    timeoutMs: 120_000,
  });
  let report: Report;
  try {
    report = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '') as Report;
  } catch {
    t.fail(`${app.dir}/index.js printed no report (exit ${result.code}):\n${result.stderr}\n${result.stdout}`);
    throw new Error('no report');
  }
  t.is(result.code, 0, result.stderr);
  t.deepEqual(Object.keys(report.parts), ['tcp', 'tls', 'metrics']);
  for (const [part, outcome] of Object.entries(report.parts)) {
    t.true(outcome.ok, `${part} through ${report.format} on ${report.node}: ${outcome.error}`);
  }
  return report;
}
