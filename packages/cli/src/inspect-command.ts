/** The `porter inspect` command line: its options for commander, validated into InspectOptions. */
import type { Command } from 'commander';
import { examples, parseInteger, parseNumber, UsageCodes, UsageError } from './usage.js';

interface InspectFlags {
  watch?: boolean;
  interval: string;
  prefix: string;
  timeout: string;
  json?: boolean;
}

function metricsUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    parsed = new URL('invalid:');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UsageError(
      UsageCodes.INVALID_ARG_VALUE,
      '<metrics-url>',
      `"${url}" is not an http(s) URL`,
      'give the full URL, e.g. http://127.0.0.1:9464/metrics',
    );
  }
  return parsed;
}

/** Adds `porter inspect` to the program; `run` is given the command's exit code. */
export function addInspect(root: Command, started: (name: string) => void, run: (code: Promise<number>) => void): void {
  root
    .command('inspect')
    .description(
      "Read a process's @porter/metrics endpoint and show its pools, counters and connect-latency histogram. Exits 1 when the endpoint cannot be read (or answers more than 64 MiB, or not within --timeout).",
    )
    .argument(
      '<metrics-url>',
      'the URL the process serves its metrics on (serveMetrics: http://127.0.0.1:9464/metrics)',
    )
    .option('-w, --watch', 'read again every --interval seconds, redrawing in place')
    .option('--interval <seconds>', 'seconds between reads with --watch', '2')
    .option('--prefix <prefix>', 'metric name prefix the process registered with', 'porter_')
    .option('--timeout <ms>', 'for one whole read: connect, answer and body', '5000')
    .option('--json', 'print the state as one JSON object (one per read with --watch)')
    .addHelpText(
      'after',
      examples([
        'porter inspect http://127.0.0.1:9464/metrics',
        'porter inspect http://127.0.0.1:9464/metrics --watch --interval 1',
        'porter inspect http://10.0.0.5:9100/metrics --prefix myapp_porter_ --json | jq .pools',
      ]),
    )
    .action((url: string, flags: InspectFlags, cmd: Command) => {
      started(cmd.name());
      const options = {
        url: metricsUrl(url),
        prefix: flags.prefix,
        watch: flags.watch === true,
        interval: parseNumber(flags.interval, '--interval', 0.1, '2'),
        timeout: parseInteger(flags.timeout, '--timeout', 1, 600_000, '5000'),
        json: flags.json === true,
      };
      run(import('./inspect.js').then((m) => m.runInspect(options)));
    });
}
