// npm run release:publish -- --registry <url>: publishes every package of the release,
// the one way they reach a registry (.github/workflows/release.yml runs this command).
//
//   1. builds (npm run build), unless --skip-build;
//   2. stages and packs the packages as scripts/release-packages.mjs says (platform
//      packages with their binaries, @porter/native with its optionalDependencies, then
//      core, tls, metrics, cli) and checks them: nothing is published if one is wrong;
//   3. asks the registry for each package's version. If every one is there with the
//      same content, it says so and publishes nothing. If one is there with other
//      content, it publishes nothing. Otherwise it publishes those not there yet, in
//      order (so a run that was cut short is finished by running it again).
//
// npm does the talking to the registry, with its own configuration: the token comes from
// .npmrc (the project's, the user's: NPM_CONFIG_USERCONFIG, `${NODE_AUTH_TOKEN}` in it as
// actions/setup-node writes it) or NPM_CONFIG_* variables, and NPM_CONFIG_PROVENANCE=true
// (or --provenance) publishes with provenance.
//
// Options: --registry <url> (required); --skip-build; --all-binaries (fail unless the four
// binaries of napi.targets are here: the release workflow's; always so for npm's own
// registry); --tag <dist-tag> (default latest; required for a prerelease version);
// --provenance.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build, checkRelease, failure, option, packAll, root, run, stageRelease, step } from './release-packages.mjs';

const execFileAsync = promisify(execFile);

const args = process.argv.slice(2);
const registry = option(args, '--registry');
const tag = option(args, '--tag');

/** Stops the command: nothing more is published. */
class Stop extends Error {
  constructor(lines) {
    super(lines.join('; '));
    this.lines = lines;
  }
}
function fail(lines) {
  throw new Stop(lines);
}

if (!registry || !/^https?:\/\/./.test(registry)) {
  process.stdout.write(
    'release:publish: give the registry to publish to: npm run release:publish -- --registry https://registry.npmjs.org/\n',
  );
  process.exit(2);
}
// The registry for the whole command line, the @porter scope's included (a scoped
// registry in an .npmrc would otherwise win for @porter/* packages).
const registryArgs = [`--registry=${registry}`, `--@porter:registry=${registry}`];

/** The integrity the registry has for name@version, or null when it has no such version. */
async function published(name, version) {
  try {
    const { stdout } = await execFileAsync(
      'npm',
      ['view', `${name}@${version}`, 'dist.integrity', '--json', ...registryArgs],
      { cwd: root, maxBuffer: 16 << 20 },
    );
    return stdout.trim() === '' ? null : JSON.parse(stdout);
  } catch (err) {
    // npm view --json reports a missing package as a JSON error with code E404.
    if (/\bE404\b/.test(`${err.stdout}\n${err.stderr}`)) return null;
    throw new Error(`could not ask ${registry} for ${name}@${version}: ${failure(err)}`);
  }
}

async function main(scratch) {
  if (!args.includes('--skip-build')) {
    step('npm run build');
    build();
  }

  step('stage, pack and check');
  const { packages, absent } = stageRelease({ scratch, allBinaries: args.includes('--all-binaries') });
  if (absent.length > 0) {
    const platforms = absent.map((t) => t.platform).join(', ');
    if (new URL(registry).hostname === 'registry.npmjs.org') {
      fail([
        `no binary here for ${platforms}: npm's registry gets every platform of napi.targets or nothing (the release workflow brings the four binaries)`,
      ]);
    }
    process.stdout.write(`no binary here for ${platforms}: not published\n`);
  }
  const packed = packAll(packages, join(scratch, 'tarballs'));
  const problems = checkRelease(packed);
  if (problems.length > 0) fail(problems);
  const version = packed[0].version;
  for (const p of packed) process.stdout.write(`${p.name}@${p.version}: ${p.files.length} files, ${p.size} bytes\n`);
  if (version.includes('-') && !tag) fail([`${version} is a prerelease: give its dist-tag (--tag next)`]);

  step(`what ${registry} has`);
  const state = await Promise.all(packed.map(async (p) => ({ ...p, there: await published(p.name, p.version) })));
  const differ = state.filter((p) => p.there !== null && p.there !== p.integrity);
  const same = state.filter((p) => p.there !== null && p.there === p.integrity);
  const missing = state.filter((p) => p.there === null);
  for (const p of state) {
    const what =
      p.there === null ? 'not there' : p.there === p.integrity ? 'there, same content' : 'THERE, OTHER CONTENT';
    process.stdout.write(`${p.name}@${p.version}: ${what}\n`);
  }
  if (differ.length > 0) {
    fail([
      `${differ.map((p) => `${p.name}@${p.version}`).join(', ')} ${differ.length === 1 ? 'is' : 'are'} on ${registry} with other content than this release's`,
      'a published version cannot change: bump the version (changeset) and publish that',
    ]);
  }
  if (missing.length === 0) {
    process.stdout.write(
      `\nrelease:publish: every package is on ${registry} at ${version} already, with this content: nothing published\n`,
    );
    return;
  }
  if (same.length > 0) {
    process.stdout.write(`an earlier run published ${same.length} of ${state.length}: publishing the others\n`);
  }

  step(`publish to ${registry}`);
  try {
    const user = run('npm', ['whoami', ...registryArgs]).trim();
    process.stdout.write(`as ${user}\n`);
  } catch (err) {
    fail([
      `not logged in to ${registry} (npm whoami: ${failure(err, 2)}): give npm a token (.npmrc or NODE_AUTH_TOKEN)`,
    ]);
  }
  const publishArgs = ['--access', 'public', '--ignore-scripts', ...registryArgs];
  if (tag) publishArgs.push('--tag', tag);
  if (args.includes('--provenance')) publishArgs.push('--provenance');
  const done = [];
  for (const p of missing) {
    try {
      run('npm', ['publish', p.path, ...publishArgs]);
    } catch (err) {
      fail([
        `npm publish ${p.name}@${p.version}: ${failure(err, 6)}`,
        `published in this run: ${done.length > 0 ? done.join(', ') : 'none'}; run the same command again to publish the rest`,
      ]);
    }
    done.push(`${p.name}@${p.version}`);
    process.stdout.write(`published ${p.name}@${p.version}\n`);
  }
  process.stdout.write(`\nrelease:publish: ${done.length} packages published to ${registry} at ${version}\n`);
}

const scratch = mkdtempSync(join(tmpdir(), 'porter-publish-'));
let status = 0;
try {
  await main(scratch);
} catch (err) {
  const lines = err instanceof Stop ? err.lines : [String(err.stderr || err.message || err).trim()];
  process.stdout.write(
    `\nrelease:publish FAILED: nothing more was published\n${lines.map((l) => `- ${l}`).join('\n')}\n`,
  );
  status = 1;
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
process.exit(status);
