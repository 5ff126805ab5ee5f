/** Waiting in tests: a plain sleep, and polling until a condition holds. */

/** Sleeps `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` (every 10 ms, each poll once the last one answered) until it holds, then
 * answers true. `check` may be asynchronous (a count a child process answers, say). It has
 * no deadline of its own, which load could break: a condition that never holds runs into
 * ava's timeout (the test fails there), unless `until` settles first (a child process that
 * exited, say), and then the answer is `check`'s last.
 */
export async function eventually(check: () => boolean | Promise<boolean>, until?: Promise<unknown>): Promise<boolean> {
  let ended = false;
  const end = (): void => {
    ended = true;
  };
  until?.then(end, end);
  while (!(await check())) {
    if (ended) return check();
    await delay(10);
  }
  return true;
}
