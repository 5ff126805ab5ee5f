/**
 * The `porter hold` command line: its options for commander, and their validation into
 * {@link HoldOptions} (every refusal a UsageError: exit 2, before anything connects).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { type Destination, parseDestination } from './destinations.js';
import type { HoldOptions } from './hold-report.js';
import { parseThreshold } from './thresholds.js';
import {
  decodeEscapes,
  examples,
  parseAddresses,
  parseInteger,
  parseListen,
  parseMode,
  parseNumber,
  parseRange,
  UsageCodes,
  UsageError,
} from './usage.js';

/** The flags as commander gives them. */
interface HoldFlags {
  count: string;
  rate: string;
  ramp: string;
  concurrency: string;
  workers: string;
  local?: string;
  range?: string;
  mode: string;
  retries?: string;
  fallback: boolean;
  timeout: string;
  duration: string;
  lifetime?: string;
  send?: string;
  message?: string;
  messageRate?: string;
  topic?: string;
  tls?: boolean;
  servername?: string;
  ca?: string;
  insecure?: boolean;
  metrics?: string;
  threshold?: string[];
  json?: boolean;
  ndjson?: boolean;
}

export const DEFAULT_TOPIC = 'porter/hold/%c';

/** The bytes of a file named on the command line; a file that cannot be read is a usage error. */
export function readFileArgument(path: string, argument: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(
      UsageCodes.INVALID_ARG_VALUE,
      argument,
      `${argument} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      `give the path of a readable file, e.g. ${argument} ./ca.pem`,
    );
  }
}

const refuse = (argument: string, message: string, fix: string): UsageError =>
  new UsageError(UsageCodes.INVALID_ARG_VALUE, argument, message, fix);

/** `text` with \n, \r, \t understood, or `@file`'s bytes. */
function payload(value: string | undefined, argument: string): Buffer | undefined {
  if (value === undefined) return undefined;
  const bytes = value.startsWith('@') ? readFileArgument(value.slice(1), argument) : decodeEscapes(value);
  if (bytes.length === 0)
    throw refuse(argument, `${argument} is empty`, `give some bytes to send, e.g. ${argument} 'PING\\r\\n'`);
  return bytes;
}

function tlsFlags(flags: HoldFlags, targets: Destination[]): HoldOptions['tls'] {
  if (!targets.some((t) => t.tls)) {
    for (const name of ['servername', 'ca', 'insecure'] as const) {
      if (flags[name] !== undefined) {
        throw refuse(
          `--${name}`,
          `--${name} applies to TLS connections only`,
          `add --tls (or use mqtts://, wss://), or leave out --${name}`,
        );
      }
    }
    return undefined;
  }
  return {
    insecure: flags.insecure === true,
    ...(flags.servername !== undefined ? { servername: flags.servername } : {}),
    ...(flags.ca !== undefined ? { ca: readFileArgument(flags.ca, '--ca') } : {}),
  };
}

/** The message options: --message, --message-rate, --topic, and --send, against the destinations. */
function messageFlags(
  flags: HoldFlags,
  targets: Destination[],
): Pick<HoldOptions, 'send' | 'message' | 'messageRate' | 'topic'> {
  const message = payload(flags.message, '--message');
  if (flags.messageRate !== undefined && message === undefined) {
    throw refuse('--message-rate', '--message-rate needs --message', "add --message 'text' (or --message @file)");
  }
  const messageRate =
    message === undefined ? undefined : parseNumber(flags.messageRate ?? '1', '--message-rate', 0.001, '10');
  if (messageRate !== undefined && messageRate <= 0) {
    throw refuse('--message-rate', '--message-rate must be more than 0', 'pass e.g. --message-rate 10');
  }
  if (flags.send !== undefined && targets.some((t) => t.protocol !== 'tcp')) {
    throw refuse(
      '--send',
      '--send writes raw bytes, for host:port destinations only',
      'use --message for MQTT and WebSocket clients',
    );
  }
  if (flags.topic !== undefined && !targets.some((t) => t.protocol === 'mqtt')) {
    throw refuse('--topic', '--topic applies to mqtt:// and mqtts:// destinations', 'leave out --topic');
  }
  return { send: payload(flags.send, '--send'), message, messageRate, topic: flags.topic ?? DEFAULT_TOPIC };
}

/** Validates the flags into options. */
export function holdOptions(destinations: string[], flags: HoldFlags): HoldOptions {
  const targets = destinations.map((d) => parseDestination(d, flags.tls === true));
  const count = parseInteger(flags.count, '--count', 1, 10_000_000, '1000');
  const rate = parseNumber(flags.rate, '--rate', 0, '1000');
  const ramp = parseNumber(flags.ramp, '--ramp', 0, '10');
  if (ramp > 0 && rate === 0)
    throw refuse(
      '--ramp',
      '--ramp raises the connect rate to --rate, which is not set',
      'add --rate, e.g. --rate 1000 --ramp 10',
    );
  const workers = parseInteger(flags.workers, '--workers', 1, 256, '4');
  if (workers > count)
    throw refuse('--workers', `--workers ${workers} is more than --count ${count}`, `pass --workers ${count} or fewer`);
  const duration = parseNumber(flags.duration, '--duration', 0, '30');
  const lifetime = flags.lifetime === undefined ? undefined : parseNumber(flags.lifetime, '--lifetime', 0.001, '10');
  if (lifetime !== undefined && duration === 0) {
    throw refuse(
      '--lifetime',
      '--lifetime churns connections while they are held, and --duration is 0',
      'add --duration, e.g. --duration 60 --lifetime 10',
    );
  }
  const metrics = flags.metrics === undefined ? undefined : parseListen(flags.metrics, '--metrics');
  if (metrics !== undefined && metrics.port !== 0 && metrics.port + workers - 1 > 65535) {
    throw refuse(
      '--metrics',
      `--metrics ${metrics.port}: the workers serve on ports ${metrics.port} to ${metrics.port + workers - 1}`,
      'pass a lower port, or --metrics 0 (free ports)',
    );
  }
  const messages = messageFlags(flags, targets);
  return {
    targets,
    count,
    rate,
    ramp,
    concurrency: parseInteger(flags.concurrency, '--concurrency', 1, 100_000, '100'),
    workers,
    local: flags.local === undefined ? [] : parseAddresses(flags.local),
    range: flags.range === undefined ? undefined : parseRange(flags.range),
    mode: parseMode(flags.mode),
    retries: flags.retries === undefined ? undefined : parseInteger(flags.retries, '--retries', 0, 65_535, '8'),
    fallback: flags.fallback,
    timeout: parseInteger(flags.timeout, '--timeout', 1, 3_600_000, '5000'),
    duration,
    lifetime,
    ...messages,
    tls: tlsFlags(flags, targets),
    metrics,
    thresholds: (flags.threshold ?? []).map((t) => parseThreshold(t, messages.message !== undefined)),
    json: flags.json === true,
    ndjson: flags.ndjson === true,
  };
}

/** Adds `porter hold` to the program; `run` is given the command's exit code. */
export function addHold(root: Command, started: (name: string) => void, run: (code: Promise<number>) => void): void {
  root
    .command('hold')
    .description(
      'Open connections to each destination through porter (raw TCP or TLS, MQTT clients, WebSocket clients), hold them, close them, and report: a live view while it runs (plain lines when stdout is not a terminal), then a summary, the pools and a latency histogram. Exits 0 when all opened, 1 when some failed, 99 when a --threshold is crossed, 130 on Ctrl-C (after closing everything and printing the summary).',
    )
    .argument(
      '<destination...>',
      'host:port (raw TCP; TLS with --tls), mqtt://host:port, mqtts://, ws://host:port/path, wss://; connections go to them in turn',
    )
    .option('-n, --count <n>', 'connections in total', '100')
    .option('-r, --rate <per-second>', 'connects started per second in all (0: as fast as --concurrency allows)', '0')
    .option('--ramp <seconds>', 'raise the connect rate linearly from 0 to --rate over this long', '0')
    .option('-c, --concurrency <n>', 'connects in flight at once (in all)', '100')
    .option(
      '-w, --workers <n>',
      'split the run over n processes (each has its own open-file limit): one view, one result',
      '1',
    )
    .option('--local <a,b,...>', 'source addresses: when one has no port left for a destination, the next is used')
    .option('--range <lo-hi>', "local ports porter hands out, or 'system' (default: porter's, 1024-65535)")
    .option(
      '--mode <mode>',
      "hybrid (porter binds the ports outside the kernel's ephemeral range, the kernel picks those inside), pool (porter binds all) or kernel (the kernel picks all)",
      'hybrid',
    )
    .option(
      '--retries <n>',
      "other ports to try after EADDRINUSE / EADDRNOTAVAIL (default: porter's, 8 in mode hybrid, else 0)",
    )
    .option(
      '--no-fallback',
      'fail with ERR_PORTER_EXHAUSTED instead of letting the kernel pick a port when porter has none',
    )
    .option('--timeout <ms>', 'per connect (with its TLS handshake, CONNACK or upgrade)', '10000')
    .option('-d, --duration <seconds>', 'hold the connections this long once all were tried', '0')
    .option('--lifetime <seconds>', 'close each connection after this long and open another (churn; needs --duration)')
    .option(
      '--send <text|@file>',
      'write this once after connecting (raw TCP/TLS; \\n, \\r, \\t understood; @file sends a file)',
    )
    .option(
      '--message <text|@file>',
      'send this on every connection at --message-rate (an MQTT publish, a WebSocket frame, or bytes)',
    )
    .option('--message-rate <per-second>', 'messages a second per connection (default 1)')
    .option(
      '--topic <pattern>',
      `MQTT topic to publish to; %i: the connection's number, %c: its client id (default ${DEFAULT_TOPIC})`,
    )
    .option('--tls', 'TLS connections to host:port destinations (Node tls, verified against the system CAs or --ca)')
    .option('--servername <name>', 'TLS server name (SNI) and name to verify (default: the host)')
    .option('--ca <file>', 'PEM file of the CA certificates to trust')
    .option('--insecure', 'do not verify the server certificate')
    .option(
      '--metrics <[host:]port>',
      "serve this run's @porter/metrics while it runs, for porter inspect (host default 127.0.0.1; worker i on port + i)",
    )
    .option(
      '--threshold <expr>',
      'fail the run (exit 99) unless key op number holds over the result, e.g. connect_p99_ms<50, failed==0 (repeatable)',
      (v: string, all: string[] | undefined) => [...(all ?? []), v],
    )
    .option('--json', 'human output to stderr, and one JSON object on stdout')
    .option('--ndjson', 'human output to stderr, one JSON object a second on stdout, then the result')
    .addHelpText(
      'after',
      examples([
        'porter hold 127.0.0.1:8080 --count 20000 --rate 5000 --duration 30',
        'porter hold 10.1.4.148:1883 10.1.4.149:1883 -n 100000 -c 500 --local 10.0.0.2,10.0.0.3',
        "porter hold 127.0.0.1:8080 -n 40000 --workers 4 -d 60        # past one process's open-file limit",
        "porter hold 127.0.0.1:7 -n 1000 -d 30 --message 'ping\\n' --message-rate 10   # round trips against an echo",
        'porter hold mqtt://127.0.0.1:1883 -n 5000 -r 500 -d 60 --message hello --topic bench/%i',
        'porter hold ws://127.0.0.1:8080/echo -n 2000 -d 30 --lifetime 5',
        "porter hold broker.example:8883 --tls --ca ca.pem -n 1000 --send 'PING\\r\\n'",
        'porter hold 127.0.0.1:8080 -n 10000 -r 2000 --ramp 5 --ndjson --threshold connect_p99_ms<50 --threshold failed==0',
        'porter hold 127.0.0.1:8080 -n 50000 -r 2000 -d 60 --metrics 9464   # then: porter inspect http://127.0.0.1:9464/metrics',
      ]),
    )
    .action((destinations: string[], flags: HoldFlags, cmd: Command) => {
      started(cmd.name());
      const options = holdOptions(destinations, flags);
      run(import('./hold.js').then((m) => m.runHold(options)).then((r) => r.code));
    });
}
