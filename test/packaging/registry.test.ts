/**
 * The release through a real registry: Verdaccio (test/helpers/external-servers.ts) on a
 * free loopback port, with storage of its own, serving @porter/* from that storage only
 * and everything else through its uplink to the public registry, as a company's registry
 * does. `npm run release:publish` publishes to it exactly as the release workflow
 * publishes to npm, with a token Verdaccio issued, given to npm the way
 * actions/setup-node does (an .npmrc line `_authToken=${NODE_AUTH_TOKEN}`).
 *
 * Then, as users: projects in fresh folders outside the repository, in an environment
 * with nothing but node's folder and /usr/bin:/bin on PATH (no Rust toolchain) and a
 * fresh HOME, with one line `@porter:registry=<Verdaccio>` in their .npmrc, install the
 * four packages: an ES module project and one made by `npm init -y` (CommonJS). Each gets
 * its platform package through @porter/native's optionalDependencies and connects
 * through porter (TCP, TLS, metrics); `npx porter doctor --json` works; the same projects
 * run on Node 22 and 24 (the binaries of npm's node@22 / node@24 packages).
 *
 * Last, a second version: on a copy of the repository, a changeset and `npm run version`
 * (changeset version, napi version), then release:publish of it (refused while one of its
 * packages is on the registry with other content or no token is given, finished when a
 * run was cut short), and the upgrade: `npm install @porter/core@<new>` brings the
 * matching native package.
 *
 * The tests run in order and share the registry; each one makes what it needs if an
 * earlier one did not (so `-m` works). No assertion depends on how long anything took;
 * the install time without Rust is measured and logged.
 */
import { readdirSync } from 'node:fs';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import {
  exists,
  installedPorterPackages,
  mustRun,
  nodeBinary,
  packTarballs,
  readJson,
  root,
  rustOnPath,
  userEnv,
  withoutNpmConfig,
} from '../helpers/packaging.js';
import { testIf } from '../helpers/requirements.js';
import { run } from '../helpers/run.mjs';
import { cjsApp, esmApp, fixtures, project, type Report, useApp } from './registry/projects.js';
import {
  ALL,
  closeRegistry,
  FOUR,
  mustHavePublished,
  PLATFORM,
  packument,
  published,
  publishedVersions,
  registry,
  releasePublish,
  secondVersion,
} from './registry/publish.js';

const TIMEOUT = 10 * 60_000;

test.after.always(closeRegistry);

test.serial(
  'release:publish publishes every package, the platform package first, with a token Verdaccio issued',
  async (t) => {
    t.timeout(TIMEOUT);
    const r = await registry();
    mustHavePublished(t, r.first);
    t.log(r.first.stdout.trim());
    t.deepEqual(
      published(r.first.stdout),
      ALL.map((name) => `${name}@${r.version}`),
      'in this order',
    );
    t.regex(r.first.stdout, /^as porter-release$/m, 'npm used the token from its configuration');
    for (const name of ALL) t.deepEqual(await publishedVersions(r, name), [r.version], `${name} is on the registry`);

    const native = (await packument(r, '@porter/native')) as { versions: Record<string, Record<string, unknown>> };
    const manifest = native.versions[r.version] as { optionalDependencies: object; type: string; scripts?: object };
    t.deepEqual(manifest.optionalDependencies, { [`@porter/native-${PLATFORM}`]: r.version }, 'pinned to its version');
    t.is(manifest.type, 'commonjs');
    t.is(manifest.scripts, undefined);
    const core = (await packument(r, '@porter/core')) as { versions: Record<string, { dependencies: object }> };
    t.deepEqual(core.versions[r.version]?.dependencies, { '@porter/native': r.version });
  },
);

test.serial('the registry serves @porter/* from its storage only, other packages through its uplink', async (t) => {
  t.timeout(TIMEOUT);
  const r = await registry();
  // Platform packages of binaries not built here were not published: a 404, never a
  // look-up on the public registry.
  for (const platform of ['linux-arm64-gnu', 'linux-x64-musl', 'linux-arm64-musl'].filter((p) => p !== PLATFORM)) {
    t.is(await packument(r, `@porter/native-${platform}`), undefined, `@porter/native-${platform}: 404`);
  }
  t.is(await packument(r, '@porter/not-a-package'), undefined);
  const commander = (await packument(r, 'commander')) as { versions?: object } | undefined;
  t.true(Object.keys(commander?.versions ?? {}).length > 0, 'commander comes through the uplink');
});

test.serial('release:publish again: every package is there, nothing is published, nothing changes', async (t) => {
  t.timeout(TIMEOUT);
  const r = await registry();
  const before = await Promise.all(ALL.map((name) => packument(r, name)));
  const again = await releasePublish(root, r.verdaccio.url, r.publisher);
  t.is(again.code, 0, again.stdout);
  t.regex(again.stdout, /every package is on .* at \S+ already, with this content: nothing published/);
  for (const name of ALL) t.regex(again.stdout, new RegExp(`^${name}@${r.version}: there, same content$`, 'm'));
  t.deepEqual(published(again.stdout), []);
  t.deepEqual(await Promise.all(ALL.map((name) => packument(r, name))), before, 'the registry is as it was');
});

const binariesHere = readdirSync(join(root, 'packages', 'native')).filter((f) => f.endsWith('.node'));
testIf(binariesHere.length >= 4 ? 'a native binary missing here (all four are)' : undefined, { serial: true })(
  "release:publish sends npm's registry every platform or nothing",
  async (t) => {
    t.timeout(TIMEOUT);
    // No token: whatever happened, nothing could be published.
    const refused = await releasePublish(
      root,
      'https://registry.npmjs.org/',
      withoutNpmConfig({ NPM_CONFIG_USERCONFIG: '/dev/null' }),
    );
    t.is(refused.code, 1, refused.stdout);
    t.regex(refused.stdout, /npm's registry gets every platform of napi\.targets or nothing/);
    t.notRegex(refused.stdout, /== what https:\/\/registry\.npmjs\.org\/ has/, 'refused before asking it anything');
  },
);

test.serial(
  'an ES module project installs the four packages from the registry without Rust and connects through them',
  async (t) => {
    t.timeout(TIMEOUT);
    const r = await registry();
    t.deepEqual(rustOnPath(userEnv(r.home)), [], 'no cargo, rustc or rustup on the PATH of the install');
    const app = await esmApp();
    t.false(app.dir.startsWith(root), 'outside the repository');
    t.log(`npm install ${FOUR.join(' ')}, without Rust, cold npm cache: ${(app.installMs / 1000).toFixed(1)} s`);
    t.true(await exists(join(app.dir, 'node_modules', `@porter/native-${PLATFORM}`, `porter.${PLATFORM}.node`)));
    t.deepEqual(
      await installedPorterPackages(app.dir),
      ALL.map((name) => ({ path: `node_modules/${name}`, version: r.version })).sort((a, b) =>
        a.path.localeCompare(b.path),
      ),
      'each package once, at the release version, the platform package through optionalDependencies',
    );
    // The lockfile says where each came from: @porter/* from the registry, the rest from npm's default.
    const lock = await readJson<{ packages: Record<string, { resolved?: string }> }>(
      join(app.dir, 'package-lock.json'),
    );
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (path === '' || entry.resolved === undefined) continue;
      if (path.includes('@porter/')) t.true(entry.resolved.startsWith(r.verdaccio.url), `${path} from the registry`);
      else t.false(entry.resolved.startsWith(r.verdaccio.url), `${path} not from the registry`);
    }
    const report = await useApp(t, r, app);
    t.is(report.format, 'esm');
    t.is(report.versions.core, r.version);
  },
);

test.serial('npx porter doctor --json works from the ES module project', async (t) => {
  t.timeout(TIMEOUT);
  const r = await registry();
  const app = await esmApp();
  const doctor = await run('npx', ['porter', 'doctor', '--json'], { cwd: app.dir, env: app.env, timeoutMs: 120_000 });
  // Exit 0 (nothing to change) or 1 (something to change): both are answers.
  t.true(doctor.code === 0 || doctor.code === 1, `exit ${doctor.code}: ${doctor.stderr}`);
  const report = JSON.parse(doctor.stdout) as {
    capacity: { porter: { per_destination: number } };
    findings: { id: string; status: string }[];
  };
  t.true(report.capacity.porter.per_destination > 0, 'the capacity, from the native core');
  t.true(report.findings.length > 0);
  const version = await run('npx', ['porter', '--version'], { cwd: app.dir, env: app.env, timeoutMs: 5 * 60_000 });
  t.is(version.stdout.trim(), r.version);
});

test.serial(
  'a CommonJS project made by npm init -y installs the four packages and connects through them',
  async (t) => {
    t.timeout(TIMEOUT);
    const r = await registry();
    const app = await cjsApp();
    const manifest = await readJson<{ type?: string; dependencies: Record<string, string> }>(
      join(app.dir, 'package.json'),
    );
    t.true(
      manifest.type === undefined || manifest.type === 'commonjs',
      `npm init -y made a CommonJS project (${manifest.type})`,
    );
    t.deepEqual(Object.keys(manifest.dependencies).sort(), [...FOUR].sort());
    t.log(`npm install of the four, without Rust, warm npm cache: ${(app.installMs / 1000).toFixed(1)} s`);
    t.true(await exists(join(app.dir, 'node_modules', `@porter/native-${PLATFORM}`, `porter.${PLATFORM}.node`)));
    const report = await useApp(t, r, app);
    t.is(report.format, 'cjs');
  },
);

for (const major of [22, 24]) {
  test.serial(`the same projects work on Node ${major}`, async (t) => {
    t.timeout(TIMEOUT);
    const r = await registry();
    const node = await nodeBinary(major);
    for (const app of [await esmApp(), await cjsApp()]) {
      const report = await useApp(t, r, app, node);
      t.is(Number(report.node.slice(1).split('.')[0]), major, `${node} is Node ${major}`);
      t.log(`${report.format} on ${report.node} (NODE_MODULE_VERSION ${report.modules}): tcp, tls, metrics ok`);
    }
  });
}

test.serial('installed with --omit=optional, @porter/core fails to load with ERR_PORTER_NO_BINARY', async (t) => {
  t.timeout(TIMEOUT);
  const r = await registry();
  const { dir, env } = await project(r, 'omit-optional-app', 'npm-init');
  await mustRun('npm', ['install', '--omit=optional', '@porter/core'], { cwd: dir, env });
  t.false(await exists(join(dir, 'node_modules', `@porter/native-${PLATFORM}`)));
  await cp(join(fixtures, 'missing-binding.cjs'), join(dir, 'missing-binding.cjs'));
  const result = await mustRun(process.execPath, ['missing-binding.cjs'], { cwd: dir, env });
  const report = JSON.parse(result.stdout.trim()) as Record<
    string,
    { loaded: boolean; code?: string; message: string }
  >;
  t.false(report['@porter/core']?.loaded);
  t.is(report['@porter/core']?.code, 'ERR_PORTER_NO_BINARY');
  t.regex(report['@porter/core']?.message ?? '', /reinstall without --omit=optional/);
});

test.serial(
  'the next version (changeset version): release:publish publishes nothing while one of its packages is there with other content',
  async (t) => {
    t.timeout(TIMEOUT);
    const r = await registry();
    const next = await secondVersion();
    t.not(next.version, r.version);
    for (const file of ['packages/native/package.json', `packages/native/npm/${PLATFORM}/package.json`]) {
      const m = await readJson<{ version: string; type: string }>(join(next.dir, file));
      t.is(m.version, next.version, `${file}: napi version followed`);
      t.is(m.type, 'commonjs', `${file} keeps its "type"`);
    }
    // Someone else's @porter/cli at that version.
    const other = join(r.tmp, 'other-cli');
    await mkdir(other);
    await writeFile(
      join(other, 'package.json'),
      JSON.stringify({ name: '@porter/cli', version: next.version, type: 'module', main: 'index.js' }),
    );
    await writeFile(join(other, 'index.js'), 'export {};\n');
    await mustRun('npm', ['publish', '--registry', r.verdaccio.url], { cwd: other, env: r.publisher });

    const refused = await releasePublish(next.dir, r.verdaccio.url, r.publisher);
    t.is(refused.code, 1, refused.stdout);
    t.regex(refused.stdout, new RegExp(`@porter/cli@${next.version}: THERE, OTHER CONTENT`));
    t.regex(refused.stdout, /release:publish FAILED/);
    t.deepEqual(published(refused.stdout), []);
    for (const name of ALL.filter((n) => n !== '@porter/cli')) {
      t.deepEqual(await publishedVersions(r, name), [r.version], `${name}: nothing of ${next.version}`);
    }
    await mustRun('npm', ['unpublish', `@porter/cli@${next.version}`, '--force', '--registry', r.verdaccio.url], {
      cwd: other,
      env: r.publisher,
    });
    t.deepEqual(await publishedVersions(r, '@porter/cli'), [r.version]);
  },
);

test.serial('the next version: without a token, release:publish publishes nothing', async (t) => {
  t.timeout(TIMEOUT);
  const r = await registry();
  const next = await secondVersion();
  const empty = join(r.tmp, 'empty.npmrc');
  await writeFile(empty, '');
  const anonymous = await releasePublish(next.dir, r.verdaccio.url, withoutNpmConfig({ NPM_CONFIG_USERCONFIG: empty }));
  t.is(anonymous.code, 1, anonymous.stdout);
  t.regex(anonymous.stdout, /not logged in to/);
  t.deepEqual(published(anonymous.stdout), []);
  for (const name of ALL) t.deepEqual(await publishedVersions(r, name), [r.version], `${name}: nothing new`);
});

test.serial(
  'the next version: a publish cut short is finished by running it again; npm run pack made the same tarballs',
  async (t) => {
    t.timeout(TIMEOUT);
    const r = await registry();
    const next = await secondVersion();
    // As if a run had stopped after the platform package: publish that one by hand, from
    // npm run pack's tarball.
    const { tarballs } = await packTarballs(join(r.tmp, 'next-tarballs'), next.dir);
    const platform = tarballs.find((tb) => tb.name === `@porter/native-${PLATFORM}`);
    t.is(platform?.version, next.version);
    await mustRun('npm', ['publish', platform?.file as string, '--registry', r.verdaccio.url], {
      cwd: r.tmp,
      env: r.publisher,
    });

    const result = await releasePublish(next.dir, r.verdaccio.url, r.publisher);
    mustHavePublished(t, result);
    t.log(result.stdout.trim());
    t.regex(result.stdout, new RegExp(`@porter/native-${PLATFORM}@${next.version}: there, same content`));
    t.regex(result.stdout, /an earlier run published 1 of 6: publishing the others/);
    t.deepEqual(
      published(result.stdout),
      ALL.slice(1).map((name) => `${name}@${next.version}`),
    );
    for (const name of ALL) t.deepEqual(await publishedVersions(r, name), [r.version, next.version].sort(), name);
  },
);

test.serial('upgrading: npm install @porter/core@<next> brings the matching native package', async (t) => {
  t.timeout(TIMEOUT);
  const r = await registry();
  const next = await secondVersion();
  if ((await publishedVersions(r, '@porter/core')).includes(next.version) === false) {
    mustHavePublished(t, await releasePublish(next.dir, r.verdaccio.url, r.publisher));
  }
  const atVersion = (version: string, names: string[]) =>
    names.map((name) => ({ path: `node_modules/${name}`, version })).sort((a, b) => a.path.localeCompare(b.path));
  const coreAndNative = ['@porter/core', '@porter/native', `@porter/native-${PLATFORM}`];

  // A project with @porter/core alone.
  const { dir, env } = await project(r, 'core-app', 'npm-init');
  await mustRun('npm', ['install', `@porter/core@${r.version}`], { cwd: dir, env });
  t.deepEqual(await installedPorterPackages(dir), atVersion(r.version, coreAndNative));
  await mustRun('npm', ['install', `@porter/core@${next.version}`], { cwd: dir, env });
  t.deepEqual(await installedPorterPackages(dir), atVersion(next.version, coreAndNative), 'no old version left');
  await cp(join(fixtures, 'checks.cjs'), join(dir, 'checks.cjs'));
  await cp(join(fixtures, 'core-only.cjs'), join(dir, 'index.js'));
  const ran = await mustRun(process.execPath, ['index.js'], { cwd: dir, env });
  const report = JSON.parse(ran.stdout.trim()) as Report;
  t.true(report.parts.tcp?.ok, report.parts.tcp?.error);
  t.is(report.versions['native'], next.version, 'the new native package is the one loaded');

  // The ES module project, its four packages upgraded together (as the README says).
  const app = await esmApp();
  await mustRun('npm', ['install', ...FOUR.map((name) => `${name}@${next.version}`)], { cwd: app.dir, env: app.env });
  t.deepEqual(await installedPorterPackages(app.dir), atVersion(next.version, ALL), 'each package once, all new');
  const upgraded = await useApp(t, r, app);
  t.is(upgraded.versions.core, next.version);
  const version = await run('npx', ['porter', '--version'], { cwd: app.dir, env: app.env, timeoutMs: 5 * 60_000 });
  t.is(version.stdout.trim(), next.version);

  // The CommonJS project upgrades @porter/core alone: the packages it did not upgrade keep
  // a copy of the old one of their own (the README says to upgrade them together).
  const cjs = await cjsApp();
  await mustRun('npm', ['install', `@porter/core@${next.version}`], { cwd: cjs.dir, env: cjs.env });
  const mixed = await installedPorterPackages(cjs.dir);
  t.deepEqual(
    mixed.filter((p) => p.path === 'node_modules/@porter/core'),
    [{ path: 'node_modules/@porter/core', version: next.version }],
  );
  t.true(
    mixed.some((p) => p.path.endsWith('/node_modules/@porter/core') && p.version === r.version),
    `a second, older @porter/core stays: ${JSON.stringify(mixed)}`,
  );
});
