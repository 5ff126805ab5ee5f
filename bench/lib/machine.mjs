/** What the benchmarks ran on: CPU, cores, kernel, Node, rustc, the TCP settings that matter. */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { readSysctl } from './util.mjs';

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
