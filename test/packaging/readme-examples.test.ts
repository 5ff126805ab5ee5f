/**
 * The integration examples of the package READMEs (each code block after a
 * `<!-- checked -->` line) compile under `tsc --strict` against the built packages and
 * the real clients' types (mqtt, pg, ioredis, ws, undici), and use no type assertion.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const root = fileURLToPath(new URL('../..', import.meta.url));
const readmes = ['packages/core/README.md', 'packages/tls/README.md'];

function checkedBlocks(markdown: string): string[] {
  const blocks: string[] = [];
  for (const m of markdown.matchAll(/<!-- checked -->\s*\n```ts\n([\s\S]*?)\n```/g)) blocks.push(m[1] as string);
  return blocks;
}

test('README integration examples compile under tsc --strict, without casts', (t) => {
  // Inside node_modules, so that the packages and @types resolve as in a user's project.
  const dir = mkdtempSync(join(root, 'node_modules', '.porter-readme-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const files: string[] = [];
  for (const readme of readmes) {
    const blocks = checkedBlocks(readFileSync(join(root, readme), 'utf8'));
    t.true(blocks.length >= 2, `${readme} has checked examples`);
    blocks.forEach((code, i) => {
      t.notRegex(code, /\bas\s+(?!const\b)[A-Za-z{[(]|<[A-Z][A-Za-z]*>\s*[a-z(]/, `${readme} example ${i + 1}: a cast`);
      const name = `${readme.split('/')[1]}-${i + 1}.ts`;
      // `export {}`: each example is a module of its own (top-level await allowed).
      writeFileSync(join(dir, name), `${code}\nexport {};\n`);
      files.push(name);
    });
  }
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
      files,
    }),
  );
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], {
    encoding: 'utf8',
  });
  t.is(tsc.status, 0, `${tsc.stdout}${tsc.stderr}`);
});
