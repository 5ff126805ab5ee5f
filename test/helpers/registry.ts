/**
 * The registry of test/packaging/registry.test.ts and what its tests share: Verdaccio
 * (test/helpers/external-servers.ts) on a free loopback port with a first
 * `npm run release:publish` to it; the user projects that install from it (an ES module
 * one and one made by `npm init -y`) and run the fixtures' checks; the second version made
 * on a copy of the repository. Each is made once, by whichever test asks first.
 */
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { type Certs, makeCerts } from './certs.mjs';
import { startVerdaccio, type Verdaccio } from './external-servers.js';
import { mustRun, type RunResult, readJson, root, run, userEnv, withoutNpmConfig } from './packaging.js';

export const fixtures = fileURLToPath(new URL('../packaging/fixtures', import.meta.url));
export const PLATFORM = `linux-${process.arch === 'arm64' ? 'arm64' : 'x64'}-gnu`;
export const FOUR = ['@porter/core', '@porter/tls', '@porter/metrics', '@porter/cli'];
/** Every package of a release published from this machine, in publishing order. */
export const ALL = [`@porter/native-${PLATFORM}`, '@porter/native', ...FOUR];

export interface Registry {
  tmp: string;
  verdaccio: Verdaccio;
  /** The environment release:publish runs in: npm's configuration with the token. */
  publisher: NodeJS.ProcessEnv;
  /** The version in the repository's manifests, and the first release:publish of it. */
  version: string;
  first: RunResult;
  certs: Certs;
  /** The HOME of every user project (one npm cache: the first install is a cold one). */
  home: string;
}

let scratch: string | undefined;
let verdaccio: Verdaccio | undefined;
let certs: Certs | undefined;
const once = new Map<string, Promise<unknown>>();
/** Runs `make` once per key, however many tests ask. */
function memo<T>(key: string, make: () => Promise<T>): Promise<T> {
  if (!once.has(key)) once.set(key, make());
  return once.get(key) as Promise<T>;
}

/** Stops Verdaccio and removes what the tests made, once every test's making is settled. */
export async function closeRegistry(): Promise<void> {
  await Promise.allSettled(once.values());
  await verdaccio?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
  certs?.cleanup();
}

export function releasePublish(cwd: string, url: string, env: NodeJS.ProcessEnv): Promise<RunResult> {
  return run('npm', ['run', 'release:publish', '--silent', '--', '--registry', url, '--skip-build'], {
    cwd,
    env,
    timeout: 8 * 60_000,
  });
}

export const registry = (): Promise<Registry> =>
  memo('registry', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'porter-registry-test-'));
    scratch = tmp;
    verdaccio = await startVerdaccio();
    const token = await verdaccio.addUser('porter-release', `pw-${process.pid}-${Date.now()}`);
    // As actions/setup-node writes it: the token stays in the environment, npm reads it.
    const npmrc = join(tmp, 'publisher.npmrc');
    await writeFile(npmrc, `${verdaccio.url.replace(/^https?:/, '')}:_authToken=\${NODE_AUTH_TOKEN}\n`);
    const publisher = withoutNpmConfig({ NPM_CONFIG_USERCONFIG: npmrc, NODE_AUTH_TOKEN: token });
    const { version } = await readJson<{ version: string }>(join(root, 'packages', 'core', 'package.json'));
    const first = await releasePublish(root, verdaccio.url, publisher);
    certs = makeCerts();
    const home = join(tmp, 'home');
    await mkdir(home);
    return { tmp, verdaccio, publisher, version, first, certs, home };
  });

/** What the registry has of `name` (its packument), or undefined for a 404. */
export async function packument(r: Registry, name: string): Promise<Record<string, unknown> | undefined> {
  const response = await fetch(`${r.verdaccio.url}${name.replace('/', '%2f')}`);
  if (response.status === 404) return undefined;
  if (!response.ok) throw new Error(`GET ${name}: ${response.status}`);
  return (await response.json()) as Record<string, unknown>;
}

export async function publishedVersions(r: Registry, name: string): Promise<string[]> {
  return Object.keys(((await packument(r, name))?.versions as object | undefined) ?? {}).sort();
}

export function published(stdout: string): string[] {
  return [...stdout.matchAll(/^published (\S+)$/gm)].map((m) => m[1] as string);
}

export function mustHavePublished(t: ExecutionContext, result: RunResult): void {
  t.is(result.code, 0, `release:publish exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
}

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
  await mustRun('npm', ['install', ...FOUR], { cwd: dir, env, timeout: 8 * 60_000 });
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
    timeout: 120_000,
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

export interface SecondVersion {
  /** The copy of the repository, at the new version. */
  dir: string;
  version: string;
}

/**
 * A copy of the repository as it is (built), with a changeset added and `npm run version`
 * run in it, as the release's "Version packages" pull request does.
 */
export const secondVersion = (): Promise<SecondVersion> =>
  memo('v2', async () => {
    const r = await registry();
    const dir = join(r.tmp, 'repository-next');
    await mkdir(dir);
    for (const file of ['package.json', 'package-lock.json', 'LICENSE', '.changeset', 'scripts']) {
      await cp(join(root, file), join(dir, file), { recursive: true });
    }
    await cp(join(root, 'packages'), join(dir, 'packages'), {
      recursive: true,
      filter: (src) => !/[/\\](node_modules|\.turbo)$/.test(src),
    });
    // Its tools (changeset, napi) are the repository's.
    await symlink(join(root, 'node_modules'), join(dir, 'node_modules'));
    await writeFile(
      join(dir, '.changeset', 'registry-test-next.md'),
      '---\n"@porter/core": patch\n---\n\nThe next version, made by the registry test.\n',
    );
    await mustRun('npm', ['run', 'version'], { cwd: dir, env: withoutNpmConfig() });
    const { version } = await readJson<{ version: string }>(join(dir, 'packages', 'core', 'package.json'));
    return { dir, version };
  });
