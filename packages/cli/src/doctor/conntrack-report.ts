/**
 * The `conntrack` section of the report and its findings, from what conntrack.ts read and
 * the host's connection count: how full the table is, whether it tracks this namespace's
 * connections at all, and whether the host NATs outgoing connections.
 */
import type { ConntrackFacts } from './conntrack.js';
import { fmt } from './ports.js';
import type { ConntrackReport, Finding, NatReport } from './report.js';

/** A table this full is a finding: once full, the kernel drops new connections' packets. */
const FULL_SHARE = 0.8;

/** What a NAT gateway leaves a fleet behind it: ports 1024-65535 of one public address, per destination. */
export const NAT_PORTS = 64_512;

function natReport(facts: ConntrackFacts): NatReport {
  const evidence: string[] = [];
  const checked: string[] = [];
  if (facts.table !== null) {
    const t = facts.table;
    checked.push(`conntrack table (${fmt(t.entries)} entries${t.complete ? '' : ', the first ones'})`);
    if (t.snat > 0) {
      evidence.push(
        `conntrack: ${fmt(t.snat)} of ${fmt(t.entries)} entries have their source rewritten (${t.examples.join('; ')})`,
      );
    }
  }
  for (const r of facts.rules) {
    checked.push(`${r.ruleset} ruleset`);
    for (const line of r.lines.slice(0, 3)) evidence.push(`${r.ruleset}: ${line}`);
  }
  return {
    outgoing: evidence.length > 0 ? true : checked.length > 0 ? false : null,
    evidence,
    checked,
    reason: facts.skipped.length === 0 ? null : facts.skipped.join('; '),
  };
}

/** The `conntrack` section; `connections`: the host's outgoing ones (null: unknown). */
export function conntrackReport(facts: ConntrackFacts, connections: number | null): ConntrackReport {
  const usage = facts.max !== null && facts.count !== null && facts.max > 0 ? facts.count / facts.max : null;
  let tracking: boolean | null = null;
  if (facts.count !== null && facts.count > 0) tracking = true;
  else if (facts.count === 0 && connections !== null && connections > 0) tracking = false;
  return {
    max: facts.max,
    count: facts.count,
    buckets: facts.buckets,
    usage,
    tracking,
    reason: facts.reason,
    nat: natReport(facts),
  };
}

function tableFinding(c: ConntrackReport, porterTotal: number | null): Finding {
  if (c.max === null || c.count === null) {
    return { id: 'nf_conntrack', status: 'info', value: 'unknown', message: `connection tracking: ${c.reason}` };
  }
  const value = `${fmt(c.count)} of ${fmt(c.max)}${c.buckets === null ? '' : `, ${fmt(c.buckets)} buckets`}`;
  if (c.usage !== null && c.usage >= FULL_SHARE) {
    const max = c.max * 2;
    return {
      id: 'nf_conntrack',
      status: 'warn',
      value,
      message: `the conntrack table is ${Math.round(c.usage * 100)} % full: once full, the kernel drops the packets of new connections ("nf_conntrack: table full, dropping packet"). nf_conntrack_max is the whole host's (set it in the host's namespace)`,
      fix: `sysctl -w net.netfilter.nf_conntrack_max=${max} && echo 'net.netfilter.nf_conntrack_max = ${max}' > /etc/sysctl.d/60-porter-conntrack.conf`,
    };
  }
  const room = c.max - c.count;
  if (c.tracking === true && porterTotal !== null && porterTotal > room) {
    return {
      id: 'nf_conntrack',
      status: 'info',
      value,
      message: `conntrack tracks this namespace's connections, and has room for ${fmt(room)} more: fewer than the ${fmt(porterTotal)} porter can open here`,
    };
  }
  return {
    id: 'nf_conntrack',
    status: 'ok',
    value,
    message:
      c.tracking === false
        ? 'conntrack tracks none of the connections of this namespace (no rule here needs it)'
        : `room for ${fmt(room)} more tracked connections`,
  };
}

function natFinding(nat: NatReport): Finding {
  const fleet = `behind a NAT, every host of a fleet shares the ${fmt(NAT_PORTS)} ports of each public address per destination, whatever porter does on each host`;
  if (nat.outgoing === true) {
    return {
      id: 'nat',
      status: 'info',
      value: 'yes',
      message: `outgoing connections leave with their source rewritten (SNAT or masquerade): ${nat.evidence.join('; ')}. The destination sees the NAT's address: ${fleet}`,
    };
  }
  if (nat.outgoing === false) {
    return {
      id: 'nat',
      status: 'ok',
      value: 'no',
      message: `no source NAT seen here (${nat.checked.join(', ')}). A NAT gateway elsewhere (a cloud NAT, a Kubernetes node seen from a pod) cannot be seen from this host: ${fleet}`,
    };
  }
  return {
    id: 'nat',
    status: 'info',
    value: 'unknown',
    message: `whether this host NATs outgoing connections could not be seen (${nat.reason}): ${fleet}`,
  };
}

/** The findings on connection tracking and NAT; `porterTotal`: what porter can open here (null: cannot run). */
export function conntrackFindings(c: ConntrackReport, porterTotal: number | null): Finding[] {
  return [tableFinding(c, porterTotal), natFinding(c.nat)];
}
