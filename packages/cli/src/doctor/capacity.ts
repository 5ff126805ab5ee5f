/**
 * The connections porter can open with the doctor's options (`Porter#capacity()` of
 * @porter/core: the ports it binds itself, the kernel's window, then the fallback), beside
 * what the kernel alone gives; the `mode` finding when porter cannot run with them.
 */
import { type Capacity, type HostPorts, Porter } from '@porter/core';
import type { HostSettings } from '../host.js';
import { finite, outside, span } from './ports.js';
import type { DoctorOptions, DoctorReport, Finding, PorterCapacity } from './report.js';

/** What porter will do with `options` here: its capacity, or why it cannot run. */
export function porterCapacity(options: DoctorOptions): Capacity | (Error & { code?: string }) {
  try {
    return new Porter({
      mode: options.mode,
      kernelFallback: options.fallback,
      ...(options.range !== undefined ? { portRange: options.range } : {}),
      ...(options.local.length > 0 ? { localAddresses: options.local } : {}),
    }).capacity();
  } catch (err) {
    return err as Error;
  }
}

/** Porter's range as the options give it ('system': the ephemeral range). */
export const porterRange = (options: DoctorOptions, host: HostPorts): [number, number] =>
  options.range === 'system' ? host.ephemeral : options.range;

/** The finding when porter cannot run with the options. */
function modeFinding(error: Error, options: DoctorOptions, host: HostPorts): Finding {
  return {
    id: 'mode',
    status: 'warn',
    value: options.mode,
    message: `porter cannot run with these options here: ${error.message}`,
    fix:
      options.mode === 'kernel'
        ? `porter hold ... --mode hybrid, or --range ${span(host.ephemeral)}`
        : `porter hold ... --mode hybrid`,
  };
}

/** Porter's share per destination and in all, times the source addresses. */
function porterShare(capacity: Capacity, options: DoctorOptions, host: HostPorts, softFiles: number): PorterCapacity {
  const range = porterRange(options, host);
  const locals = Math.max(1, options.local.length);
  // The kernel fallback picks in the whole ephemeral range, for that destination: it
  // adds the ports outside porter's range (those inside are counted already).
  const fallback = options.fallback ? outside(host.ephemeral, [range, ...host.reserved]) * locals : 0;
  const explicit = capacity.explicit * locals;
  const kernel = capacity.kernel * locals;
  const perDestination = explicit + kernel + fallback;
  return {
    mode: capacity.mode,
    range,
    local_addresses: options.local,
    explicit_ports: capacity.explicitPorts,
    kernel_window: capacity.kernelWindow,
    kernel_window_narrowed: capacity.kernelWindowNarrowed,
    explicit,
    kernel,
    fallback,
    per_destination: perDestination,
    total: Math.min(perDestination * options.destinations, softFiles),
  };
}

/**
 * The `capacity` section of the report, and the `mode` finding where porter cannot run.
 * `ephemeralFree`: the ports the kernel picks from (ip_local_port_range less
 * ip_local_reserved_ports), the `kernel_ports` of the sockets summary.
 */
export function capacitySection(
  settings: HostSettings,
  host: HostPorts,
  capacity: Capacity | Error,
  options: DoctorOptions,
  ephemeralFree: number,
): { capacity: DoctorReport['capacity']; findings: Finding[] } {
  const softFiles = finite(settings.openFiles?.soft);
  const error = capacity instanceof Error;
  return {
    capacity: {
      porter: error ? null : porterShare(capacity, options, host, softFiles),
      kernel_alone: {
        per_destination: ephemeralFree,
        per_source_address: ephemeralFree,
        total: Math.min(ephemeralFree * options.destinations, softFiles),
      },
      destinations: options.destinations,
    },
    findings: error ? [modeFinding(capacity, options, host)] : [],
  };
}
