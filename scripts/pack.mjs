// npm run pack: one tarball per package into one folder (default: tarballs/), staged as
// a release publishes them (scripts/release-packages.mjs): a platform package for each
// binary present, @porter/native with its optionalDependencies, core, tls, metrics, cli.
// Install them in another project with `npm install <folder>/*.tgz` (see the README).
//
// Options: --out <folder>; --skip-build (use what is built already); --all-binaries
// (fail unless the four binaries of napi.targets are in packages/native).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { build, checkRelease, clearTarballs, option, packAll, root, stageRelease, step } from './release-packages.mjs';

const args = process.argv.slice(2);
// A relative --out is taken from where npm run was typed (npm runs scripts at the root).
// biome-ignore lint/suspicious/noUndeclaredEnvVars: npm's own variable, no build input
const out = resolve(process.env.INIT_CWD ?? process.cwd(), option(args, '--out') ?? resolve(root, 'tarballs'));
const scratch = mkdtempSync(resolve(tmpdir(), 'porter-pack-'));
let status = 0;
try {
  if (!args.includes('--skip-build')) {
    step('npm run build');
    build();
  }
  step(`npm pack into ${out}`);
  const { packages, absent } = stageRelease({ scratch, allBinaries: args.includes('--all-binaries') });
  if (absent.length > 0) {
    process.stdout.write(
      `no binary here for ${absent.map((t) => t.platform).join(', ')}: these tarballs install on ${packages
        .filter((p) => p.role === 'platform')
        .map((p) => p.name.replace('@porter/native-', ''))
        .join(', ')} only\n`,
    );
  }
  clearTarballs(out);
  const packed = packAll(packages, out);
  for (const p of packed)
    process.stdout.write(`${p.filename}  ${p.name}@${p.version}, ${p.files.length} files, ${p.size} bytes\n`);
  const problems = checkRelease(packed);
  if (problems.length > 0) {
    process.stdout.write(`\nnpm run pack FAILED\n${problems.map((p) => `- ${p}`).join('\n')}\n`);
    status = 1;
  } else {
    process.stdout.write(`\nInstall them in another project, all together:\n  npm install ${out}/*.tgz\n`);
  }
} catch (err) {
  process.stdout.write(`\nnpm run pack FAILED\n- ${String(err.stderr || err.message).trim()}\n`);
  status = 1;
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
process.exit(status);
