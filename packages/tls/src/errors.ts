/**
 * The errors @porter/tls raises itself: bad options (Node's ERR_INVALID_ARG_TYPE /
 * ERR_INVALID_ARG_VALUE, thrown synchronously) and the ETIMEDOUT of a handshake that
 * did not finish in time, in the shape of Node's system errors.
 */
import { constants } from 'node:os';
import type { SystemError } from '@porter/core';
import { systemError } from '@porter/core/internal';

export { invalidArgType, invalidArgValue } from '@porter/core/internal';

/** Where a connection was going, and from where, for error messages. */
export interface Endpoints {
  address: string;
  port: number;
  localAddress?: string | undefined;
  localPort?: number | undefined;
}

/** The TLS handshake did not finish before the deadline: ETIMEDOUT, as Node shapes it. */
export function handshakeTimeout(where: Endpoints): SystemError {
  const err = systemError({
    ...where,
    code: 'ETIMEDOUT',
    errno: constants.errno.ETIMEDOUT,
    syscall: 'connect',
    message: '',
  });
  err.message += ' (TLS handshake not finished in time)';
  return err;
}

/** The connection closed before the handshake finished (and Node reported nothing). */
export function closedBeforeSecure(where: Endpoints): SystemError {
  const { address, port } = where;
  const err = systemError({
    address,
    port,
    code: 'ECONNRESET',
    errno: constants.errno.ECONNRESET,
    syscall: 'connect',
    message: '',
  });
  err.message = `Client network socket disconnected before secure TLS connection was established (${address}:${port})`;
  return err;
}
