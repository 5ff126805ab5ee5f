/**
 * @porter/cli: the `porter` command. Run it with `npx porter --help` (or `npx
 * @porter/cli --help`). This module exports the shapes of the commands' `--json` output,
 * for programs that read it, and {@link main} to run a command line in-process.
 *
 * @packageDocumentation
 */
export type {
  ConntrackReport,
  DestinationReport,
  DoctorReport,
  Finding,
  ListenersReport,
  ListeningPort,
  NatReport,
  PorterCapacity,
  SocketsSummary,
  TcpStateName,
} from './doctor/report.js';
export type { HoldReport } from './hold.js';
export type { InspectState } from './inspect.js';
export type { Bucket } from './latency.js';
export { main } from './main.js';
export type { OtherPools, PoolRow } from './pools.js';
export type { ThresholdResult } from './thresholds.js';
export { type UsageCode, UsageCodes } from './usage.js';
