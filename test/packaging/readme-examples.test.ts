/**
 * Every TypeScript and JavaScript code block of the READMEs (the root's and each
 * package's) compiles under `tsc --strict` against the built packages and the real
 * clients' types (mqtt, pg, ioredis, ws, undici, prom-client), in the two kinds of
 * project users have: an ES module project (`"type": "module"`) and npm's default, a
 * CommonJS project as `npm init -y` makes it (`"type": "commonjs"`), both with `module:
 * nodenext`. A block that needs an ES module (top-level `await`) says so in its first
 * line, `// ES module only ...`; in the CommonJS project it must fail with TS1309 (the
 * top-level await) and nothing else, so the line is true and needed. No block uses a type
 * assertion.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const root = fileURLToPath(new URL('../..', import.meta.url));
const readmes = [
  'README.md',
  'packages/core/README.md',
  'packages/tls/README.md',
  'packages/metrics/README.md',
  'packages/cli/README.md',
  'packages/native/README.md',
];
const ESM_ONLY = /^\/\/ ES module only\b/;

interface Block {
  readme: string;
  /** The file it is compiled as. */
  file: string;
  code: string;
  esmOnly: boolean;
}

function blocks(): Block[] {
  const found: Block[] = [];
  for (const readme of readmes) {
    const markdown = readFileSync(join(root, readme), 'utf8');
    const slug = readme === 'README.md' ? 'root' : (readme.split('/')[1] as string);
    let i = 0;
    for (const m of markdown.matchAll(/^```(?:ts|js)\n([\s\S]*?)\n```$/gm)) {
      i += 1;
      const code = m[1] as string;
      found.push({ readme, file: `${slug}-${i}.ts`, code, esmOnly: ESM_ONLY.test(code) });
    }
  }
  return found;
}

/** Compiles `all` in a project of that `type`; returns each file's error codes and the output. */
function compile(
  dir: string,
  type: 'module' | 'commonjs',
  all: Block[],
): { errors: Map<string, string[]>; output: string } {
  mkdirSync(dir);
  for (const b of all) writeFileSync(join(dir, b.file), `${b.code}\nexport {};\n`);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        types: ['node'],
        skipLibCheck: true,
        esModuleInterop: true,
      },
      files: all.map((b) => b.file),
    }),
  );
  // npm init -y writes "type": "commonjs" (npm 11); an ES module project says "module".
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `readme-${type}`, version: '1.0.0', type }));
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], {
    encoding: 'utf8',
  });
  const output = `${tsc.stdout}${tsc.stderr}`;
  const errors = new Map<string, string[]>();
  for (const m of output.matchAll(/^(?:\S*\/)?([\w.-]+\.ts)\(\d+,\d+\): error (TS\d+)/gm)) {
    errors.set(m[1] as string, [...(errors.get(m[1] as string) ?? []), m[2] as string]);
  }
  if (tsc.status !== 0 && errors.size === 0) throw new Error(`tsc failed without an error per file:\n${output}`);
  return { errors, output };
}

test('README code blocks compile under tsc --strict in an ES module project and in a CommonJS one, without casts', (t) => {
  const all = blocks();
  for (const readme of [
    'README.md',
    'packages/core/README.md',
    'packages/tls/README.md',
    'packages/metrics/README.md',
  ]) {
    t.true(all.filter((b) => b.readme === readme).length >= 1, `${readme} has code blocks`);
  }
  for (const b of all) {
    // Without imports (`import { connect as tlsConnect }`) and comments.
    const code = b.code.replace(/^import [\s\S]*? from '[^']+';$/gm, '').replace(/\/\/.*$/gm, '');
    t.notRegex(code, /\bas\s+(?!const\b)[A-Za-z{[(]|<[A-Z][A-Za-z]*>\s*[a-z(]/, `${b.readme} (${b.file}): a cast`);
  }
  // Inside node_modules, so that the packages and @types resolve as in a user's project.
  const dir = mkdtempSync(join(root, 'node_modules', '.porter-readme-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  const esm = compile(join(dir, 'esm'), 'module', all);
  t.is(esm.errors.size, 0, `ES module project:\n${esm.output}`);

  const cjs = compile(join(dir, 'cjs'), 'commonjs', all);
  for (const b of all) {
    const codes = cjs.errors.get(b.file) ?? [];
    if (b.esmOnly) {
      t.true(codes.length > 0, `${b.readme} (${b.file}) says "ES module only" but compiles as CommonJS`);
      t.deepEqual([...new Set(codes)], ['TS1309'], `${b.readme} (${b.file}) as CommonJS: only its top-level await`);
    } else {
      t.deepEqual(codes, [], `${b.readme} (${b.file}) as CommonJS:\n${cjs.output}`);
    }
  }
  t.log(`${all.length} blocks; ${all.filter((b) => b.esmOnly).length} say they need an ES module`);
});
