// The packages of a release, staged and packed exactly as they are published. One module
// for the three commands that need them: `npm run pack` (tarballs to install without a
// registry), `npm run release:check` (everything but publishing) and `npm run
// release:publish` (the one way packages reach a registry, the release workflow's too).
//
// A release publishes, in this order:
//   1. the platform packages (@porter/native-<platform>, from packages/native/npm/), each
//      with its binary (napi artifacts), for every binary present in packages/native/
//      (a release has the four of napi.targets; a developer's machine has its own);
//   2. @porter/native, its optionalDependencies naming those platform packages at its own
//      version (napi pre-publish), its build scripts left out;
//   3. @porter/core, @porter/tls, @porter/metrics, @porter/cli, as they are in packages/.
// @porter/native is staged in a scratch folder: the repository is left as it was.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));
const nativeDir = join(root, 'packages', 'native');
/** The path of a command of the root's node_modules/.bin. */
export const bin = (name) => join(root, 'node_modules', '.bin', name);

export const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'));
export const writeJson = (path, value) => writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);

/** Runs a program, returns its stdout; throws with its stderr on failure. */
export function run(file, argv, options = {}) {
  return execFileSync(file, argv, {
    cwd: options.cwd ?? root,
    env: options.env ?? process.env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
  });
}

/** The last lines of a failed command's output, for a one-line problem report. */
export function failure(err, lines = 4) {
  return String(err.stderr || err.stdout || err.message)
    .trim()
    .split('\n')
    .slice(-lines)
    .join(' ');
}

export function step(title) {
  process.stdout.write(`\n== ${title}\n`);
}

/** `npm run build` at the root: this machine's binary and the TypeScript packages. */
export function build() {
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
}

/** The platform (`linux-x64-gnu`, ...) of a Rust target of napi.targets. */
export function platformOf(target) {
  const [arch, , , libc] = target.split('-');
  return `linux-${arch === 'x86_64' ? 'x64' : 'arm64'}-${libc}`;
}

/** Each target of napi.targets: its platform, binary file and whether it is here. */
export function nativeTargets() {
  const native = readJson(join(nativeDir, 'package.json'));
  return native.napi.targets.map((target) => {
    const platform = platformOf(target);
    const binary = `${native.napi.binaryName}.${platform}.node`;
    return {
      target,
      platform,
      binary,
      name: `${native.name}-${platform}`,
      present: existsSync(join(nativeDir, binary)),
    };
  });
}

/**
 * Stages every package of the release under `scratch` (only @porter/native and its
 * platform packages are copied; the others are packed from packages/). Returns the
 * packages in publishing order, each `{ name, version, dir, role }` (role: 'platform',
 * 'native' or 'js'), and the targets whose binary is absent. Throws when no binary is
 * here at all, or, with `allBinaries`, when one of napi.targets is missing.
 */
export function stageRelease({ scratch, allBinaries = false }) {
  const targets = nativeTargets();
  const present = targets.filter((t) => t.present);
  const absent = targets.filter((t) => !t.present);
  if (present.length === 0) {
    throw new Error(
      `no native binary in packages/native (${targets.map((t) => t.binary).join(', ')}): run npm run build, or put the release's binaries there`,
    );
  }
  if (allBinaries && absent.length > 0) {
    throw new Error(`${absent.map((t) => t.binary).join(', ')} absent: a release needs every binary of napi.targets`);
  }

  const native = readJson(join(nativeDir, 'package.json'));
  const staged = join(scratch, 'native');
  mkdirSync(staged, { recursive: true });
  for (const file of [...native.files, 'package.json', 'LICENSE', 'npm', ...present.map((t) => t.binary)]) {
    if (existsSync(join(nativeDir, file))) cpSync(join(nativeDir, file), join(staged, file), { recursive: true });
  }
  // The napi CLI on the targets whose binary is here: napi artifacts moves each into its
  // platform package, napi pre-publish writes optionalDependencies (and publishes nothing).
  const napiConfig = join(scratch, 'napi.json');
  writeJson(napiConfig, { ...native.napi, targets: present.map((t) => t.target) });
  run(bin('napi'), ['artifacts', '-c', napiConfig, '--output-dir', '.', '--npm-dir', 'npm'], { cwd: staged });
  run(
    bin('napi'),
    ['pre-publish', '-c', napiConfig, '-t', 'npm', '--no-gh-release', '--skip-optional-publish', '--npm-dir', 'npm'],
    { cwd: staged },
  );
  // Building is the repository's business, not the installed package's.
  const manifest = readJson(join(staged, 'package.json'));
  delete manifest.scripts;
  delete manifest.devDependencies;
  writeJson(join(staged, 'package.json'), manifest);
  // Platform packages of absent binaries stay out of the staged copy altogether; the
  // others carry the license, as every package does.
  for (const t of absent) rmSync(join(staged, 'npm', t.platform), { recursive: true, force: true });
  for (const t of present) cpSync(join(root, 'LICENSE'), join(staged, 'npm', t.platform, 'LICENSE'));

  const packages = [
    ...present.map((t) => ({
      name: t.name,
      version: readJson(join(staged, 'npm', t.platform, 'package.json')).version,
      dir: join(staged, 'npm', t.platform),
      role: 'platform',
      binary: t.binary,
    })),
    { name: manifest.name, version: manifest.version, dir: staged, role: 'native' },
  ];
  const rootManifest = readJson(join(root, 'package.json'));
  for (const ws of rootManifest.workspaces) {
    const dir = join(root, ws);
    const m = readJson(join(dir, 'package.json'));
    if (m.name === native.name || m.private === true) continue;
    packages.push({ name: m.name, version: m.version, dir, role: 'js' });
  }
  return { packages, absent };
}

/**
 * `npm pack` of the staged packages into `out` (one npm for all of them): adds
 * `filename`, `path`, `files`, `size` and `integrity` (sha512, as the registry records
 * it) to each.
 */
export function packAll(packages, out) {
  mkdirSync(out, { recursive: true });
  const infos = JSON.parse(
    run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', out, ...packages.map((p) => p.dir)]),
  );
  return packages.map((pkg) => {
    const info = infos.find((i) => i.name === pkg.name);
    if (!info) throw new Error(`npm pack printed nothing for ${pkg.name} (${pkg.dir})`);
    return {
      ...pkg,
      filename: info.filename,
      path: join(out, info.filename),
      files: info.files.map((f) => f.path).sort(),
      size: info.size,
      integrity: info.integrity,
    };
  });
}

/** Every path a manifest names as an entry point (main, types, bin, exports). */
function entryPoints(manifest) {
  const found = [manifest.main, manifest.types, ...Object.values(manifest.bin ?? {})];
  const walk = (value) => {
    if (typeof value === 'string') found.push(value);
    else if (value && typeof value === 'object') for (const v of Object.values(value)) walk(v);
  };
  walk(manifest.exports);
  return [...new Set(found.filter(Boolean).map((p) => p.replace(/^\.\//, '')))];
}

/**
 * What must hold of the packed release; returns the problems found (none: it is fine).
 * One version for all; @porter/* dependencies pinned to it; @porter/native's
 * optionalDependencies exactly its platform packages at that version; a "type" in every
 * manifest; every entry point in its tarball; no sources, tests, tsconfig or source maps
 * (nor a comment pointing at one); each binary in its platform package and only there.
 */
export function checkRelease(packed) {
  const problems = [];
  const versions = new Set(packed.map((p) => p.version));
  if (versions.size !== 1) {
    problems.push(`one version for every package, found ${packed.map((p) => `${p.name}@${p.version}`).join(', ')}`);
  }
  const names = new Set(packed.map((p) => p.name));
  for (const pkg of packed) {
    const manifest = readJson(join(pkg.dir, 'package.json'));
    if (manifest.type !== 'module' && manifest.type !== 'commonjs') {
      problems.push(`${pkg.name}: package.json has no "type"`);
    }
    for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies']) {
      for (const [dep, range] of Object.entries(manifest[field] ?? {})) {
        if (dep.startsWith('@porter/') && range !== pkg.version) {
          problems.push(`${pkg.name}: ${field} ${dep}@${range}, not the release's version ${pkg.version}`);
        }
        if (dep.startsWith('@porter/') && !names.has(dep)) {
          problems.push(`${pkg.name}: ${field} names ${dep}, which this release does not publish`);
        }
      }
    }
    if (pkg.role === 'native') {
      const platforms = packed.filter((p) => p.role === 'platform').map((p) => p.name);
      const optional = manifest.optionalDependencies ?? {};
      const expected = Object.fromEntries(platforms.map((n) => [n, pkg.version]));
      if (JSON.stringify(Object.entries(optional).sort()) !== JSON.stringify(Object.entries(expected).sort())) {
        problems.push(
          `${pkg.name}: optionalDependencies ${JSON.stringify(optional)}, expected ${JSON.stringify(expected)}`,
        );
      }
    }
    for (const entry of entryPoints(manifest)) {
      if (!pkg.files.includes(entry))
        problems.push(`${pkg.name}: ${entry} (named in package.json) is not in the tarball`);
    }
    const stray = pkg.files.filter((f) => /(^|\/)(src|test)\/|\.map$|tsconfig|\.test\./.test(f));
    if (stray.length > 0) problems.push(`${pkg.name}: the tarball holds ${stray.join(', ')}`);
    for (const file of pkg.files.filter((f) => /\.(c|m)?js$|\.d\.ts$/.test(f))) {
      if (/^\/\/# sourceMappingURL=/m.test(readFileSync(join(pkg.dir, file), 'utf8'))) {
        problems.push(`${pkg.name}: ${file} points at a source map`);
      }
    }
    const binaries = pkg.files.filter((f) => f.endsWith('.node'));
    const expectedBinaries = pkg.role === 'platform' ? [pkg.binary] : [];
    if (JSON.stringify(binaries) !== JSON.stringify(expectedBinaries)) {
      problems.push(`${pkg.name}: binaries ${JSON.stringify(binaries)}, expected ${JSON.stringify(expectedBinaries)}`);
    }
  }
  return problems;
}

/** Removes the tarballs of earlier packs of these packages from `out`. */
export function clearTarballs(out) {
  if (!existsSync(out)) return;
  for (const file of readdirSync(out)) if (/^porter-.*\.tgz$/.test(file)) rmSync(join(out, file));
}

/** The option of `args` given as `--name value` or `--name=value`, or undefined. */
export function option(args, name) {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name) return args[i + 1];
    if (args[i].startsWith(`${name}=`)) return args[i].slice(name.length + 1);
  }
  return undefined;
}
