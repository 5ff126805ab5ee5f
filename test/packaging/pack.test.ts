/**
 * `npm run pack`: one tarball per package in one folder, staged as `release:publish`
 * stages them (scripts/release-packages.mjs: `napi artifacts` moves this machine's binary
 * into its platform package, `napi pre-publish` writes @porter/native's
 * optionalDependencies). Checks what each tarball holds, installs them in an empty
 * project outside the repository the way the README says (`npm install <folder>/*.tgz`),
 * with no Rust toolchain on PATH, and uses them; and shows that @porter/native without
 * its platform package fails to load with ERR_PORTER_NO_BINARY, never silently.
 *
 * Installing from a registry, on Node 22 and 24 too, is test/packaging/registry.test.ts.
 */
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { type Certs, makeCerts } from '../helpers/certs.mjs';
import {
  exists,
  mustRun,
  packTarballs,
  readJson,
  root,
  rustOnPath,
  type Tarball,
  userEnv,
} from '../helpers/packaging.js';
import { freePort } from '../helpers/ports.js';

const fixtures = fileURLToPath(new URL('./fixtures', import.meta.url));
const nativeDir = join(root, 'packages', 'native');
const napiCli = join(root, 'node_modules', '.bin', 'napi');
const PLATFORM = `linux-${process.arch === 'arm64' ? 'arm64' : 'x64'}-gnu`;
const TIMEOUT = 8 * 60_000;

interface Packed {
  tmp: string;
  out: string;
  tarballs: Tarball[];
  /** Each tarball unpacked: its package folder. */
  unpacked: Map<string, string>;
  /** Each tarball's files, sorted. */
  files: Map<string, string[]>;
  certs: Certs;
}

let packed: Promise<Packed> | undefined;
let scratch: string | undefined;
let certs: Certs | undefined;

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) out.push(...(await listFiles(join(dir, entry.name), path)));
    else out.push(path);
  }
  return out.sort();
}

async function packOnce(): Promise<Packed> {
  const tmp = await mkdtemp(join(tmpdir(), 'porter-pack-test-'));
  scratch = tmp;
  const out = join(tmp, 'tarballs');
  const { tarballs } = await packTarballs(out);
  const unpacked = new Map<string, string>();
  const files = new Map<string, string[]>();
  for (const tarball of tarballs) {
    const dir = join(tmp, 'unpacked', tarball.name);
    await mkdir(dir, { recursive: true });
    await mustRun('tar', ['-xzf', tarball.file, '-C', dir, '--strip-components=1'], { cwd: tmp });
    unpacked.set(tarball.name, dir);
    files.set(tarball.name, await listFiles(dir));
  }
  certs = makeCerts();
  return { tmp, out, tarballs, unpacked, files, certs };
}

const pack = (): Promise<Packed> => {
  packed ??= packOnce();
  return packed;
};

test.after.always(async () => {
  await packed?.catch(() => undefined);
  if (scratch) await rm(scratch, { recursive: true, force: true });
  certs?.cleanup();
});

/** An empty project made by `npm init -y` (CommonJS) in a folder outside the repository. */
async function emptyProject(
  t: ExecutionContext,
  p: Packed,
  name: string,
): Promise<{ app: string; env: NodeJS.ProcessEnv }> {
  const app = join(p.tmp, name);
  await mkdir(app);
  const env = userEnv(join(p.tmp, 'home'));
  await mkdir(env.HOME as string, { recursive: true });
  t.deepEqual(rustOnPath(env), [], 'no Rust toolchain on the PATH of the install');
  await mustRun('npm', ['init', '-y'], { cwd: app, env });
  return { app, env };
}

const DIST_FILE = /^dist\/[\w./-]+\.(js|d\.ts)$/;

test.serial('npm run pack: one tarball per package, each holding only what users need', async (t) => {
  t.timeout(TIMEOUT);
  const p = await pack();
  t.deepEqual(
    p.tarballs.map((tb) => tb.name),
    [`@porter/native-${PLATFORM}`, '@porter/native', '@porter/core', '@porter/tls', '@porter/metrics', '@porter/cli'],
    'the platform package of this machine, then the others in publishing order',
  );
  t.deepEqual(
    (await readdir(p.out)).sort(),
    p.tarballs.map((tb) => tb.file.slice(p.out.length + 1)).sort(),
    'the folder holds those tarballs and nothing else',
  );
  const version = (await readJson<{ version: string }>(join(nativeDir, 'package.json'))).version;
  for (const tb of p.tarballs) t.is(tb.version, version, `${tb.name} has the version of the release`);

  t.deepEqual(
    p.files.get('@porter/native'),
    ['LICENSE', 'README.md', 'binding.js', 'index.d.ts', 'index.js', 'package.json'],
    '@porter/native: the loader, its types, README and package.json (no .node: that is in the platform packages)',
  );
  t.deepEqual(
    p.files.get(`@porter/native-${PLATFORM}`),
    ['LICENSE', 'README.md', 'package.json', `porter.${PLATFORM}.node`],
    'the platform package: the binary, README and package.json',
  );
  for (const name of ['@porter/core', '@porter/tls', '@porter/metrics', '@porter/cli']) {
    const files = p.files.get(name) ?? [];
    const extra = name === '@porter/cli' ? ['bin/porter.js'] : ['dist/cjs/package.json'];
    // @porter/metrics also ships its Prometheus rules and Grafana dashboard.
    const assets = name === '@porter/metrics' ? ['prometheus/rules.yml', 'grafana/porter.json'] : [];
    t.deepEqual(
      files.filter(
        (f) => !(DIST_FILE.test(f) || ['package.json', 'README.md', 'LICENSE', ...extra, ...assets].includes(f)),
      ),
      [],
      `${name}: only dist .js/.d.ts, README, LICENSE and package.json`,
    );
    t.true(files.includes('README.md') && files.includes('LICENSE'), `${name} ships README and LICENSE`);
    for (const asset of assets) t.true(files.includes(asset), `${name} ships ${asset}`);
  }

  // Source maps: none shipped, and nothing points at one.
  for (const [name, files] of p.files) {
    t.deepEqual(
      files.filter((f) => /\.map$|(^|\/)(src|test)\/|tsconfig/.test(f)),
      [],
      `${name}: no source maps, sources, tests or tsconfig`,
    );
    const dir = p.unpacked.get(name) as string;
    const pointing: string[] = [];
    for (const f of files.filter((file) => /\.(c|m)?js$|\.d\.ts$/.test(file))) {
      if ((await readFile(join(dir, f), 'utf8')).includes('//# sourceMappingURL=')) pointing.push(f);
    }
    t.deepEqual(pointing, [], `${name}: no file points at a source map`);
  }

  // Every package says how Node loads its .js files.
  const types: Record<string, string | undefined> = {};
  for (const [name, dir] of p.unpacked)
    types[name] = (await readJson<{ type?: string }>(join(dir, 'package.json'))).type;
  t.deepEqual(types, {
    [`@porter/native-${PLATFORM}`]: 'commonjs',
    '@porter/native': 'commonjs',
    '@porter/core': 'module',
    '@porter/tls': 'module',
    '@porter/metrics': 'module',
    '@porter/cli': 'module',
  });
  // The loader is CommonJS indeed: "type": "commonjs" is what makes Node read it so.
  const loader = await readFile(join(p.unpacked.get('@porter/native') as string, 'binding.js'), 'utf8');
  t.regex(loader, /module\.exports = require\('\.\/index\.js'\)/);

  const native = await readJson<{ optionalDependencies?: Record<string, string>; scripts?: unknown }>(
    join(p.unpacked.get('@porter/native') as string, 'package.json'),
  );
  t.deepEqual(native.optionalDependencies, { [`@porter/native-${PLATFORM}`]: version }, 'pinned to the same version');
  t.is(native.scripts, undefined, 'no build scripts in the published @porter/native');
});

test.serial(
  'platform packages are those the napi CLI generates, with "type", in step with @porter/native',
  async (t) => {
    t.timeout(TIMEOUT);
    const p = await pack();
    const manifest = await readJson<{ version: string; napi: { targets: string[] } }>(join(nativeDir, 'package.json'));
    const fresh = join(p.tmp, 'fresh-npm-dirs');
    await mkdir(fresh, { recursive: true });
    await cp(join(nativeDir, 'package.json'), join(fresh, 'package.json'));
    await mustRun(napiCli, ['create-npm-dirs', '--npm-dir', 'npm'], { cwd: fresh });
    const generated = (await readdir(join(fresh, 'npm'))).sort();
    t.deepEqual((await readdir(join(nativeDir, 'npm'))).sort(), generated, 'one platform package per napi target');
    t.is(generated.length, manifest.napi.targets.length);
    for (const platform of generated) {
      const ours = await readJson<Record<string, unknown>>(join(nativeDir, 'npm', platform, 'package.json'));
      // napi create-npm-dirs writes no "type"; ours adds it, and napi version keeps it.
      const { type, ...rest } = ours;
      t.is(type, 'commonjs', `npm/${platform} has a "type"`);
      t.deepEqual(rest, await readJson(join(fresh, 'npm', platform, 'package.json')), `npm/${platform} as generated`);
      t.is(ours.name, `@porter/native-${platform}`);
      t.is(ours.version, manifest.version, `npm/${platform} has @porter/native's version`);
    }
  },
);

test.serial('the tarballs install as the README says, without Rust, and work through CommonJS and ESM', async (t) => {
  t.timeout(TIMEOUT);
  const p = await pack();
  const { app, env } = await emptyProject(t, p, 'app');
  // The README's command, globbed by the shell.
  await mustRun('sh', ['-c', 'npm install --no-audit --no-fund "$1"/*.tgz', 'sh', p.out], { cwd: app, env });
  t.true(await exists(join(app, 'node_modules', `@porter/native-${PLATFORM}`, `porter.${PLATFORM}.node`)));
  const dependencies = Object.keys((await readJson<{ dependencies: object }>(join(app, 'package.json'))).dependencies);
  t.deepEqual(dependencies.sort(), p.tarballs.map((tb) => tb.name).sort(), 'every tarball is a dependency');
  await cp(join(fixtures, 'checks.cjs'), join(app, 'checks.cjs'));
  await cp(join(fixtures, 'cjs.cjs'), join(app, 'index.js'));
  await cp(join(fixtures, 'esm.mjs'), join(app, 'esm.mjs'));
  for (const entry of ['index.js', 'esm.mjs']) {
    const result = await mustRun(
      process.execPath,
      [entry, p.certs.server.keyFile, p.certs.server.certFile, p.certs.caFile],
      { cwd: app, env, timeoutMs: 120_000 },
    );
    const report = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '') as {
      format: string;
      parts: Record<string, { ok: boolean; error?: string }>;
    };
    for (const [part, outcome] of Object.entries(report.parts)) {
      t.true(outcome.ok, `${part} through ${report.format}: ${outcome.error}`);
    }
    t.deepEqual(Object.keys(report.parts), ['tcp', 'tls', 'metrics']);
  }
});

test.serial('without its platform package, @porter/native fails to load with ERR_PORTER_NO_BINARY', async (t) => {
  t.timeout(TIMEOUT);
  const p = await pack();
  const tarball = (name: string): string => p.tarballs.find((tb) => tb.name === name)?.file as string;
  // The platform package is nowhere: its tarball not given, and the @porter scope's
  // registry (a closed port) does not have it. npm skips an optional dependency it cannot
  // get: the install succeeds, and loading says why nothing can work. (An install with
  // --omit=optional from a registry: registry.test.ts.)
  const { app, env } = await emptyProject(t, p, 'no-platform-package');
  await writeFile(join(app, '.npmrc'), `@porter:registry=http://127.0.0.1:${await freePort()}/\nfetch-retries=0\n`);
  await mustRun('npm', ['install', '--no-audit', '--no-fund', tarball('@porter/native'), tarball('@porter/core')], {
    cwd: app,
    env,
  });
  t.false(await exists(join(app, 'node_modules', `@porter/native-${PLATFORM}`)), 'no platform package');
  await cp(join(fixtures, 'missing-binding.cjs'), join(app, 'missing-binding.cjs'));
  const result = await mustRun(process.execPath, ['missing-binding.cjs'], { cwd: app, env });
  const report = JSON.parse(result.stdout.trim()) as Record<
    string,
    { loaded: boolean; message: string; code?: string; causes: string[] }
  >;
  for (const name of ['@porter/native', '@porter/core']) {
    const seen = report[name];
    t.false(seen?.loaded, `${name} does not load without a binary`);
    t.is(seen?.code, 'ERR_PORTER_NO_BINARY', `${name}: the documented code`);
    t.regex(seen?.message ?? '', new RegExp(`no prebuilt binary for this platform \\(${PLATFORM}\\)`));
    t.regex(seen?.message ?? '', new RegExp(`@porter/native-${PLATFORM} was not installed`), 'it names the package');
    t.regex(seen?.message ?? '', /reinstall without --omit=optional/, 'it says what to do');
    t.regex(seen?.message ?? '', /from tarballs: install its tarball too/, 'and what to do with tarballs');
    t.true(
      seen?.causes.some((cause) => cause.includes(`@porter/native-${PLATFORM}`)) ?? false,
      'the cause chain names the platform package it looked for',
    );
  }
});
