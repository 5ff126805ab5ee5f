// npm run release:check: everything a release does except publishing, with the native
// binaries at hand. A release (.github/workflows/release.yml) versions the packages from
// the changesets, builds the four binaries on their own runners, moves them into the
// platform packages (napi artifacts), writes @porter/native's optionalDependencies
// (napi pre-publish) and publishes every package (changeset publish). This script:
//
//   1. builds (npm run build: this machine's binary and the TypeScript packages);
//   2. applies the pending changesets to a copy of the manifests (changeset version) and
//      checks that the packages of the fixed group end on one version;
//   3. stages @porter/native in a temporary folder and runs napi artifacts and napi
//      pre-publish there, for the targets whose binary is present (a release has all
//      four: --all-binaries requires them); the repository is left as it was;
//   4. runs npm publish --dry-run for every package that would be published;
//   5. builds the API docs with warnings as errors.
//
// Options: --skip-build (the release workflow builds before), --all-binaries.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = new Set(process.argv.slice(2));
const bin = (name) => join(root, 'node_modules', '.bin', name);
const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'));

function run(file, argv, cwd = root) {
  return execFileSync(file, argv, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}

function step(title) {
  process.stdout.write(`\n== ${title}\n`);
}

const problems = [];
const scratch = mkdtempSync(join(tmpdir(), 'porter-release-check-'));
try {
  // 1. Build.
  if (!args.has('--skip-build')) {
    step('npm run build');
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  }

  // 2. Versions from the changesets, on a copy of the manifests.
  step('changeset version (on a copy)');
  const rootManifest = readJson(join(root, 'package.json'));
  const versioned = join(scratch, 'versioned');
  mkdirSync(versioned);
  writeFileSync(join(versioned, 'package.json'), `${JSON.stringify(rootManifest, null, 2)}\n`);
  cpSync(join(root, '.changeset'), join(versioned, '.changeset'), { recursive: true });
  for (const ws of rootManifest.workspaces) {
    mkdirSync(join(versioned, ws), { recursive: true });
    cpSync(join(root, ws, 'package.json'), join(versioned, ws, 'package.json'));
  }
  run(bin('changeset'), ['version'], versioned);
  const config = readJson(join(root, '.changeset', 'config.json'));
  const versions = new Map(
    rootManifest.workspaces.map((ws) => {
      const m = readJson(join(versioned, ws, 'package.json'));
      return [m.name, m.version];
    }),
  );
  for (const group of config.fixed ?? []) {
    const seen = new Set(group.map((name) => versions.get(name)));
    if (seen.size !== 1) problems.push(`fixed group ${group.join(', ')} ends on versions ${[...seen].join(', ')}`);
  }
  for (const [name, version] of versions) process.stdout.write(`${name} ${version}\n`);

  // 3. @porter/native staged as a release stages it.
  step('napi artifacts and napi pre-publish (staged copy of @porter/native)');
  const nativeDir = join(root, 'packages', 'native');
  const native = readJson(join(nativeDir, 'package.json'));
  const targets = native.napi.targets;
  const abiOf = (target) => {
    const [arch, , , libc] = target.split('-');
    return `linux-${arch === 'x86_64' ? 'x64' : 'arm64'}-${libc}`;
  };
  const binary = (target) => `${native.napi.binaryName}.${abiOf(target)}.node`;
  const present = targets.filter((t) => existsSync(join(nativeDir, binary(t))));
  const absent = targets.filter((t) => !present.includes(t));
  if (present.length === 0) problems.push('no native binary: run npm run build (or download the release artifacts)');
  if (absent.length > 0) {
    const note = `${absent.map(binary).join(', ')} absent`;
    if (args.has('--all-binaries')) problems.push(`${note}: a release needs every binary of napi.targets`);
    else
      process.stdout.write(`${note}: built on their own runners by the release workflow; checked here without them\n`);
  }
  const staged = join(scratch, 'native');
  mkdirSync(staged);
  for (const file of [...native.files, 'package.json', 'LICENSE', 'npm', ...present.map(binary)]) {
    if (existsSync(join(nativeDir, file))) cpSync(join(nativeDir, file), join(staged, file), { recursive: true });
  }
  const napiConfig = join(scratch, 'napi.json');
  writeFileSync(napiConfig, `${JSON.stringify({ ...native.napi, targets: present })}\n`);
  if (present.length > 0) {
    run(bin('napi'), ['artifacts', '-c', napiConfig, '--output-dir', '.', '--npm-dir', 'npm'], staged);
    run(
      bin('napi'),
      ['pre-publish', '-c', napiConfig, '-t', 'npm', '--no-gh-release', '--skip-optional-publish', '--npm-dir', 'npm'],
      staged,
    );
    const optional = readJson(join(staged, 'package.json')).optionalDependencies ?? {};
    process.stdout.write(`@porter/native optionalDependencies: ${JSON.stringify(optional)}\n`);
    for (const t of present) {
      const name = `${native.name}-${abiOf(t)}`;
      if (optional[name] !== native.version) problems.push(`optionalDependencies lacks ${name}@${native.version}`);
    }
  }

  // 4. npm publish --dry-run of every package a release publishes.
  step('npm publish --dry-run');
  const packages = [
    staged,
    ...present.map((t) => join(staged, 'npm', abiOf(t))),
    ...rootManifest.workspaces
      .filter((ws) => ws !== 'packages/native')
      .map((ws) => join(root, ws))
      .filter((dir) => readJson(join(dir, 'package.json')).private !== true),
  ];
  for (const dir of packages) {
    const manifest = readJson(join(dir, 'package.json'));
    let packed;
    try {
      [packed] = JSON.parse(run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], dir));
      run('npm', ['publish', '--dry-run', '--ignore-scripts', '--access', 'public'], dir);
    } catch (err) {
      problems.push(
        `${manifest.name}: ${String(err.stderr ?? err.message)
          .trim()
          .split('\n')
          .slice(-3)
          .join(' ')}`,
      );
      continue;
    }
    const files = packed.files.map((f) => f.path);
    process.stdout.write(`${manifest.name}@${manifest.version}: ${files.length} files, ${packed.size} bytes\n`);
    for (const entry of [manifest.main, manifest.types, ...Object.values(manifest.bin ?? {})].filter(Boolean)) {
      const file = entry.replace(/^\.\//, '');
      if (!files.includes(file))
        problems.push(`${manifest.name}: ${file} (named in package.json) is not in the tarball`);
    }
    if (files.some((f) => /(^|\/)(src|test)\/|\.map$|tsconfig/.test(f))) {
      problems.push(`${manifest.name}: the tarball holds sources, tests, maps or tsconfig`);
    }
  }

  // 5. The API docs, as the release workflow publishes them.
  step('typedoc (warnings are errors)');
  run(bin('typedoc'), []);
  process.stdout.write('docs/api built\n');
} catch (err) {
  problems.push(String(err.stderr || err.message).trim());
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

if (problems.length > 0) {
  process.stdout.write(`\nrelease:check FAILED\n${problems.map((p) => `- ${p}`).join('\n')}\n`);
  process.exit(1);
}
process.stdout.write('\nrelease:check passed: everything a release does, short of publishing\n');
