#!/usr/bin/env node
// The `porter` command. Loads the built CLI (dist/); in a source checkout where it has
// not been built yet, says how to build it.
import { existsSync } from 'node:fs';

const built = new URL('../dist/main.js', import.meta.url);
if (!existsSync(built)) {
  process.stderr.write(
    'porter: @porter/cli is not built in this checkout (packages/cli/dist is missing).\n' +
      'Run "npm run build" at the repository root (it builds the native addon with cargo and the TypeScript packages), then run porter again.\n',
  );
  process.exit(1);
}
// Output piped into a program that stopped reading (head, less): stop quietly.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}
const { main } = await import(built.href);
// Exit once the command is done, whatever handles (keep-alive sockets) are still open.
process.exit(await main(process.argv.slice(2)));
