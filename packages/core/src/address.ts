/** IP addresses in the form the kernel (and so porter's pools) know them. */
import { isIP } from 'node:net';

const MAPPED_DOTTED = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;
const MAPPED_HEX = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i;

const LINK_LOCAL = /^fe[89ab][0-9a-f]:/i;

/**
 * `address` with an IPv4-mapped IPv6 address (`::ffff:10.1.1.1`, `::ffff:a01:101`) written
 * as the IPv4 address it maps: the kernel gives both the same 4-tuple, so porter gives
 * both the same pool, and connects over IPv4. A scope (`%eth0`) is kept on a link-local
 * address (fe80::/10), the one kind the kernel reads it for, and dropped from any other.
 */
export function canonicalIp(scoped: string): string {
  if (!scoped.includes(':')) return scoped;
  const zone = scoped.indexOf('%');
  if (zone !== -1 && LINK_LOCAL.test(scoped)) return scoped;
  const address = zone === -1 ? scoped : scoped.slice(0, zone);
  const dotted = MAPPED_DOTTED.exec(address);
  if (dotted?.[1] !== undefined && isIP(dotted[1]) === 4) return dotted[1];
  const hex = MAPPED_HEX.exec(address);
  if (hex?.[1] !== undefined && hex[2] !== undefined) {
    const hi = Number.parseInt(hex[1], 16);
    const lo = Number.parseInt(hex[2], 16);
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return address;
}

/** The unspecified address of an IP family (4 or 6). */
export const unspecified = (family: number): string => (family === 6 ? '::' : '0.0.0.0');
