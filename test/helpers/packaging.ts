/**
 * For the tests that install porter as its users do (test/packaging/): running npm and
 * node in child processes until they succeed (mustRun; run.mjs runs them), an environment
 * with no Rust toolchain, the packages packed by `npm run pack`, the node binaries of
 * other Node.js versions, and what a project's node_modules holds.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RunOptions, type RunResult, run } from './run.mjs';

export const root = fileURLToPath(new URL('../..', import.meta.url));

/** Options of {@link mustRun}: run.mjs's, in a folder named. */
export type MustRunOptions = Pick<RunOptions, 'env' | 'timeoutMs'> & { cwd: string };

/**
 * Runs a program to its end (run.mjs's run; killed after `timeoutMs`, default 5 minutes);
 * rejects with its output when it exits non-zero.
 */
export async function mustRun(file: string, args: string[], options: MustRunOptions): Promise<RunResult> {
  const result = await run(file, args, { ...options, timeoutMs: options.timeoutMs ?? 5 * 60_000 });
  if (result.code !== 0) {
    const how = result.timedOut ? 'was killed after its timeout' : `exited ${result.code ?? result.signal}`;
    throw new Error(`${file} ${args.join(' ')} (in ${options.cwd}) ${how}:\n${result.stderr}\n${result.stdout}`);
  }
  return result;
}

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export async function readJson<T = Record<string, unknown>>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

/**
 * The environment of a user's shell with no Rust toolchain: `env -i` with only the node
 * binary's folder and /usr/bin:/bin on PATH, and HOME a folder of the test's (so npm's
 * cache and configuration are fresh too). No variable of the npm that runs the tests
 * comes along.
 */
export function userEnv(home: string): NodeJS.ProcessEnv {
  return {
    PATH: [dirname(process.execPath), '/usr/bin', '/bin'].join(':'),
    HOME: home,
    LANG: 'C.UTF-8',
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  };
}

/** Rust's programs that `env` finds on its PATH (none, in a user's environment). */
export function rustOnPath(env: NodeJS.ProcessEnv): string[] {
  return ['cargo', 'rustc', 'rustup']
    .map((tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { env, encoding: 'utf8' }).stdout.trim())
    .filter((found) => found !== '');
}

/** This process's environment without npm's variables (those of `npm test` running it). */
export function withoutNpmConfig(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^npm_/i.test(key)) env[key] = value;
  return { ...env, ...extra };
}

export interface Tarball {
  name: string;
  version: string;
  file: string;
}

/**
 * `npm run pack -- --skip-build --out <out>`, as the README tells users to make the
 * tarballs; returns them as the command listed them.
 */
export async function packTarballs(out: string, cwd = root): Promise<{ tarballs: Tarball[]; stdout: string }> {
  const result = await mustRun('npm', ['run', 'pack', '--silent', '--', '--skip-build', '--out', out], {
    cwd,
    env: withoutNpmConfig(),
  });
  const tarballs = [...result.stdout.matchAll(/^(porter-\S+\.tgz) {2}(@porter\/[\w-]+)@(\S+),/gm)].map((m) => ({
    file: join(out, m[1] as string),
    name: m[2] as string,
    version: m[3] as string,
  }));
  return { tarballs, stdout: result.stdout };
}

/** The @porter/* packages installed anywhere under `project`/node_modules: path and version. */
export async function installedPorterPackages(project: string): Promise<{ path: string; version: string }[]> {
  const found: { path: string; version: string }[] = [];
  const walk = async (modules: string): Promise<void> => {
    const entries = await readdir(modules).catch(() => [] as string[]);
    for (const entry of entries) {
      const dirs = entry.startsWith('@')
        ? (await readdir(join(modules, entry)).catch(() => [] as string[])).map((d) => join(modules, entry, d))
        : [join(modules, entry)];
      for (const dir of dirs) {
        const name = dir.slice(modules.length + 1);
        if (name.startsWith('@porter/')) {
          const { version } = await readJson<{ version: string }>(join(dir, 'package.json'));
          found.push({ path: dir.slice(project.length + 1), version });
        }
        await walk(join(dir, 'node_modules'));
      }
    }
  };
  await walk(join(project, 'node_modules'));
  return found.sort((a, b) => a.path.localeCompare(b.path));
}

const versionKey = (v: string): number => v.split('.').reduce((sum, part) => sum * 10_000 + Number(part), 0);

/**
 * The node binary of Node.js `major` (22, 24) as npm's `node@<major>` package installs
 * it: that package's newest version of the major, whose install script fetches the
 * package `node-linux-<arch>` of the same version, which holds the binary. The test
 * fetches that package itself (no install script), into node_modules/.cache/porter-node,
 * where later runs find it.
 */
export async function nodeBinary(major: number): Promise<string> {
  const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
  const cache = join(root, 'node_modules', '.cache', 'porter-node');
  await mkdir(cache, { recursive: true });
  const have = (await readdir(cache))
    .filter((d) => d.startsWith(`node-linux-${arch}-${major}.`))
    .sort((a, b) => versionKey(a.split('-').at(-1) ?? '') - versionKey(b.split('-').at(-1) ?? ''))
    .at(-1);
  if (have && (await exists(join(cache, have, 'bin', 'node')))) return join(cache, have, 'bin', 'node');
  const env = withoutNpmConfig();
  const { stdout } = await mustRun('npm', ['view', `node@${major}`, 'version', '--json'], { cwd: cache, env });
  const latest = [JSON.parse(stdout) as string | string[]]
    .flat()
    .sort((a, b) => versionKey(a) - versionKey(b))
    .at(-1);
  if (!latest) throw new Error(`npm has no node@${major}`);
  const download = join(cache, `download-${process.pid}`);
  await mkdir(download, { recursive: true });
  try {
    const packed = await mustRun('npm', ['pack', '--json', `node-linux-${arch}@${latest}`], { cwd: download, env });
    const [info] = JSON.parse(packed.stdout) as { filename: string }[];
    if (!info) throw new Error(`npm pack node-linux-${arch}@${latest} printed nothing`);
    const unpacked = join(download, 'unpacked');
    await mkdir(unpacked);
    await mustRun('tar', ['-xzf', info.filename, '-C', unpacked, '--strip-components=1'], { cwd: download });
    // Whole or not at all (a rename): another run may look at the cache meanwhile.
    await rename(unpacked, join(cache, `node-linux-${arch}-${latest}`)).catch(async (err: NodeJS.ErrnoException) => {
      if (!(await exists(join(cache, `node-linux-${arch}-${latest}`, 'bin', 'node')))) throw err;
    });
  } finally {
    await rm(download, { recursive: true, force: true });
  }
  return join(cache, `node-linux-${arch}-${latest}`, 'bin', 'node');
}
