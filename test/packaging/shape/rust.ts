/**
 * The module graph of a Rust crate, for test/packaging/shape.test.ts: which module refers
 * to which through `crate::`, `super::` and `self::` paths (in `use` trees and in code),
 * with comments, doc links and string literals left out. A reference from inside module
 * `a` (its file, its submodules' files, its inline modules) to an item of a sibling module
 * `b` is an edge `a -> b`, at whatever depth the two sit (`crate::connect::finish ->
 * crate::connect::start` as well as `crate::flow -> crate::registry`); an item reached
 * through a re-export (`pub use registry::Registry` in lib.rs) counts for the module that
 * defines it. Reads files through `read`, so the test can feed it text of its own.
 */
import { dirname, posix } from 'node:path';
import type { Edge } from './circles.js';

/** `text` with comments, string and character literals blanked (newlines kept, so offsets and lines stay). */
export function stripRust(text: string): string {
  const out = text.split('');
  const blank = (from: number, to: number): void => {
    for (let k = from; k < to; k++) if (out[k] !== '\n') out[k] = ' ';
  };
  let i = 0;
  while (i < text.length) {
    const two = text.slice(i, i + 2);
    if (two === '//') {
      const end = text.indexOf('\n', i);
      const stop = end === -1 ? text.length : end;
      blank(i, stop);
      i = stop;
    } else if (two === '/*') {
      let depth = 0;
      let j = i;
      do {
        const opens = text.startsWith('/*', j);
        const closes = !opens && text.startsWith('*/', j);
        depth += opens ? 1 : closes ? -1 : 0;
        j += opens || closes ? 2 : 1;
      } while (depth > 0 && j < text.length);
      blank(i, j);
      i = j;
    } else {
      const raw = /^b?r(#*)"/.exec(text.slice(i, i + 260));
      if (raw !== null && !/\w/.test(text[i - 1] ?? '')) {
        const close = `"${raw[1]}`;
        const end = text.indexOf(close, i + raw[0].length);
        const stop = end === -1 ? text.length : end + close.length;
        blank(i, stop);
        i = stop;
      } else if (text[i] === '"') {
        let j = i + 1;
        while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
        blank(i, j + 1);
        i = j + 1;
      } else if (text[i] === "'" && (text[i + 1] === '\\' || text[i + 2] === "'")) {
        // A character literal ('x', '\n', '\u{1F600}'); a lifetime ('a) has no closing quote.
        let j = i + 2;
        while (j < text.length && text[j] !== "'") j += text[j] === '\\' ? 2 : 1;
        blank(i, j + 1);
        i = j + 1;
      } else {
        i++;
      }
    }
  }
  return out.join('');
}

/** A module of the crate: its path from the crate root, its file, its submodules and what it `use`s. */
interface Module {
  path: string[];
  file: string;
  children: Map<string, Module>;
  /** Names its `use` declarations bring in, to the absolute path they name. */
  uses: Map<string, string[]>;
}

type Read = (file: string) => string | undefined;

/** The paths a `use` tree or path tail starting at `at` names (`a::{b, c::d}` is [a,b] and [a,c,d]). */
function pathTree(text: string, at: number): { paths: string[][]; end: number } {
  let i = at;
  const space = (): void => {
    while (/\s/.test(text[i] ?? '')) i++;
  };
  space();
  if (text[i] === '{') {
    i++;
    const paths: string[][] = [];
    for (space(); i < text.length && text[i] !== '}'; space()) {
      const inner = pathTree(text, i);
      paths.push(...inner.paths);
      i = inner.end;
      space();
      if (text[i] === ',') i++;
      else if (text[i] !== '}') break;
    }
    return { paths, end: i + 1 };
  }
  const ident = /^(?:r#)?([A-Za-z_]\w*)/.exec(text.slice(i, i + 100));
  if (ident === null) return { paths: [[]], end: text[i] === '*' ? i + 1 : i };
  const name = ident[1] as string;
  i += ident[0].length;
  space();
  if (text.startsWith('::', i) && text[i + 2] !== '<') {
    const rest = pathTree(text, i + 2);
    return { paths: rest.paths.map((p) => [name, ...p]), end: rest.end };
  }
  // `name as alias`: the alias is what the module calls it.
  const alias = /^as\s+(?:r#)?(\w+)/.exec(text.slice(i, i + 100));
  if (alias !== null) return { paths: [[name, `as:${alias[1]}`]], end: i + alias[0].length };
  return { paths: [[name]], end: i };
}

/** The module tree under the crate root `rootFile`, from its `mod name;` declarations. */
function moduleTree(rootFile: string, read: Read): { root: Module; files: Map<string, Module> } {
  const files = new Map<string, Module>();
  const load = (file: string, path: string[]): Module => {
    const module: Module = { path, file, children: new Map(), uses: new Map() };
    files.set(file, module);
    const raw = read(file) ?? '';
    const text = stripRust(raw);
    const own = path.length === 0 || file.endsWith('/mod.rs') ? dirname(file) : file.replace(/\.rs$/, '');
    for (const m of text.matchAll(/(?<![\w:])mod\s+(?:r#)?(\w+)\s*;/g)) {
      const name = m[1] as string;
      const attr = /#\[path\s*=\s*"([^"]+)"\]\s*(?:pub(?:\([^)]*\))?\s+)?$/.exec(raw.slice(0, m.index));
      const candidates = attr
        ? [posix.join(dirname(file), attr[1] as string)]
        : [posix.join(own, `${name}.rs`), posix.join(own, name, 'mod.rs')];
      const found = candidates.find((c) => read(c) !== undefined);
      if (found !== undefined) module.children.set(name, load(found, [...path, name]));
    }
    return module;
  };
  const root = load(rootFile, []);
  for (const module of files.values()) {
    const text = stripRust(read(module.file) ?? '');
    for (const m of text.matchAll(/(?<![\w:])use\s+/g)) {
      for (const p of pathTree(text, (m.index as number) + m[0].length).paths) {
        const last = p.at(-1);
        const alias = last?.startsWith('as:') ? last.slice(3) : undefined;
        const named = alias === undefined ? p : p.slice(0, -1);
        const absolute = absolutePath(module.path, named, module);
        const name = alias ?? named.at(-1);
        if (absolute !== undefined && name !== undefined && name !== 'self') module.uses.set(name, absolute);
      }
    }
  }
  return { root, files };
}

/** `segments` (as written in `module`) from the crate root, or undefined for another crate's path. */
function absolutePath(at: string[], segments: string[], module?: Module): string[] | undefined {
  const [first, ...rest] = segments;
  if (first === 'crate' || first === '$crate') return rest;
  if (first === 'self') return [...at, ...rest];
  if (first === 'super') {
    const supers = segments.findIndex((s) => s !== 'super');
    const k = supers === -1 ? segments.length : supers;
    return [...at.slice(0, Math.max(0, at.length - k)), ...segments.slice(k)];
  }
  if (first !== undefined && module?.children.has(first)) return [...at, ...segments];
  return undefined;
}

/** The module an absolute path lands in, following `use` re-exports (`crate::Error` is `crate::error`). */
function landsIn(root: Module, path: string[], hops = 0): string[] {
  let module = root;
  for (const segment of path) {
    if (segment === 'self') continue;
    const child = module.children.get(segment);
    if (child !== undefined) {
      module = child;
      continue;
    }
    const reexport = module.uses.get(segment);
    if (reexport !== undefined && hops < 8) return landsIn(root, reexport, hops + 1);
    break;
  }
  return module.path;
}

/** The edges between sibling modules of the crate whose root is `rootFile` (lib.rs or main.rs). */
export function moduleEdges(rootFile: string, read: Read): Edge[] {
  const { root, files } = moduleTree(rootFile, read);
  const edges: Edge[] = [];
  for (const [file, module] of files) {
    const text = stripRust(read(file) ?? '');
    const inline: (string | null)[] = [];
    const pattern = /(?<![\w:])mod\s+(?:r#)?(\w+)\s*\{|[{}]|(?<![\w$:])(\$?crate|self|super)((?:\s*::\s*super)*)\s*::/g;
    for (const m of text.matchAll(pattern)) {
      if (m[1] !== undefined) inline.push(m[1]);
      else if (m[0] === '{') inline.push(null);
      else if (m[0] === '}') inline.pop();
      else {
        const at = [...module.path, ...inline.filter((name): name is string => name !== null)];
        const head = [m[2] as string, ...Array.from(m[3]?.matchAll(/super/g) ?? [], () => 'super')];
        const line = text.slice(0, m.index).split('\n').length;
        for (const tail of pathTree(text, (m.index as number) + m[0].length).paths) {
          const absolute = absolutePath(at, [...head, ...tail.filter((s) => !s.startsWith('as:'))]);
          if (absolute === undefined) continue;
          const target = landsIn(root, absolute);
          let c = 0;
          while (c < at.length && c < target.length && at[c] === target[c]) c++;
          if (c >= at.length || c >= target.length) continue; // within one module, or up to an ancestor
          const name = (p: string[]): string => ['crate', ...p.slice(0, c + 1)].join('::');
          const edge = { from: name(at), to: name(target), at: `${file}:${line}` };
          if (!edges.some((e) => e.from === edge.from && e.to === edge.to && e.at === edge.at)) edges.push(edge);
        }
      }
    }
  }
  return edges;
}
