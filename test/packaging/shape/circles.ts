/**
 * Import circles, for test/packaging/shape.test.ts: a graph's edges in (modules of a
 * package, or of a crate), its circles out, each written with the lines that make it.
 */

/** One edge of an import graph: `from` imports `to`, written at `at` (file:line). */
export interface Edge {
  from: string;
  to: string;
  at: string;
}

/** `a.ts:3` for a file's own import; `crate::a (src/a.rs:3)` where the node is a module. */
const step = (e: Edge): string => (e.at.startsWith(`${e.from}:`) ? e.at : `${e.from} (${e.at})`);

/** The shortest chain of `out`'s edges, within `members`, from `start` back to it. */
function shortestCircle(start: string, out: Map<string, Edge[]>, members: Set<string>): Edge[] {
  const via = new Map<string, Edge>();
  let frontier = [start];
  while (frontier.length > 0) {
    const next: string[] = [];
    for (const node of frontier) {
      for (const edge of out.get(node) ?? []) {
        if (!members.has(edge.to)) continue;
        if (edge.to === start) {
          const chain = [edge];
          for (let at = node; at !== start; at = (via.get(at) as Edge).from) chain.unshift(via.get(at) as Edge);
          return chain;
        }
        if (!via.has(edge.to)) {
          via.set(edge.to, edge);
          next.push(edge.to);
        }
      }
    }
    frontier = next;
  }
  return [];
}

/**
 * The circles of the graph `edges` makes: one line per set of modules that import each
 * other (a strongly connected component), with its shortest circle written as the chain of
 * imports and the line of each (`a.ts:3 -> b.ts:7 -> a.ts`), and every module of the set
 * when there are more.
 */
export function circles(edges: readonly Edge[]): string[] {
  const out = new Map<string, Edge[]>();
  for (const edge of edges) {
    const from = out.get(edge.from) ?? [];
    if (!from.some((e) => e.to === edge.to)) out.set(edge.from, [...from, edge]); // the first line that imports it
  }
  // Tarjan's strongly connected components.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const sets: string[][] = [];
  const connect = (node: string): void => {
    index.set(node, index.size);
    low.set(node, index.get(node) as number);
    stack.push(node);
    for (const { to } of out.get(node) ?? []) {
      if (!index.has(to)) connect(to);
      if (stack.includes(to)) low.set(node, Math.min(low.get(node) as number, low.get(to) as number));
    }
    if (low.get(node) === index.get(node)) {
      const set = stack.splice(stack.indexOf(node));
      if (set.length > 1) sets.push(set.sort());
    }
  };
  for (const node of [...out.keys()].sort()) if (!index.has(node)) connect(node);
  return sets.map((set) => {
    const members = new Set(set);
    const shortest = set
      .map((start) => shortestCircle(start, out, members))
      .reduce((best, chain) => (chain.length < best.length ? chain : best));
    const chain = `${shortest.map(step).join(' -> ')} -> ${shortest[0]?.from}`;
    return set.length > shortest.length ? `${chain} (of ${set.length} in one circle: ${set.join(', ')})` : chain;
  });
}
