/**
 * Which addresses a connect tries, in which order, and for how long each: net.connect's
 * rules in Node 20. A host name resolves to every address (`all: true`) when the family
 * is not fixed, no source address is given and `autoSelectFamily` is on (Node's default,
 * `net.getDefaultAutoSelectFamily()`); the addresses are tried one at a time, the two
 * families alternating from the family of the first answer, each for
 * `autoSelectFamilyAttemptTimeout` ms (default `net.getDefaultAutoSelectFamilyAttemptTimeout()`,
 * at least 10) but the last, which has what is left of the connect's own deadline.
 */
import { ADDRCONFIG, lookup as dnsLookup, type LookupAddress } from 'node:dns';
import {
  getDefaultAutoSelectFamily,
  getDefaultAutoSelectFamilyAttemptTimeout,
  isIP,
  type LookupFunction,
} from 'node:net';

/** One address to try. */
export interface Candidate {
  address: string;
  family: 4 | 6;
}

/** How a connect resolves its host and spaces its attempts. */
export interface AttemptPlan {
  /** Resolve to every address and try them in turn. */
  all: boolean;
  /** Milliseconds for each attempt but the last (when `all`). */
  attemptTimeout: number;
}

/** The plan for a connect's options (checked by the caller). */
export function attemptPlan(
  family: 0 | 4 | 6,
  localAddress: string | undefined,
  autoSelectFamily: boolean | undefined,
  attemptTimeout: number | undefined,
): AttemptPlan {
  const auto = autoSelectFamily ?? getDefaultAutoSelectFamily();
  const ms = attemptTimeout ?? getDefaultAutoSelectFamilyAttemptTimeout();
  return { all: auto && family === 0 && localAddress === undefined, attemptTimeout: Math.max(10, ms) };
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

function notFound(host: string): Error {
  return Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND', hostname: host });
}

/**
 * The addresses to try for `host`, in order: `lookup` (default dns.lookup) with Node's
 * hints (ADDRCONFIG when neither family nor hints are given), every address when
 * `all`, else the first.
 */
export function resolveCandidates(
  host: string,
  family: 0 | 4 | 6,
  hints: number | undefined,
  lookup: LookupFunction | undefined,
  all: boolean,
): Promise<Candidate[]> {
  const fn = (lookup ?? dnsLookup) as (hostname: string, options: object, cb: LookupCallback) => void;
  const options = { family, hints: hints || (family === 0 ? ADDRCONFIG : 0), all };
  return new Promise((resolve, reject) => {
    fn(host, options, (err, address, fam) => {
      if (err) return reject(err);
      const answers: LookupAddress[] =
        typeof address === 'string'
          ? [{ address, family: fam ?? isIP(address) }]
          : Array.isArray(address)
            ? address
            : [];
      const valid = answers.filter((a) => isIP(a.address) !== 0);
      if (valid.length === 0) return reject(notFound(host));
      resolve(all ? interleave(valid) : [asCandidate(valid[0] as LookupAddress)]);
    });
  });
}

function asCandidate(a: LookupAddress): Candidate {
  return { address: a.address, family: isIP(a.address) === 6 ? 6 : 4 };
}

/** Each address once, the families alternating, starting with the first answer's. */
export function interleave(answers: LookupAddress[]): Candidate[] {
  const first = isIP((answers[0] as LookupAddress).address);
  const same: Candidate[] = [];
  const other: Candidate[] = [];
  const seen = new Set<string>();
  for (const a of answers) {
    if (seen.has(a.address)) continue;
    seen.add(a.address);
    const c = asCandidate(a);
    (c.family === first ? same : other).push(c);
  }
  const out: Candidate[] = [];
  for (let i = 0; i < Math.max(same.length, other.length); i++) {
    if (i < same.length) out.push(same[i] as Candidate);
    if (i < other.length) out.push(other[i] as Candidate);
  }
  return out;
}

/** Every attempt failed: Node's AggregateError (its `code` is the first error's). */
export function allFailed(errors: Error[]): Error {
  if (errors.length === 1) return errors[0] as Error;
  const err = new AggregateError(errors, '') as AggregateError & { code?: string };
  err.code = (errors[0] as Error & { code?: string }).code;
  return err;
}
