// npm run release:check: everything a release does except publishing, with the native
// binaries at hand. A release (.github/workflows/release.yml) versions the packages from
// the changesets in a "Version packages" pull request; once that is merged, it builds the
// four binaries on their own runners and publishes with `npm run release:publish`. This
// script:
//
//   1. builds (npm run build: this machine's binary and the TypeScript packages);
//   2. applies the pending changesets to a copy of the manifests (changeset version),
//      checks that the packages of the fixed group end on one version, and shows the
//      versions now and after `npm run version`;
//   3. stages and packs the packages exactly as release:publish does
//      (scripts/release-packages.mjs), for the binaries present (a release has all four:
//      --all-binaries requires them), and checks them; the repository is left as it was;
//   4. runs npm publish --dry-run of each of those tarballs: the versions in the
//      manifests now, which are what release:publish would publish;
//   5. builds the API docs with warnings as errors.
//
// Options: --skip-build (the release workflow builds before), --all-binaries.
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bin,
  build,
  checkRelease,
  failure,
  packAll,
  readJson,
  root,
  run,
  stageRelease,
  step,
} from './release-packages.mjs';

const args = new Set(process.argv.slice(2));

const problems = [];
const scratch = mkdtempSync(join(tmpdir(), 'porter-release-check-'));
try {
  // 1. Build.
  if (!args.has('--skip-build')) {
    step('npm run build');
    build();
  }

  // 2. Versions from the changesets, on a copy of the manifests.
  step('pending changesets (changeset version, on a copy of the manifests)');
  const rootManifest = readJson(join(root, 'package.json'));
  const versioned = join(scratch, 'versioned');
  mkdirSync(versioned);
  writeFileSync(join(versioned, 'package.json'), `${JSON.stringify(rootManifest, null, 2)}\n`);
  cpSync(join(root, '.changeset'), join(versioned, '.changeset'), { recursive: true });
  for (const ws of rootManifest.workspaces) {
    mkdirSync(join(versioned, ws), { recursive: true });
    cpSync(join(root, ws, 'package.json'), join(versioned, ws, 'package.json'));
  }
  run(bin('changeset'), ['version'], { cwd: versioned });
  const config = readJson(join(root, '.changeset', 'config.json'));
  const versions = new Map(
    rootManifest.workspaces.map((ws) => {
      const now = readJson(join(root, ws, 'package.json'));
      return [now.name, { now: now.version, next: readJson(join(versioned, ws, 'package.json')).version }];
    }),
  );
  for (const group of config.fixed ?? []) {
    const seen = new Set(group.map((name) => versions.get(name)?.next));
    if (seen.size !== 1) problems.push(`fixed group ${group.join(', ')} ends on versions ${[...seen].join(', ')}`);
  }
  const pending = [...versions.values()].some((v) => v.now !== v.next);
  for (const [name, v] of versions) {
    process.stdout.write(`${name} ${v.now}${v.now === v.next ? ' (no pending change)' : ` -> ${v.next}`}\n`);
  }
  process.stdout.write(
    pending
      ? 'The versions after -> are those of the "Version packages" pull request (npm run version): release:publish publishes them once it is merged. Checked below: the versions now.\n'
      : 'No pending changeset: release:publish would publish the versions now, checked below.\n',
  );

  // 3. Staged and packed as release:publish does it.
  step('stage and pack as release:publish does (napi artifacts, napi pre-publish on a copy of @porter/native)');
  const { packages, absent } = stageRelease({
    scratch: join(scratch, 'stage'),
    allBinaries: args.has('--all-binaries'),
  });
  if (absent.length > 0) {
    process.stdout.write(
      `${absent.map((t) => t.binary).join(', ')} absent: built on their own runners by the release workflow; checked here without them\n`,
    );
  }
  const packed = packAll(packages, join(scratch, 'tarballs'));
  const native = packed.find((p) => p.role === 'native');
  process.stdout.write(
    `${native.name} optionalDependencies: ${JSON.stringify(readJson(join(native.dir, 'package.json')).optionalDependencies)}\n`,
  );
  problems.push(...checkRelease(packed));

  // 4. npm publish --dry-run of every tarball release:publish would publish.
  step(`npm publish --dry-run (the versions now: ${[...new Set(packed.map((p) => p.version))].join(', ')})`);
  for (const p of packed) {
    try {
      run('npm', ['publish', '--dry-run', '--ignore-scripts', '--access', 'public', p.path]);
      process.stdout.write(`${p.name}@${p.version}: ${p.files.length} files, ${p.size} bytes\n`);
    } catch (err) {
      problems.push(`${p.name}: ${failure(err, 3)}`);
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
