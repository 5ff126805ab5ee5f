/**
 * Connection tracking and NAT, read without changing anything:
 * - `nf_conntrack_max` (the whole host's), `nf_conntrack_count` (this network
 *   namespace's) and `nf_conntrack_buckets`, from /proc/sys/net/netfilter (there only
 *   while nf_conntrack is loaded);
 * - whether outgoing connections leave with their source rewritten (SNAT, masquerade):
 *   from the conntrack table itself (/proc/net/nf_conntrack, root only: an entry whose
 *   reply goes to another address or port than the original's source), and, as root,
 *   from the nft ruleset and legacy iptables' nat tables, with the tools where they are
 *   installed and their kernel module is there already (so that listing loads nothing).
 * NAT done elsewhere (a cloud NAT gateway, a Kubernetes node's SNAT seen from a pod) is
 * not visible from here.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { release } from 'node:os';

/** The conntrack table is read up to this many bytes (about 50,000 entries). */
const TABLE_BYTES = 8 << 20;
const NFT = ['/usr/sbin/nft', '/sbin/nft'];
const IPTABLES_SAVE: Record<'ip' | 'ip6', string[]> = {
  ip: [
    '/usr/sbin/iptables-legacy-save',
    '/sbin/iptables-legacy-save',
    '/usr/sbin/iptables-save',
    '/sbin/iptables-save',
  ],
  ip6: [
    '/usr/sbin/ip6tables-legacy-save',
    '/sbin/ip6tables-legacy-save',
    '/usr/sbin/ip6tables-save',
    '/sbin/ip6tables-save',
  ],
};

/** What was read: the three numbers (or why not), and what NAT looked like where it could be seen. */
export interface ConntrackFacts {
  max: number | null;
  count: number | null;
  buckets: number | null;
  reason: string | null;
  /** Entries of the conntrack table read, and those whose source was rewritten; null: not read. */
  table: { entries: number; complete: boolean; snat: number; examples: string[] } | null;
  /** NAT rules found, per ruleset looked at (`nft`, `iptables`, `ip6tables`). */
  rules: { ruleset: string; lines: string[] }[];
  /** What could not be looked at, and why. */
  skipped: string[];
}

const errorCode = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? String(e);

function readNumber(path: string): number | Error {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(n) ? n : new Error(`${path} holds no number`);
  } catch (e) {
    return new Error(`${path}: ${errorCode(e)}`);
  }
}

/** The three settings, or null with the reason. */
function readSettings(dir: string): Pick<ConntrackFacts, 'max' | 'count' | 'buckets' | 'reason'> {
  if (!existsSync(`${dir}/nf_conntrack_max`)) {
    return { max: null, count: null, buckets: null, reason: `nf_conntrack is not loaded (no ${dir}/nf_conntrack_max)` };
  }
  const values = ['max', 'count', 'buckets'].map((name) => readNumber(`${dir}/nf_conntrack_${name}`));
  const failed = values.filter((v): v is Error => v instanceof Error);
  const value = (v: number | Error): number | null => (v instanceof Error ? null : v);
  return {
    max: value(values[0] as number | Error),
    count: value(values[1] as number | Error),
    buckets: value(values[2] as number | Error),
    reason: failed.length === 0 ? null : `unreadable: ${failed.map((e) => e.message).join('; ')}`,
  };
}

/** The first `limit` bytes of a file, whole lines only; whether that was all of it. */
function readHead(path: string, limit: number): { text: string; complete: boolean } {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(limit);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buffer, length, limit - length, null);
      if (n === 0) return { text: buffer.toString('utf8', 0, length), complete: true };
      length += n;
      if (length === limit) {
        const text = buffer.toString('utf8', 0, length);
        return { text: text.slice(0, text.lastIndexOf('\n') + 1), complete: false };
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** The entries of the conntrack table whose reply goes elsewhere than the original source. */
export function snatEntries(text: string): { entries: number; snat: number; examples: string[] } {
  let entries = 0;
  let snat = 0;
  const examples = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    entries++;
    const src = [...line.matchAll(/\bsrc=(\S+)/g)].map((m) => m[1]);
    const dst = [...line.matchAll(/\bdst=(\S+)/g)].map((m) => m[1]);
    const sport = [...line.matchAll(/\bsport=(\d+)/g)].map((m) => m[1]);
    const dport = [...line.matchAll(/\bdport=(\d+)/g)].map((m) => m[1]);
    if (src.length < 2 || dst.length < 2) continue;
    // Original: src -> dst; the reply: src' -> dst'. Without NAT, dst' is src (and dport' sport).
    if (dst[1] !== src[0] || (sport.length >= 2 && dport.length >= 2 && dport[1] !== sport[0])) {
      snat++;
      if (examples.size < 3) examples.add(`${src[0]} -> ${dst[0]} leaves as ${dst[1]}`);
    }
  }
  return { entries, snat, examples: [...examples] };
}

const firstExisting = (paths: readonly string[]): string | undefined => paths.find((p) => existsSync(p));

/** Whether a kernel module is there (loaded or built in), so that a tool using it loads nothing. */
function modulePresent(name: string): boolean {
  let modules: string;
  try {
    modules = readFileSync('/proc/modules', 'utf8');
  } catch {
    return true; // no loadable modules: everything is built in, nothing can be loaded
  }
  if (modules.split('\n').some((l) => l.startsWith(`${name} `))) return true;
  try {
    return readFileSync(`/lib/modules/${release()}/modules.builtin`, 'utf8').includes(`/${name}.ko`);
  } catch {
    return false;
  }
}

/** Lines of a ruleset that rewrite sources. */
const natLines = (text: string, pattern: RegExp): string[] =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => pattern.test(l));

function run(tool: string, args: string[]): string {
  return execFileSync(tool, args, { encoding: 'utf8', timeout: 5_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The rulesets that can be listed here, and their NAT rules. */
function readRules(facts: ConntrackFacts): void {
  const nft = firstExisting(NFT);
  if (nft === undefined) facts.skipped.push('nft ruleset: nft is not installed');
  else if (!modulePresent('nf_tables')) facts.skipped.push('nft ruleset: nf_tables is not loaded (no rules)');
  else {
    try {
      facts.rules.push({ ruleset: 'nft', lines: natLines(run(nft, ['list', 'ruleset']), /\b(masquerade|snat)\b/) });
    } catch (e) {
      facts.skipped.push(`nft ruleset: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  for (const family of ['ip', 'ip6'] as const) {
    let tables = '';
    try {
      tables = readFileSync(`/proc/net/${family}_tables_names`, 'utf8');
    } catch {
      continue; // legacy iptables is not in use (its rules, if any, are nft's above)
    }
    const tool = firstExisting(IPTABLES_SAVE[family]);
    const name = `${family === 'ip' ? 'iptables' : 'ip6tables'}`;
    if (!tables.split('\n').includes('nat')) continue;
    if (tool === undefined) facts.skipped.push(`${name} nat table: ${name}-save is not installed`);
    else {
      try {
        facts.rules.push({ ruleset: name, lines: natLines(run(tool, ['-t', 'nat']), /-j (MASQUERADE|SNAT)\b/) });
      } catch (e) {
        facts.skipped.push(`${name} nat table: ${(e as Error).message.split('\n')[0]}`);
      }
    }
  }
}

/** Reads conntrack's settings and looks for NAT (`root`: whether this process may read the table and rules). */
export function readConntrack(
  root = process.getuid?.() === 0,
  dir = '/proc/sys/net/netfilter',
  table = '/proc/net/nf_conntrack',
): ConntrackFacts {
  const facts: ConntrackFacts = { ...readSettings(dir), table: null, rules: [], skipped: [] };
  if (!existsSync(table)) {
    facts.skipped.push(`conntrack table: no ${table} (nf_conntrack not loaded, or built without its /proc file)`);
  } else {
    try {
      const head = readHead(table, TABLE_BYTES);
      facts.table = { ...snatEntries(head.text), complete: head.complete };
    } catch (e) {
      facts.skipped.push(`conntrack table: ${table}: ${errorCode(e)}${root ? '' : ' (root only)'}`);
    }
  }
  if (root) readRules(facts);
  else facts.skipped.push('nft and iptables rulesets: root only');
  return facts;
}
