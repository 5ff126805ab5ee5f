/**
 * The `porter` command line: commander parses it, each command validates its options
 * into typed ones (usage.ts) and runs. Exit codes: 0 done, 1 something failed (or, for
 * doctor, something to change), 2 a bad command line, 130 interrupted. The commands'
 * modules are loaded when they run, so `--help` needs nothing built but this package.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import {
  decodeEscapes,
  parseAddresses,
  parseInteger,
  parseListen,
  parseMode,
  parseNumber,
  parseRange,
  parseTarget,
  UsageCodes,
  UsageError,
} from './usage.js';

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

const COMMANDS = ['doctor', 'hold', 'inspect', 'demo'];

const examples = (lines: string[]): string => `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;

const COMMANDER_CODES: Record<string, string> = {
  'commander.unknownOption': UsageCodes.UNKNOWN_OPTION,
  'commander.unknownCommand': UsageCodes.UNKNOWN_COMMAND,
  'commander.missingArgument': UsageCodes.MISSING_ARGUMENT,
  'commander.optionMissingArgument': UsageCodes.MISSING_ARGUMENT,
  'commander.missingMandatoryOptionValue': UsageCodes.MISSING_ARGUMENT,
  'commander.excessArguments': UsageCodes.EXCESS_ARGUMENTS,
  'commander.invalidArgument': UsageCodes.INVALID_ARG_VALUE,
  'commander.help': UsageCodes.MISSING_ARGUMENT,
};

interface HoldFlags {
  count: string;
  rate: string;
  concurrency: string;
  local?: string;
  range?: string;
  mode: string;
  retries?: string;
  fallback: boolean;
  timeout: string;
  duration: string;
  send?: string;
  tls?: boolean;
  servername?: string;
  ca?: string;
  insecure?: boolean;
  metrics?: string;
  json?: boolean;
}

function readFileArgument(path: string, argument: string): Buffer {
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

function tlsFlags(flags: HoldFlags): { servername?: string; ca?: Buffer; insecure: boolean } | undefined {
  if (!flags.tls) {
    for (const name of ['servername', 'ca', 'insecure'] as const) {
      if (flags[name] !== undefined) {
        throw new UsageError(
          UsageCodes.INVALID_ARG_VALUE,
          `--${name}`,
          `--${name} applies to TLS connections only`,
          `add --tls, or leave out --${name}`,
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

/** The program, with every command; `out` collects commander's own error text. */
function program(out: { error: string; command: string }, run: (code: Promise<number>) => void): Command {
  const root = new Command('porter')
    .description(
      'Many outgoing TCP/TLS connections from one Linux host: check the host, open and hold connections, inspect a running process.',
    )
    .version(version, '-V, --version')
    .exitOverride()
    .configureOutput({
      outputError: (text) => {
        out.error += text;
      },
    })
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      examples([
        'porter doctor',
        'porter hold 127.0.0.1:8080 --count 10000 --rate 2000',
        'porter inspect http://127.0.0.1:9464/metrics --watch',
        'porter demo',
      ]),
    );

  root
    .command('doctor')
    .description(
      "Report what this host gives a process that opens very many outgoing connections (port ranges, TIME_WAIT reuse, descriptor limits), the capacity porter will have, the host's own connections per destination with the ports each has left, the listening services in porter's range with the ip_local_reserved_ports line that protects them, and connection tracking and NAT, with the command that fixes each finding. Read-only. Exits 1 when something should change.",
    )
    .option(
      '--range <lo-hi>',
      "porter's local port range, or 'system' (the kernel's ip_local_port_range)",
      '1024-65535',
    )
    .option(
      '--mode <mode>',
      "porter's mode: hybrid (porter binds the ports outside the kernel's ephemeral range, the kernel picks those inside), pool or kernel",
      'hybrid',
    )
    .option('--local <a,b,...>', 'source addresses porter will use (each adds a range of ports per destination)')
    .option('--no-fallback', 'count without the kernel fallback (porter --no-fallback)')
    .option('--destinations <n>', 'how many destinations, for the total', '1')
    .option('--top <n>', "the host's busiest destinations to show (--json lists every one)", '10')
    .option('--json', 'print the report as one JSON object')
    .addHelpText(
      'after',
      examples([
        'porter doctor',
        'porter doctor --range 10000-32767 --local 10.0.0.2,10.0.0.3 --destinations 50',
        'porter doctor --json | jq .findings',
        "porter doctor --json | jq '.destinations[:5], .listeners.command, .conntrack'",
      ]),
    )
    .action(
      (
        flags: {
          range: string;
          mode: string;
          local?: string;
          fallback: boolean;
          destinations: string;
          top: string;
          json?: boolean;
        },
        cmd: Command,
      ) => {
        out.command = cmd.name();
        const options = {
          range: parseRange(flags.range),
          mode: parseMode(flags.mode),
          local: flags.local === undefined ? [] : parseAddresses(flags.local),
          fallback: flags.fallback,
          destinations: parseInteger(flags.destinations, '--destinations', 1, 1_000_000_000, '50'),
          top: parseInteger(flags.top, '--top', 1, 1_000_000, '50'),
          json: flags.json === true,
        };
        run(import('./doctor.js').then((m) => m.runDoctor(options)));
      },
    );

  root
    .command('hold')
    .description(
      'Open connections to each destination through porter (TCP, or TLS with --tls), hold them, close them, and report: a live view while it runs (plain lines when stdout is not a terminal), then a summary, the pools and a latency histogram. Exits 0 when all opened, 1 when some failed, 130 on Ctrl-C (after closing everything and printing the summary).',
    )
    .argument('<host:port...>', 'destinations; connections go to them in turn')
    .option('-n, --count <n>', 'connections in total', '100')
    .option('-r, --rate <per-second>', 'connects started per second (0: as fast as --concurrency allows)', '0')
    .option('-c, --concurrency <n>', 'connects in flight at once', '100')
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
    .option('--timeout <ms>', 'per connect (and TLS handshake)', '10000')
    .option('-d, --duration <seconds>', 'hold the connections this long once all were tried', '0')
    .option('--send <text|@file>', 'write this after connecting (\\n, \\r, \\t understood; @file sends a file)')
    .option('--tls', 'TLS connections (Node tls, verified against the system CAs or --ca)')
    .option('--servername <name>', 'TLS server name (SNI) and name to verify (default: the host)')
    .option('--ca <file>', 'PEM file of the CA certificates to trust')
    .option('--insecure', 'do not verify the server certificate')
    .option(
      '--metrics <[host:]port>',
      "serve this run's @porter/metrics while it runs, for porter inspect (host default 127.0.0.1)",
    )
    .option('--json', 'human output to stderr, and one JSON object on stdout')
    .addHelpText(
      'after',
      examples([
        'porter hold 127.0.0.1:8080 --count 20000 --rate 5000 --duration 30',
        'porter hold 10.1.4.148:1883 10.1.4.149:1883 -n 100000 -c 500 --local 10.0.0.2,10.0.0.3',
        "porter hold broker.example:8883 --tls --ca ca.pem -n 1000 --send 'PING\\r\\n'",
        'porter hold 127.0.0.1:6379 --range 20000-20999 --no-fallback --json | tail -n 1 | jq .errors',
        'porter hold 127.0.0.1:8080 -n 50000 -r 2000 -d 60 --metrics 9464   # then: porter inspect http://127.0.0.1:9464/metrics',
      ]),
    )
    .action((targets: string[], flags: HoldFlags, cmd: Command) => {
      out.command = cmd.name();
      const send =
        flags.send === undefined
          ? undefined
          : flags.send.startsWith('@')
            ? readFileArgument(flags.send.slice(1), '--send')
            : decodeEscapes(flags.send);
      const options = {
        targets: targets.map(parseTarget),
        count: parseInteger(flags.count, '--count', 1, 10_000_000, '1000'),
        rate: parseNumber(flags.rate, '--rate', 0, '1000'),
        concurrency: parseInteger(flags.concurrency, '--concurrency', 1, 100_000, '100'),
        local: flags.local === undefined ? [] : parseAddresses(flags.local),
        range: flags.range === undefined ? undefined : parseRange(flags.range),
        mode: parseMode(flags.mode),
        retries: flags.retries === undefined ? undefined : parseInteger(flags.retries, '--retries', 0, 65_535, '8'),
        fallback: flags.fallback,
        timeout: parseInteger(flags.timeout, '--timeout', 1, 3_600_000, '5000'),
        duration: parseNumber(flags.duration, '--duration', 0, '30'),
        send,
        tls: tlsFlags(flags),
        metrics: flags.metrics === undefined ? undefined : parseListen(flags.metrics, '--metrics'),
        json: flags.json === true,
      };
      run(import('./hold.js').then((m) => m.runHold(options)).then((r) => r.code));
    });

  root
    .command('inspect')
    .description(
      "Read a process's @porter/metrics endpoint and show its pools, counters and connect-latency histogram. Exits 1 when the endpoint cannot be read.",
    )
    .argument(
      '<metrics-url>',
      'the URL the process serves its metrics on (serveMetrics: http://127.0.0.1:9464/metrics)',
    )
    .option('-w, --watch', 'read again every --interval seconds, redrawing in place')
    .option('--interval <seconds>', 'seconds between reads with --watch', '2')
    .option('--prefix <prefix>', 'metric name prefix the process registered with', 'porter_')
    .option('--timeout <ms>', 'for one read', '5000')
    .option('--json', 'print the state as one JSON object (one per read with --watch)')
    .addHelpText(
      'after',
      examples([
        'porter inspect http://127.0.0.1:9464/metrics',
        'porter inspect http://127.0.0.1:9464/metrics --watch --interval 1',
        'porter inspect http://10.0.0.5:9100/metrics --prefix myapp_porter_ --json | jq .pools',
      ]),
    )
    .action(
      (
        url: string,
        flags: { watch?: boolean; interval: string; prefix: string; timeout: string; json?: boolean },
        cmd: Command,
      ) => {
        out.command = cmd.name();
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
        const options = {
          url: parsed,
          prefix: flags.prefix,
          watch: flags.watch === true,
          interval: parseNumber(flags.interval, '--interval', 0.1, '2'),
          timeout: parseInteger(flags.timeout, '--timeout', 1, 600_000, '5000'),
          json: flags.json === true,
        };
        run(import('./inspect.js').then((m) => m.runInspect(options)));
      },
    );

  root
    .command('demo')
    .description(
      'Open thousands of connections to two local servers through one small range of local ports, and show that every destination gets the whole range.',
    )
    .addOption(new Option('-n, --count <n>', 'connections to each server, through as many local ports').default('3000'))
    .option('--first-port <port>', 'first local port of the range', '20000')
    .option('--json', 'human output to stderr, and the hold report as one JSON object on stdout')
    .addHelpText('after', examples(['porter demo', 'porter demo --count 8000']))
    .action((flags: { count: string; firstPort: string; json?: boolean }, cmd: Command) => {
      out.command = cmd.name();
      const perDestination = parseInteger(flags.count, '--count', 1, 8000, '3000');
      const firstPort = parseInteger(flags.firstPort, '--first-port', 1024, 65535 - perDestination + 1, '20000');
      const options = { perDestination, firstPort, json: flags.json === true };
      run(import('./demo.js').then((m) => m.runDemo(options)));
    });

  return root;
}

/** Prints a usage error (and, with --json, a JSON object with it) and returns 2. */
function usageFailure(err: UsageError, command: string, json: boolean): number {
  const where = command ? `porter ${command}` : 'porter';
  process.stderr.write(`${where}: ${err.code}: ${err.message}\n  fix: ${err.fix}\n  help: ${where} --help\n`);
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ error: { code: err.code, argument: err.argument, message: err.message, fix: err.fix } })}\n`,
    );
  }
  return 2;
}

/** A failure to load porter's own packages: say how to build them. */
function notBuilt(err: NodeJS.ErrnoException): string | undefined {
  if (err.code === 'ERR_PORTER_NO_BINARY') return err.message;
  if (err.code === 'ERR_MODULE_NOT_FOUND' && /@porter|packages\/(core|tls|metrics|native)\//.test(err.message)) {
    return `porter's packages are not built in this checkout (${err.message.split('\n')[0]}).\nRun "npm run build" at the repository root (it needs a Rust toolchain for the native addon), then run porter again.`;
  }
  return undefined;
}

/** Runs the command line `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const out = { error: '', command: '' };
  const json = argv.includes('--json');
  let running: Promise<number> | undefined;
  const cli = program(out, (code) => {
    running = code;
  });
  try {
    await cli.parseAsync(argv, { from: 'user' });
    if (running === undefined) return 0;
    return await running;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      if (err.code === 'commander.help') return 2; // no command: help was printed to stderr
      const code = (COMMANDER_CODES[err.code] ?? UsageCodes.INVALID_ARG_VALUE) as UsageError['code'];
      const text = (out.error || err.message)
        .replace(/^error: /, '')
        .trim()
        .replace(/\n+/g, ' ');
      const first = argv.find((a) => !a.startsWith('-')) ?? '';
      const command = out.command || (COMMANDS.includes(first) ? first : '');
      const quoted = /'([^']+)'/.exec(text)?.[1];
      // As the usage line spells them: options as typed, arguments in angle brackets.
      const argument =
        quoted === undefined
          ? command || 'porter'
          : quoted.startsWith('-') || quoted === first
            ? quoted
            : `<${quoted}>`;
      const help = `porter${command ? ` ${command}` : ''} --help`;
      const fix = {
        [UsageCodes.UNKNOWN_OPTION]: `leave it out, or use an option "${help}" lists`,
        [UsageCodes.UNKNOWN_COMMAND]: `use one of: ${COMMANDS.join(', ')}`,
        [UsageCodes.MISSING_ARGUMENT]: `add it; "${help}" shows the usage and examples`,
        [UsageCodes.EXCESS_ARGUMENTS]: `leave out the extra arguments; "${help}" shows the usage`,
        [UsageCodes.INVALID_ARG_VALUE]: `"${help}" shows what each option takes`,
        [UsageCodes.MODE_UNSUPPORTED]: `"${help}" shows the modes`,
      }[code];
      return usageFailure(new UsageError(code, argument, text, fix), command, json);
    }
    if (err instanceof UsageError) return usageFailure(err, out.command, json);
    const e = err as NodeJS.ErrnoException;
    if (e?.name === 'InspectError') {
      process.stderr.write(`porter inspect: ${e.message}\n`);
      if (json) process.stdout.write(`${JSON.stringify({ error: { code: e.code, message: e.message } })}\n`);
      return 1;
    }
    const hint = notBuilt(e);
    if (hint !== undefined) {
      process.stderr.write(`porter: ${hint}\n`);
      return 1;
    }
    process.stderr.write(`porter ${out.command}: ${e?.stack ?? String(err)}\n`);
    return 1;
  }
}
