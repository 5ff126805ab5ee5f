/**
 * The readers behind test/packaging/shape.test.ts: which files of the repository are
 * hand-written sources, how long each of their functions is (TypeScript's own parser, so a
 * function is what the language says it is), and which relative modules each imports.
 * Each takes a file's text, so the test can also show that it catches what it is meant to.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import ts from 'typescript';
import type { Edge } from './circles.js';

/** Longest hand-written source file, in lines. */
export const MAX_FILE_LINES = 450;
/** Longest function, in lines (its signature, body and the comments inside). */
export const MAX_FUNCTION_LINES = 120;

/** Committed files that a tool writes (napi-rs's loader and typings): not checked. */
export const GENERATED = ['packages/native/index.js', 'packages/native/index.d.ts'];

/** TypeScript and JavaScript, parsed for functions and imports. */
export const SCRIPT = /\.(ts|mts|cts|tsx|js|mjs|cjs)$/;
/** Every source whose length is checked: scripts, Rust and shell. */
export const SOURCE = /\.(ts|mts|cts|tsx|js|mjs|cjs|rs|sh)$/;

/**
 * The repository's hand-written sources, relative to `root` with `/` separators: the files
 * git tracks or would track (so .gitignore keeps out dist/, target/, docs/api/, bench
 * results and node_modules), less the generated ones.
 */
export function handWritten(root: string): string[] {
  const git = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], {
    cwd: root,
    encoding: 'utf8',
  });
  if (git.status !== 0) throw new Error(`git ls-files failed in ${root}: ${git.stderr || git.error}`);
  return git.stdout
    .split('\0')
    .filter((name) => SOURCE.test(name) && !GENERATED.includes(name) && existsSync(join(root, name)))
    .sort();
}

/** Lines in `text` as an editor numbers them (a final newline ends the last line). */
export function lineCount(text: string): number {
  if (text === '') return 0;
  const newlines = text.split('\n').length - 1;
  return text.endsWith('\n') ? newlines : newlines + 1;
}

/** A name to find a function by: its own, the variable or key it is assigned to, or the call it is passed to. */
function functionName(node: ts.FunctionLikeDeclaration, source: ts.SourceFile): string {
  if (node.name !== undefined) return node.name.getText(source);
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) {
    return parent.name.getText(source);
  }
  if (ts.isCallExpression(parent)) {
    const callee = parent.expression.getText(source);
    const title = parent.arguments.find(ts.isStringLiteralLike);
    if (title === undefined) return `callback of ${callee}()`;
    const short = title.text.length > 70 ? `${title.text.slice(0, 67)}...` : title.text;
    return `${callee}('${short}')`;
  }
  return '(anonymous function)';
}

/** `file:line name: N lines` for every function of `text` longer than `max` lines. */
export function longFunctions(file: string, text: string, max = MAX_FUNCTION_LINES): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(node.end).line;
      const lines = last - first + 1;
      if (lines > max) found.push(`${file}:${first + 1} ${functionName(node, source)}: ${lines} lines`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The module a relative specifier names, among `known` (`./x.js` may be x.ts, x.js or x/index.ts). */
function resolveSpecifier(file: string, specifier: string, known: ReadonlySet<string>): string | undefined {
  const base = posix.join(dirname(file), specifier);
  const stem = base.replace(/\.(m|c)?js$/, '');
  const candidates = [base, `${stem}.ts`, `${stem}.mts`, `${stem}.cts`, `${stem}.tsx`, `${base}/index.ts`];
  if (/\.mjs$/.test(base)) candidates.push(`${stem}.mts`);
  return candidates.find((c) => known.has(c));
}

/**
 * The relative imports of `file` that land on another of `known`: `import` and
 * `import type`, `export ... from`, side-effect imports, dynamic `import('./x.js')` (a
 * lazy import back is still a circle), `import('./x.js')` types and `require`. Comments
 * and strings are not imports (TypeScript's own pre-processor reads them).
 */
export function importEdges(file: string, text: string, known: ReadonlySet<string>): Edge[] {
  const info = ts.preProcessFile(text, true, true);
  const edges: Edge[] = [];
  for (const ref of info.importedFiles) {
    if (!ref.fileName.startsWith('.')) continue;
    const to = resolveSpecifier(file, ref.fileName, known);
    if (to === undefined || to === file) continue;
    const line = text.slice(0, ref.pos).split('\n').length;
    edges.push({ from: file, to, at: `${file}:${line}` });
  }
  return edges;
}
