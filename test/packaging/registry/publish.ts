/**
 * The registry test's registry (test/packaging/registry.test.ts): Verdaccio
 * (test/helpers/external-servers.ts) on a free loopback port, a first `npm run
 * release:publish` to it with a token it issued, what it then holds; and the second
 * version, made on a copy of the repository. Each is made once, by whichever test asks
 * first, and `closeRegistry()` stops and removes it all.
 */
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { type Certs, makeCerts } from '../../helpers/certs.mjs';
import { startVerdaccio, type Verdaccio } from '../../helpers/external-servers.js';
import { mustRun, readJson, root, withoutNpmConfig } from '../../helpers/packaging.js';
import { type RunResult, run } from '../../helpers/run.mjs';

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
export function memo<T>(key: string, make: () => Promise<T>): Promise<T> {
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
    timeoutMs: 8 * 60_000,
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
