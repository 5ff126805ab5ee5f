/**
 * The `porter` command line: commander parses it, each command validates its options
 * into typed ones (usage.ts) and runs. Exit codes: 0 done, 1 something failed (or, for
 * doctor, something to change), 2 a bad command line, 130 interrupted. The commands'
 * modules are loaded when they run, so `--help` needs nothing built but this package.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { addHold } from './hold-command.js';
import { addInspect } from './inspect-command.js';
import { examples, parseAddresses, parseInteger, parseMode, parseRange, UsageCodes, UsageError } from './usage.js';

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

const COMMANDS = ['doctor', 'hold', 'inspect', 'demo'];

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

/** The program, with every command; `out` collects commander's own error text. */
function program(out: { error: string; command: string }, run: (code: Promise<number>) => void): Command {
  const root = rootCommand(out);
  const started = (name: string): void => {
    out.command = name;
  };
  addDoctor(root, out, run);
  addHold(root, started, run);
  addInspect(root, started, run);
  addDemo(root, out, run);
  return root;
}

/** `porter` itself: its version, help and examples; errors collected in `out`. */
function rootCommand(out: { error: string }): Command {
  return new Command('porter')
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
}

/** `porter doctor`. */
function addDoctor(root: Command, out: { command: string }, run: (code: Promise<number>) => void): void {
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
}

/** `porter demo`. */
function addDemo(root: Command, out: { command: string }, run: (code: Promise<number>) => void): void {
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

/** A usage error from commander's own parsing, with porter's code, the argument and the fix. */
function commanderFailure(err: CommanderError, words: CommandWords, error: string): UsageError {
  const { first, command } = words;
  const help = `porter${command ? ` ${command}` : ''} --help`;
  if (err.code === 'commander.help') {
    // `porter` alone: commander printed the help; say what is missing, as for any command.
    return new UsageError(
      UsageCodes.MISSING_ARGUMENT,
      '<command>',
      `no command given (one of ${COMMANDS.join(', ')})`,
      `add one: ${COMMANDS.map((c) => `porter ${c}`).join(', ')}; "porter --help" shows them`,
    );
  }
  const code = (COMMANDER_CODES[err.code] ?? UsageCodes.INVALID_ARG_VALUE) as UsageError['code'];
  const text = (error || err.message)
    .replace(/^error: /, '')
    .trim()
    .replace(/\n+/g, ' ');
  const quoted = /'([^']+)'/.exec(text)?.[1];
  // As the usage line spells them: options as typed, arguments in angle brackets.
  const argument =
    quoted === undefined ? command || 'porter' : quoted.startsWith('-') || quoted === first ? quoted : `<${quoted}>`;
  const fix = {
    [UsageCodes.UNKNOWN_OPTION]: `leave it out, or use an option "${help}" lists`,
    [UsageCodes.UNKNOWN_COMMAND]: `use one of: ${COMMANDS.join(', ')}`,
    [UsageCodes.MISSING_ARGUMENT]: `add it; "${help}" shows the usage and examples`,
    [UsageCodes.EXCESS_ARGUMENTS]: `leave out the extra arguments; "${help}" shows the usage`,
    [UsageCodes.INVALID_ARG_VALUE]: `"${help}" shows what each option takes`,
    [UsageCodes.MODE_UNSUPPORTED]: `"${help}" shows the modes`,
    [UsageCodes.FD_LIMIT]: `"${help}" shows --workers`,
  }[code];
  return new UsageError(code, argument, text, fix);
}

/** Runs the command line `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const out = { error: '', command: '' };
  const json = argv.includes('--json') || argv.includes('--ndjson');
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
      const words = commandOf(argv, out.command);
      const usage = commanderFailure(err, words, out.error);
      return usageFailure(usage, err.code === 'commander.help' ? '' : words.command, json);
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

/** The first word of a command line that is not an option, and the command run ('' when none). */
interface CommandWords {
  first: string;
  command: string;
}

/** The command: the one commander reached (`reached`), else the one named on the command line, if any. */
function commandOf(argv: string[], reached: string): CommandWords {
  const first = argv.find((a) => !a.startsWith('-')) ?? '';
  return { first, command: reached || (COMMANDS.includes(first) ? first : '') };
}
