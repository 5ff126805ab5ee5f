/** Host names to addresses, once per connect, through dns.lookup or the user's lookup. */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';

/** The first address `lookup` (default dns.lookup) gives for `host`. */
export function lookupOnce(
  host: string,
  family: 0 | 4 | 6,
  hints: number | undefined,
  lookup: LookupFunction | undefined,
): Promise<LookupAddress> {
  return new Promise((resolve, reject) => {
    const fn = (lookup ?? dnsLookup) as (
      hostname: string,
      options: object,
      cb: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
    ) => void;
    fn(host, { family, hints, all: false }, (err, address, fam) => {
      if (err) reject(err);
      else if (typeof address === 'string') resolve({ address, family: fam ?? isIP(address) });
      else if (Array.isArray(address) && address[0]) resolve(address[0]);
      else reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND', hostname: host }));
    });
  });
}
