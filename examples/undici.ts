/**
 * undici on porter's ports: an undici Agent whose connector is porter's, then Node's own
 * global fetch through it (setGlobalDispatcher). Starts a local server that answers with
 * the client's port.
 *
 *   node --import tsx examples/undici.ts
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Porter } from '@porter/core';
import { connector } from '@porter/tls';
import { Agent, fetch, setGlobalDispatcher } from 'undici';

const server = http.createServer((req, res) => res.end(String(req.socket.remotePort)));
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address() as AddressInfo;

const porter = new Porter();
const agent = new Agent({ connect: connector({ porter, timeout: 5_000 }) });
const viaUndici = await fetch(`http://127.0.0.1:${port}/`, { dispatcher: agent });
console.log(`undici fetch: the server saw port ${await viaUndici.text()}`);

setGlobalDispatcher(agent);
const viaGlobal = await globalThis.fetch(`http://127.0.0.1:${port}/`);
console.log(`global fetch: the server saw port ${await viaGlobal.text()}`);
console.log(porter.snapshot());
await agent.close();
server.close();
