/**
 * The servers of bench/soak.mjs, in child processes of their own (their descriptors and
 * event loop apart from the client's).
 *
 *   node soak-server.mjs serve      an echo listener (echoes, ends its side when the
 *                                   client ends), a reset listener (resets the connection
 *                                   when the client's first data arrives) and a port where
 *                                   nothing listens; reports { echo, reset, refused } over
 *                                   IPC, answers { cmd: 'count' } with { accepted, open },
 *                                   exits on { cmd: 'exit' } or when the parent goes.
 *   node soak-server.mjs no-accept MS
 *                                   listens with a backlog of 1, prints { port } on stdout,
 *                                   then blocks its event loop for MS milliseconds: nothing
 *                                   is ever accepted, so once the accept queue is full a
 *                                   connect stays pending until the client gives up.
 */
import net from 'node:net';

const [mode, arg] = process.argv.slice(2);

function listen(server, backlog) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, backlog }, () => resolve(server.address().port));
  });
}

if (mode === 'no-accept') {
  const server = net.createServer();
  const port = await listen(server, 1);
  process.stdout.write(`${JSON.stringify({ port })}\n`, () => {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(arg));
    process.exit(0);
  });
} else if (mode === 'serve') {
  let accepted = 0;
  let open = 0;
  const track = (socket) => {
    accepted++;
    open++;
    socket.on('error', () => {});
    socket.on('close', () => {
      open--;
    });
  };
  const echo = net.createServer((socket) => {
    track(socket);
    socket.pipe(socket);
  });
  const reset = net.createServer((socket) => {
    track(socket);
    socket.once('data', () => socket.resetAndDestroy());
  });
  // A port the kernel gave, closed again: connects to it are refused.
  const closed = net.createServer();
  const refused = await listen(closed, 1);
  await new Promise((resolve) => closed.close(resolve));
  const ports = { echo: await listen(echo, 4096), reset: await listen(reset, 4096), refused };
  process.send?.({ ports });
  process.on('message', (msg) => {
    if (msg?.cmd === 'count') process.send?.({ accepted, open });
    else if (msg?.cmd === 'exit') process.exit(0);
  });
  process.on('disconnect', () => process.exit(0));
} else {
  process.stderr.write('usage: soak-server.mjs serve | no-accept MS\n');
  process.exit(2);
}
