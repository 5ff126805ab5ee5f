/** Starts bench/lib/server.mjs in a child process and talks to it over IPC. */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const serverPath = fileURLToPath(new URL('./server.mjs', import.meta.url));

/**
 * Starts a server child; resolves to { ports, count(), stop() } once it listens.
 * `options`: { count, mode: 'close' | 'keep', host, backlog, tls: { key, cert } }.
 */
export function startServer(options) {
  return new Promise((resolve, reject) => {
    const child = fork(serverPath, [JSON.stringify(options)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const waiters = [];
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening`)));
    child.on('message', (msg) => {
      if (msg.ports) {
        child.removeAllListeners('exit');
        resolve({
          ports: msg.ports,
          count: () =>
            new Promise((res) => {
              waiters.push(res);
              child.send({ cmd: 'count' });
            }),
          stop: () =>
            new Promise((res) => {
              if (child.exitCode !== null) return res();
              child.once('exit', () => res());
              child.send({ cmd: 'exit' });
              setTimeout(() => child.kill('SIGKILL'), 2000).unref();
            }),
        });
      } else if (msg.error) {
        reject(new Error(msg.error));
      } else if ('accepted' in msg) {
        waiters.shift()?.(msg);
      }
    });
  });
}
