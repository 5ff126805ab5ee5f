/**
 * `porter demo`: thousands of connections to two local servers through one small range
 * of local ports, the same ports serving both destinations, shown with `porter hold`'s
 * live view and summary.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseDestination } from './destinations.js';
import { runHold } from './hold.js';
import { DEFAULT_TOPIC } from './hold-command.js';

/** Options of `porter demo`. */
export interface DemoOptions {
  /** Connections to each of the two servers, through as many local ports. */
  perDestination: number;
  /** First port of the range. */
  firstPort: number;
  json: boolean;
}

/** Runs the demo; resolves to the exit code. */
export async function runDemo(options: DemoOptions): Promise<number> {
  const self = fileURLToPath(import.meta.url);
  // Built: dist/demo-server.js. From source (tsx): src/demo-server.ts, with tsx's loader.
  const script = self.replace(/demo\.(js|ts)$/, 'demo-server.$1');
  const server = spawn(process.execPath, [...process.execArgv, script], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const [line] = (await once(server.stdout, 'data')) as [Buffer];
    const { ports } = JSON.parse(line.toString()) as { ports: [number, number] };
    const n = options.perDestination;
    const range: [number, number] = [options.firstPort, options.firstPort + n - 1];
    const human = options.json ? process.stderr : process.stdout;
    human.write(
      `porter demo: ${n.toLocaleString('en-US')} connections to each of 127.0.0.1:${ports[0]} and 127.0.0.1:${ports[1]},\n` +
        `through the ${n.toLocaleString('en-US')} local ports ${range[0]}-${range[1]}: porter gives every destination the whole range.\n\n`,
    );
    const { code, report } = await runHold({
      targets: ports.map((port) => parseDestination(`127.0.0.1:${port}`, false)),
      count: 2 * n,
      rate: 0,
      ramp: 0,
      concurrency: 64,
      workers: 1,
      local: [],
      range,
      mode: 'hybrid',
      // Retries step over ports some other program on this host may hold.
      retries: 16,
      fallback: true,
      timeout: 10_000,
      duration: 0,
      lifetime: undefined,
      send: undefined,
      message: undefined,
      messageRate: undefined,
      topic: DEFAULT_TOPIC,
      tls: undefined,
      thresholds: [],
      json: options.json,
      ndjson: false,
    });
    if (report.pools.length === 2) {
      human.write(
        `\n${report.opened.toLocaleString('en-US')} connections from ${n.toLocaleString('en-US')} local ports: each pool had ${report.pools
          .map((p) => p.in_use.toLocaleString('en-US'))
          .join(' and ')} of them in use at once.\n`,
      );
    }
    return code;
  } finally {
    server.stdin?.end();
    if (server.exitCode === null) await once(server, 'exit');
  }
}
