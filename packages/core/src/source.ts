/**
 * The source address the kernel picks for a destination, for the error of a connect
 * that failed from a pool on the unspecified address (whose socket, bound to 0.0.0.0 or
 * ::, never told it): a UDP socket connected to the destination makes the same routing
 * choice and reports it with getsockname. No packet is sent.
 */
import { createSocket } from 'node:dgram';

/** The local address for `address`:`port`, or undefined when the kernel has no route. */
export function sourceAddress(address: string, port: number, family: 4 | 6): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
    const done = (value: string | undefined): void => {
      socket.close();
      resolve(value);
    };
    socket.once('error', () => done(undefined));
    try {
      socket.connect(port, address, () => {
        try {
          done(socket.address().address);
        } catch {
          done(undefined);
        }
      });
    } catch {
      done(undefined);
    }
  });
}
