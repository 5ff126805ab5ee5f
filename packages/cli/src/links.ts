/**
 * One connection of `porter hold`, whatever runs on it: a {@link Link} is started, then
 * tells its {@link LinkSink} (the engine) exactly once that it opened or failed, and once
 * opened, that it closed; in between it writes messages and reports what came back. Raw
 * TCP and TLS links are here; MQTT and WebSocket ones are link-mqtt.ts and link-ws.ts, and
 * dialer.ts picks a link of the destination's kind.
 */
import type { Socket } from 'node:net';
import type { Porter } from '@porter/core';
import {
  type ConnectOptions,
  type CreateConnectionOptions,
  connect as tlsConnect,
  createConnection as tlsCreateConnection,
} from '@porter/tls';
import type { Destination } from './destinations.js';

/** What a link tells the engine. */
export interface LinkSink {
  opened(link: Link): void;
  /** Before it opened: the connect, handshake, CONNACK or upgrade failed. */
  failed(link: Link, err: unknown): void;
  /** After it opened: it closed (from either side). */
  closed(link: Link): void;
  /** `messages` of those sent came back (echoed, or delivered back), `bytes` of data arrived. */
  received(link: Link, messages: number, bytes: number): void;
}

/** TLS settings of the run (--ca, --servername, --insecure). */
export interface TlsFlags {
  servername?: string;
  ca?: Buffer;
  insecure: boolean;
}

/** What every link of a run shares. */
export interface LinkContext {
  porter: Porter;
  tls: TlsFlags;
  /** Written once on each connection as it opens (--send). */
  send: Buffer | undefined;
  /** The message written at --message-rate (--message); links then report what comes back. */
  message: Buffer | undefined;
  /** MQTT topic pattern (%i: the connection's number in the run, %c: its client id). */
  topic: string;
  /** A prefix of client ids unique to this process. */
  clientPrefix: string;
  /** Milliseconds for a connect (raw links give it to porter's connect; the engine watches the others). */
  timeout: number;
}

/** How long an abandoned connect may take to report its close. */
const ABANDON_GRACE_MS = 5_000;

const CONNECTING = 0;
const OPEN = 1;
const DONE = 2;

/**
 * A connection being opened or held. The engine's bookkeeping lives on it (fewer objects
 * per connection); subclasses call `onOpen`, `onError` and `onClose` as their client
 * reports, and the base turns them into exactly one `opened` or `failed`, then `closed`.
 */
export abstract class Link {
  state = CONNECTING;
  /** performance.now() at start, for the connect latency. */
  startedAt = 0;
  /** Once open: the lifetime timer, then the grace of its close. */
  timer: NodeJS.Timeout | undefined = undefined;
  /** Whether this is one of the first --count connects (not a replacement after a lifetime). */
  initial = true;
  /** Closed from this side: at the end of its lifetime (true) or of the run. */
  endedByUs = false;
  lifetimeEnded = false;
  /** Send times of the messages not yet back (--message). */
  inFlight: number[] | undefined = undefined;
  /** The message clock's slot (--message). */
  slot = -1;
  /** Whether the connect enforces its deadline itself (else the engine abandons it when due). */
  readonly ownDeadline: boolean = false;
  #error: unknown;
  #abandoned = false;

  constructor(
    protected readonly sink: LinkSink,
    protected readonly ctx: LinkContext,
    protected readonly dest: Destination,
  ) {}

  protected get abandoned(): boolean {
    return this.#abandoned;
  }

  /** Starts the connect. */
  abstract start(): void;
  /** Closes from this side, politely (FIN, DISCONNECT, a close frame). */
  abstract end(): void;
  /** Closes at once. */
  abstract destroy(): void;
  /** Writes one message; false when it was not written (too much not yet sent). */
  abstract write(payload: Buffer): boolean;

  protected onOpen(): void {
    if (this.state !== CONNECTING) return;
    this.state = OPEN;
    this.sink.opened(this);
  }

  /**
   * An error. While connecting, the connect failed: the link is destroyed, and the failure
   * is reported once it has closed (its port is back by then); once open, the close that
   * follows tells.
   */
  protected onError(err: unknown): void {
    this.#error ??= err;
    if (this.state === CONNECTING) this.destroy();
  }

  protected onClose(): void {
    if (this.state === CONNECTING) {
      this.state = DONE;
      this.sink.failed(
        this,
        this.#error ?? Object.assign(new Error('closed before it opened'), { code: 'ECONNRESET' }),
      );
    } else if (this.state === OPEN) {
      this.state = DONE;
      this.sink.closed(this);
    }
  }

  /** Fails the connect from outside (its deadline passed, or the run stopped): destroys it. */
  abandon(err: unknown): void {
    if (this.state !== CONNECTING || this.#abandoned) return;
    this.#abandoned = true;
    this.#error ??= err;
    this.destroy();
    // A client that never reports its close still settles.
    setTimeout(() => this.onClose(), ABANDON_GRACE_MS).unref();
  }

  /** The connect failed, and nothing is left open: reports it at once. */
  protected failNow(err: unknown): void {
    this.#error ??= err;
    this.onClose();
  }
}

/**
 * Compares what comes back on a byte stream with what was sent (the --send payload once,
 * then the message again and again), so that the k-th message is known to be back when
 * its last byte is: the whole message is its own latency marker. A byte that differs
 * ends the matching on that connection (the peer is not an echo).
 */
export class EchoMatcher {
  #offset = 0;
  #mismatch = false;

  constructor(
    private readonly prefix: Buffer,
    private readonly message: Buffer,
  ) {}

  /** Messages completed by `chunk`; -1 once what came back differs from what was sent. */
  feed(chunk: Buffer): number {
    if (this.#mismatch) return -1;
    let pos = 0;
    let completed = 0;
    const { prefix, message } = this;
    while (pos < chunk.length) {
      const inPrefix = this.#offset < prefix.length;
      const source = inPrefix ? prefix : message;
      const at = inPrefix ? this.#offset : (this.#offset - prefix.length) % message.length;
      const n = Math.min(source.length - at, chunk.length - pos);
      if (chunk.compare(source, at, at + n, pos, pos + n) !== 0) {
        this.#mismatch = true;
        return -1;
      }
      pos += n;
      this.#offset += n;
      if (!inPrefix && at + n === message.length) completed++;
    }
    return completed;
  }
}

/** @porter/tls options to `dest` through the run's Porter, with its TLS settings (--insecure, --servername, --ca). */
function tlsOptions(ctx: LinkContext, dest: Destination): ConnectOptions {
  return {
    host: dest.host,
    port: dest.port,
    porter: ctx.porter,
    rejectUnauthorized: !ctx.tls.insecure,
    ...(ctx.tls.servername !== undefined ? { servername: ctx.tls.servername } : {}),
    ...(ctx.tls.ca !== undefined ? { ca: ctx.tls.ca } : {}),
  };
}

/** A socket from porter to `dest`: TLS (with the run's TLS settings, and `alpn`) or TCP. Returned at once. */
export function openSocket(ctx: LinkContext, dest: Destination, alpn?: string[]): Socket {
  if (!dest.tls) return ctx.porter.createConnection({ host: dest.host, port: dest.port });
  const options: CreateConnectionOptions = tlsOptions(ctx, dest);
  if (alpn !== undefined) options.ALPNProtocols = alpn;
  return tlsCreateConnection(options);
}

/** Writes are skipped while this much is waiting in a socket's buffer (a peer that does not read). */
export const MAX_BUFFERED = 64 * 1024;

/** Where a raw link's socket keeps its link, so that every socket shares one set of listeners. */
const LINK = Symbol('porter.hold.link');
type LinkedSocket = Socket & { [LINK]: TcpLink };

function onTcpError(this: LinkedSocket, err: Error): void {
  this[LINK].errored(err);
}
function onTcpClose(this: LinkedSocket): void {
  this[LINK].gone();
}

/**
 * A raw TCP connection, or TLS (--tls), from porter's promise API (`porter.connect`,
 * @porter/tls's `connect`) with the core's own deadline and no AbortSignal: it resolves to
 * a socket that holds no more than net.connect's does (createConnection's, built before its
 * descriptor, weighs more while held). Abandoned while connecting (the run stopped), it
 * destroys the socket as soon as there is one. No closure per connection: it counts when
 * holding tens of thousands.
 */
export class TcpLink extends Link {
  override readonly ownDeadline = true;
  #socket: Socket | undefined;

  start(): void {
    const { ctx, dest } = this;
    let connecting: Promise<Socket>;
    if (dest.tls) {
      const options = tlsOptions(ctx, dest);
      options.timeout = ctx.timeout;
      connecting = tlsConnect(options);
    } else {
      connecting = ctx.porter.connect({ host: dest.host, port: dest.port, timeout: ctx.timeout });
    }
    connecting.then(
      (socket) => this.#settled(socket as LinkedSocket),
      (err: unknown) => this.failNow(err),
    );
  }

  #settled(socket: LinkedSocket): void {
    if (this.abandoned) {
      socket.destroy();
      this.failNow(undefined);
      return;
    }
    socket[LINK] = this;
    this.#socket = socket;
    socket.on('error', onTcpError);
    socket.on('close', onTcpClose);
    this.connected(socket);
  }

  connected(socket: Socket): void {
    const { send, message } = this.ctx;
    if (message === undefined) {
      socket.resume();
    } else {
      const echo = new EchoMatcher(send ?? Buffer.alloc(0), message);
      socket.on('data', (chunk: Buffer) => this.sink.received(this, Math.max(0, echo.feed(chunk)), chunk.length));
    }
    if (send !== undefined) socket.write(send);
    this.onOpen();
  }

  errored(err: Error): void {
    this.onError(err);
  }

  gone(): void {
    this.onClose();
  }

  end(): void {
    this.#socket?.end();
  }

  destroy(): void {
    this.#socket?.destroy();
  }

  write(payload: Buffer): boolean {
    const socket = this.#socket;
    if (socket === undefined || socket.writableLength > MAX_BUFFERED || !socket.writable) return false;
    socket.write(payload);
    return true;
  }
}
