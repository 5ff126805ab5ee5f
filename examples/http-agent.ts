/**
 * Node's http client on porter's ports: `http.get` with porter's Agent (keep-alive).
 * Starts a local server that answers with the client's port, and prints the port porter
 * leased beside it.
 *
 *   node --import tsx examples/http-agent.ts
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, leaseOf, Porter } from '@porter/core';

const server = http.createServer((req, res) => res.end(String(req.socket.remotePort)));
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address() as AddressInfo;

const porter = new Porter();
const agent = new Agent({ porter, keepAlive: true, timeout: 5_000 });
for (const path of ['/a', '/b']) {
  const res = await new Promise<http.IncomingMessage>((resolve) => http.get({ port, path, agent }, resolve));
  const lease = leaseOf(res.socket);
  res.setEncoding('utf8');
  let body = '';
  for await (const chunk of res) body += chunk;
  console.log(`${path}: the server saw port ${body}; porter leased ${lease?.localPort}`);
}
agent.destroy();
server.close();
