/**
 * WebSocket clients for `porter hold ws://` and `wss://`: ws, whose `createConnection`
 * option gives it porter's socket (or @porter/tls's for wss). Opened is the upgrade
 * accepted (101); a refusal fails with HTTP_<status>. With --message, each client sends
 * it as one frame (text when it is UTF-8, else binary) at its rate; a frame that comes
 * back equal to it is a round trip (against an echo server). Loaded only when a
 * destination is ws:// or wss://.
 */
import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { Link, MAX_BUFFERED, openSocket } from './links.js';

/** The last payload checked and whether it goes as a binary frame: the run sends one message, checked once. */
let lastPayload: { payload: Buffer; binary: boolean } | undefined;

function isBinary(payload: Buffer): boolean {
  if (lastPayload?.payload !== payload) lastPayload = { payload, binary: !isUtf8(payload) };
  return lastPayload.binary;
}

export class WsLink extends Link {
  #ws: WebSocket | undefined;

  start(): void {
    const { ctx, dest } = this;
    const socket = (): Socket => openSocket(ctx, dest, ['http/1.1']);
    const ws = new WebSocket(dest.url as string, { createConnection: socket, perMessageDeflate: false });
    this.#ws = ws;
    ws.on('unexpected-response', (_request, response) => {
      this.onError(
        Object.assign(new Error(`the server answered the upgrade with ${response.statusCode}`), {
          code: `HTTP_${response.statusCode}`,
        }),
      );
      ws.terminate();
    });
    ws.on('error', (err) => this.onError(err));
    ws.once('close', () => this.onClose());
    ws.once('open', () => {
      const message = ctx.message;
      if (message !== undefined) {
        ws.on('message', (data: Buffer) => this.sink.received(this, data.equals(message) ? 1 : 0, data.length));
      }
      this.onOpen();
    });
  }

  end(): void {
    this.#ws?.close(1000);
  }

  destroy(): void {
    this.#ws?.terminate();
  }

  write(payload: Buffer): boolean {
    const ws = this.#ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > MAX_BUFFERED) return false;
    ws.send(payload, { binary: isBinary(payload) });
    return true;
  }
}
