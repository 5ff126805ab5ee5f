/**
 * ws on porter's ports: `createConnection` as the WebSocket's socket factory. Starts a
 * local WebSocket echo server.
 *
 *   node --import tsx examples/ws.ts
 */
import { once } from 'node:events';
import { createConnection, snapshot } from '@porter/core';
import WebSocket, { WebSocketServer } from 'ws';

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
await once(wss, 'listening');
wss.on('connection', (socket, req) => socket.send(`hello from the server, port ${req.socket.remotePort}`));
const { port } = wss.address() as { port: number };

const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { createConnection });
const [message] = await once(ws, 'message');
console.log(String(message));
console.log(snapshot().filter((p) => p.remotePort === port));
ws.close();
wss.close();
