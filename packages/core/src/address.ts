/** IP addresses in the form the kernel (and so porter's pools) know them. */
import { isIP } from 'node:net';

const MAPPED_DOTTED = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;
const MAPPED_HEX = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i;

/**
 * `address` with an IPv4-mapped IPv6 address (`::ffff:10.1.1.1`, `::ffff:a01:101`) written
 * as the IPv4 address it maps: the kernel gives both the same 4-tuple, so porter gives
 * both the same pool, and connects over IPv4.
 */
export function canonicalIp(address: string): string {
  if (!address.includes(':')) return address;
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
