/**
 * A worker process of `porter hold --workers`: runs its part of the run in a LocalRunner
 * and reports to the parent over IPC (see workers.ts for the messages). Ctrl-C reaches
 * every process of the terminal's group: a worker leaves it to the parent, which tells it
 * to stop. When the parent goes away (its IPC channel closes), the worker closes what it
 * holds and exits.
 */
import { LocalRunner, type WorkerSpec } from './runner.js';
import type { FromWorker, ToWorker } from './workers.js';

/**
 * Sends `message` to the parent; `then` runs once it is written. A message still queued
 * when the channel is disconnected or the process exits is lost, so a last message is
 * followed by a disconnect or an exit only from here.
 */
function send(message: FromWorker, then?: () => void): void {
  if (process.connected && process.send !== undefined) process.send(message, () => then?.());
  else then?.();
}

/** Buffers cross IPC as Uint8Arrays. */
const buffer = (b: Uint8Array | undefined): Buffer | undefined =>
  b === undefined ? undefined : Buffer.from(b.buffer, b.byteOffset, b.byteLength);

function specOf(spec: WorkerSpec): WorkerSpec {
  const { link, engine } = spec;
  const ca = buffer(link.tls.ca);
  return {
    ...spec,
    engine: { ...engine, message: buffer(engine.message) },
    link: {
      ...link,
      send: buffer(link.send),
      message: buffer(link.message),
      tls: { ...link.tls, ...(ca !== undefined ? { ca } : {}) },
    },
  };
}

async function run(spec: WorkerSpec): Promise<void> {
  let runner: LocalRunner;
  try {
    runner = new LocalRunner(specOf(spec));
    send({ type: 'started', url: await runner.start() });
  } catch (err) {
    const e = err as Error & { code?: string; argument?: string; fix?: string };
    send(
      {
        type: 'error',
        error: { name: e.name, message: e.message, code: e.code, argument: e.argument, fix: e.fix },
      },
      () => process.exit(1),
    );
    return;
  }
  const report = (): void => {
    const progress = runner.progress();
    if (progress !== undefined) send({ type: 'progress', progress });
  };
  const ticker = setInterval(report, 100);
  void runner.settled.then((state) => {
    report();
    send({ type: 'settled', state });
  });
  let closing: Promise<void> | undefined;
  // Resolves once the 'closed' message is written: the channel may be let go then.
  const close = (): Promise<void> => {
    closing ??= runner.close().then(
      (state) =>
        new Promise<void>((resolve) => {
          clearInterval(ticker);
          report();
          send({ type: 'closed', state }, resolve);
        }),
    );
    return closing;
  };
  process.on('message', (m: ToWorker) => {
    if (m.type === 'stop') runner.stop();
    else if (m.type === 'close') void close().then(() => process.disconnect());
  });
  process.once('disconnect', () => {
    void close().then(() => process.exit(0));
  });
}

process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.once('message', (m: ToWorker) => {
  if (m.type === 'start') void run(m.spec);
});
