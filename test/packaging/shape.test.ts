/**
 * The shape of @porter/core's and @porter/tls's sources and of the benchmarks: files of
 * one job (none over 450 lines), functions that fit on a screen or two (none over 120),
 * and no import circle between the modules of a package. Read with TypeScript's own
 * parser, so a function is what the language says it is.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import ts from 'typescript';

const root = fileURLToPath(new URL('../..', import.meta.url));
const MAX_FILE_LINES = 450;
const MAX_FUNCTION_LINES = 120;

/** The hand-written sources under `dir` (.ts and .mjs; no declarations, builds or results). */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return ['dist', 'node_modules', 'results'].includes(name) ? [] : sources(path);
    return /\.(ts|mjs)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

const checked = ['packages/core/src', 'packages/tls/src', 'bench'].flatMap((d) => sources(join(root, d)));

test('no source file over 450 lines and no function over 120 lines (core, tls, bench)', (t) => {
  const tooLong: string[] = [];
  for (const file of checked) {
    const text = readFileSync(file, 'utf8');
    const name = relative(root, file);
    const lines = text.split('\n').length;
    if (lines > MAX_FILE_LINES) tooLong.push(`${name}: ${lines} lines`);
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
        const first = source.getLineAndCharacterOfPosition(node.getStart()).line;
        const last = source.getLineAndCharacterOfPosition(node.end).line;
        const fn = node.name?.getText(source) ?? '(anonymous)';
        if (last - first + 1 > MAX_FUNCTION_LINES)
          tooLong.push(`${name}:${first + 1} ${fn}: ${last - first + 1} lines`);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  t.true(checked.length > 30, `${checked.length} files read`);
  t.deepEqual(tooLong, []);
});

/** Every import circle among the modules of `dir` (relative imports only). */
function circles(dir: string): string[] {
  const files = sources(join(root, dir)).filter((f) => f.endsWith('.ts'));
  const imports = new Map(
    files.map((f) => {
      const text = readFileSync(f, 'utf8');
      const targets = [...text.matchAll(/from '(\.[^']+)'/g)].map((m) =>
        resolve(dirname(f), (m[1] as string).replace(/\.js$/, '.ts')),
      );
      return [f, targets.filter((target) => files.includes(target))];
    }),
  );
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    path.push(f);
    for (const next of imports.get(f) ?? []) {
      if (state.get(next) === 'open') {
        found.push([...path.slice(path.indexOf(next)), next].map((p) => relative(join(root, dir), p)).join(' -> '));
      } else if (!state.has(next)) {
        visit(next);
      }
    }
    path.pop();
    state.set(f, 'done');
  };
  for (const f of files) if (!state.has(f)) visit(f);
  return found;
}

test('no import circle in @porter/core or @porter/tls', (t) => {
  t.deepEqual(circles('packages/core/src'), []);
  t.deepEqual(circles('packages/tls/src'), []);
});
