/**
 * What the benchmarks ran on: CPU, cores, kernel, Node, rustc, the TCP settings that matter.
 * And the results files of the benchmarks run apart from the full run
 * (bench/results/<name>-<date>.json), which record it.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { log, readSysctl } from './util.mjs';

const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));

function version(command, args) {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    arch: process.arch,
    node: process.version,
    rustc: version('rustc', ['-V']),
    somaxconn: readSysctl('net/core/somaxconn'),
    ipLocalPortRange: readSysctl('net/ipv4/ip_local_port_range'),
    tcpTwReuse: readSysctl('net/ipv4/tcp_tw_reuse'),
    openFilesLimit: version('sh', ['-c', 'ulimit -n']),
  };
}

/** The latest result of a separate run (bench/results/<name>-<date>.json), or null. */
export function latestResult(name) {
  const pattern = new RegExp(`^${name}-\\d{4}-\\d{2}-\\d{2}\\.json$`);
  const files = readdirSync(resultsDir)
    .filter((f) => pattern.test(f))
    .sort();
  return files.length === 0 ? null : JSON.parse(readFileSync(`${resultsDir}${files.at(-1)}`, 'utf8'));
}

/** Writes bench/results/<name>-<today>.json: the date, this machine, then `result`'s fields. */
export function writeResult(name, result) {
  const date = new Date().toISOString().slice(0, 10);
  const file = `${name}-${date}.json`;
  writeFileSync(`${resultsDir}${file}`, `${JSON.stringify({ date, machine: machine(), ...result }, null, 2)}\n`);
  log(`wrote bench/results/${file}`);
}
