/**
 * The shape of every hand-written source of the repository (packages/, bench/, scripts/,
 * test/, examples/, crates/: whatever git tracks, less napi-rs's generated loader and
 * typings): files of one job (none over 450 lines), functions that fit on a screen or two
 * (none over 120; for Rust, clippy's too_many_lines, whose configuration is checked here),
 * and no circle between the modules of a package or a crate. TypeScript and JavaScript are
 * read with TypeScript's own parser and pre-processor, Rust with its comments, doc links
 * and strings left out. The last test feeds each check a violation of its own, so none of
 * them passes by reading nothing.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { circles, type Edge } from './shape/circles.js';
import { moduleEdges } from './shape/rust.js';
import {
  handWritten,
  importEdges,
  lineCount,
  longFunctions,
  MAX_FILE_LINES,
  MAX_FUNCTION_LINES,
  SCRIPT,
} from './shape/sources.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const files = handWritten(root);
const texts = new Map(files.map((file) => [file, readFileSync(join(root, file), 'utf8')]));
const text = (file: string): string => texts.get(file) as string;
const scripts = files.filter((file) => SCRIPT.test(file));

test('every folder of hand-written sources is read', (t) => {
  const withSources = readdirSync(join(root, 'packages')).filter((p) => existsSync(join(root, 'packages', p, 'src')));
  t.true(withSources.length >= 4, `packages with a src/: ${withSources.join(', ')}`);
  const folders = withSources.map((p) => `packages/${p}/src/`);
  for (const folder of [
    ...folders,
    'packages/metrics/grafana/',
    'bench/',
    'scripts/',
    'test/',
    'examples/',
    'crates/',
  ]) {
    t.true(
      files.some((f) => f.startsWith(folder)),
      `no source read under ${folder}`,
    );
  }
  t.false(files.includes('packages/native/index.js'), 'the generated loader is not checked');
  t.true(files.includes('packages/native/binding.js'), 'the hand-written loader is');
});

test(`no hand-written source file over ${MAX_FILE_LINES} lines`, (t) => {
  const tooLong = files
    .map((file) => ({ file, lines: lineCount(text(file)) }))
    .filter(({ lines }) => lines > MAX_FILE_LINES)
    .map(({ file, lines }) => `${file}: ${lines} lines`);
  t.deepEqual(
    tooLong,
    [],
    'Split each file by job into modules of their own (a test file: what its tests share into a module beside ' +
      'it, or into test/helpers/ when other files use it too; its cases into files by area; every test kept)',
  );
});

test(`no TypeScript or JavaScript function over ${MAX_FUNCTION_LINES} lines`, (t) => {
  const tooLong = scripts.flatMap((file) => longFunctions(file, text(file)));
  t.deepEqual(
    tooLong,
    [],
    'Split each function into steps of one job each (a long test: its setup and checks into functions ' +
      'of their own, or one test per behaviour)',
  );
});

test(`Rust functions: clippy denies too_many_lines over ${MAX_FUNCTION_LINES} lines in every crate`, (t) => {
  const clippy = readFileSync(join(root, 'clippy.toml'), 'utf8');
  t.regex(clippy, new RegExp(`^too-many-lines-threshold\\s*=\\s*${MAX_FUNCTION_LINES}\\s*$`, 'm'), 'clippy.toml');
  const cargo = readFileSync(join(root, 'Cargo.toml'), 'utf8');
  const lints = /^\[workspace\.lints\.clippy\]\n((?:(?!\[).*\n)*)/m.exec(cargo)?.[1] ?? '';
  t.regex(lints, /^too_many_lines\s*=\s*"(deny|warn)"/m, 'Cargo.toml [workspace.lints.clippy] too_many_lines');
  const members = [...(/^members\s*=\s*\[([^\]]*)\]/m.exec(cargo)?.[1]?.matchAll(/"([^"]+)"/g) ?? [])].map((m) => m[1]);
  t.true(members.length > 0, 'Cargo.toml [workspace] members');
  for (const member of members) {
    const manifest = readFileSync(join(root, member as string, 'Cargo.toml'), 'utf8');
    t.regex(manifest, /^\[lints\]\nworkspace\s*=\s*true$/m, `${member}/Cargo.toml: [lints] workspace = true`);
  }
});

test('no import circle among the modules of any package or folder (static, type, re-export and lazy imports)', (t) => {
  const known = new Set(scripts);
  const edges = scripts.flatMap((file) => importEdges(file, text(file), known));
  t.true(edges.length > 100, `${edges.length} relative imports read`);
  t.deepEqual(
    circles(edges),
    [],
    'Each chain of imports comes back to where it started: move what both ends need into a module of its own ' +
      'that imports neither (a lazy import(...) back is a circle too)',
  );
});

test('no module circle in any crate (crate::, super:: and self:: paths)', (t) => {
  const roots = files.filter((f) => /^crates\/[^/]+\/(src\/(lib|main)\.rs|examples\/[^/]+\/main\.rs)$/.test(f));
  t.true(roots.includes('crates/porter-core/src/lib.rs') && roots.includes('crates/porter-node/src/lib.rs'));
  const found = roots.flatMap((crate) => {
    const edges = moduleEdges(crate, (file) => texts.get(file));
    t.true(edges.length > 0 || crate.includes('/examples/'), `${crate}: no module reference read`);
    return circles(edges).map((circle) => `${crate}: ${circle}`);
  });
  t.deepEqual(
    found,
    [],
    'Each chain of module references comes back to where it started: move what both ends need into a module ' +
      'of its own that refers to neither (a type of its own file, primitive fields in place of the other type)',
  );
});

test('each check catches a violation', (t) => {
  t.is(lineCount(`${'x\n'.repeat(MAX_FILE_LINES + 1)}`), MAX_FILE_LINES + 1);
  t.is(lineCount('a\nb'), 2);
  const body = '  n++;\n'.repeat(MAX_FUNCTION_LINES - 2);
  t.deepEqual(longFunctions('a.ts', `export function fits(n: number) {\n${body}}\n`), []);
  t.deepEqual(longFunctions('a.test.ts', `test('a case', (t) => {\n  let n = 0;\n${body}});\n`), [
    `a.test.ts:1 test('a case'): ${MAX_FUNCTION_LINES + 1} lines`,
  ]);

  const known = new Set(['p/a.ts', 'p/b.ts', 'p/c.mjs']);
  const a = "// import './b.js';\nexport { x } from './b.js';\n";
  const b = "const s = `import('./a.js')`;\nexport async function f() {\n  return import('./a.js');\n}\n";
  const ts: Edge[] = [...importEdges('p/a.ts', a, known), ...importEdges('p/b.ts', b, known)];
  t.deepEqual(circles(ts), ['p/a.ts:2 -> p/b.ts:3 -> p/a.ts']);
  t.deepEqual(importEdges('p/c.mjs', "import type { T } from './a.js';\nrequire('./b.js');\n", known).length, 2);

  const crate = new Map([
    ['src/lib.rs', 'mod error;\nmod range;\nmod sys;\npub use error::Error;\n'],
    ['src/error.rs', '//! Holds a [`crate::range::PortRange`].\npub struct Error;\nconst S: &str = "crate::sys::x";\n'],
    ['src/range.rs', 'use crate::{sys::{self, probe}, Error};\n'],
    ['src/sys.rs', 'pub fn probe() {}\n#[cfg(test)]\nmod tests {\n    use super::super::range::*;\n}\n'],
  ]);
  const rust = moduleEdges('src/lib.rs', (file) => crate.get(file));
  t.deepEqual(rust.map((e) => `${e.at} ${e.from} -> ${e.to}`).sort(), [
    'src/range.rs:1 crate::range -> crate::error',
    'src/range.rs:1 crate::range -> crate::sys',
    'src/sys.rs:4 crate::sys -> crate::range',
  ]);
  t.deepEqual(circles(rust), ['crate::range (src/range.rs:1) -> crate::sys (src/sys.rs:4) -> crate::range']);

  const edge = (from: string, to: string, line: number): Edge => ({ from, to, at: `${from}:${line}` });
  const three = [edge('x', 'y', 1), edge('y', 'z', 1), edge('z', 'x', 1), edge('y', 'x', 2), edge('z', 'w', 2)];
  t.deepEqual(circles(three), ['x:1 -> y:2 -> x (of 3 in one circle: x, y, z)'], 'the shortest circle of a set');
});
