#!/usr/bin/env node
// The `porter` command. Loads the built CLI (dist/). In a source checkout that has not
// been built yet (npm ci without npm run build), it runs the TypeScript sources with tsx,
// the repository's own dev dependency, so that --help works; a command that needs
// porter's native addon then says how to build it.
import { existsSync } from 'node:fs';

const argv = process.argv.slice(2);
// Output piped into a program that stopped reading (head, less): stop quietly.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

let entry = new URL('../dist/main.js', import.meta.url);
if (!existsSync(entry)) {
  const source = new URL('../src/main.ts', import.meta.url);
  let register;
  if (existsSync(source)) {
    try {
      ({ register } = await import('tsx/esm/api'));
    } catch {
      // not a checkout with its dev dependencies installed
    }
  }
  if (register === undefined) {
    process.stderr.write(
      'porter: @porter/cli is not built in this checkout (packages/cli/dist is missing).\n' +
        'Run "npm run build" at the repository root (it builds the native addon with cargo and the TypeScript packages), then run porter again.\n',
    );
    process.exit(1);
  }
  register();
  entry = source;
}
const { main } = await import(entry.href);
const code = await main(argv);
// Writes to a pipe are asynchronous: let what is queued reach it (a large --json answer)...
await Promise.all(
  [process.stdout, process.stderr].map((stream) => new Promise((resolve) => stream.write('', resolve))),
);
// ...then exit, whatever handles (keep-alive sockets) are still open.
process.exit(code);
