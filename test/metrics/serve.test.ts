import { request } from 'node:http';
import type { Socket } from 'node:net';
import { Porter } from '@porter/core';
import { registerPorterMetrics, serveMetrics } from '@porter/metrics';
import test from 'ava';
import { Counter, Registry } from 'prom-client';
import { parseExposition, sampleValue } from '../helpers/exposition.js';
import { findFreePortBlock, freePort } from '../helpers/ports.js';
import { ipv6LoopbackMissing, testIf } from '../helpers/requirements.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function httpRequest(url: string, method = 'GET', agent?: import('node:http').Agent): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('GET path answers the registry with its content type; 404 elsewhere, 405 for other methods', async (t) => {
  const [first, last] = await findFreePortBlock(3);
  const porter = new Porter({ portRange: [first, last] });
  const registry = new Registry();
  registerPorterMetrics({ porter, registry });
  const server = await serveMetrics({ port: 0, registry });
  t.teardown(() => server.close());
  t.is(server.host, '127.0.0.1', 'loopback unless told');
  t.true(server.port > 0);
  t.is(server.url, `http://127.0.0.1:${server.port}/metrics`);

  const leases = [
    porter.allocate({ address: '127.0.0.1', port: 80 }),
    porter.allocate({ address: '127.0.0.1', port: 80 }),
  ];
  const ok = await httpRequest(server.url);
  t.is(ok.status, 200);
  t.is(ok.headers['content-type'], registry.contentType);
  t.is(ok.headers['content-length'], String(Buffer.byteLength(ok.body)));
  const s = parseExposition(ok.body);
  t.is(sampleValue(s, 'porter_ports_in_use', { remote: '127.0.0.1:80', local: '0.0.0.0' }), 2);
  t.is(sampleValue(s, 'porter_allocations_total'), 2);
  t.is(ok.body, await registry.metrics(), 'the body is the registry exposition');

  // Values are read at each scrape.
  for (const l of leases) l.release({ aging: false });
  const again = parseExposition((await httpRequest(`${server.url}?x=1`)).body);
  t.is(sampleValue(again, 'porter_ports_in_use', { remote: '127.0.0.1:80', local: '0.0.0.0' }), 0);
  t.is(sampleValue(again, 'porter_releases_total', { mode: 'immediate' }), 2);

  const head = await httpRequest(server.url, 'HEAD');
  t.is(head.status, 200);
  t.is(head.body, '');
  t.is((await httpRequest(`http://127.0.0.1:${server.port}/`)).status, 404);
  t.is((await httpRequest(`http://127.0.0.1:${server.port}/metrics/x`)).status, 404);
  const post = await httpRequest(server.url, 'POST');
  t.is(post.status, 405);
  t.is(post.headers['allow'], 'GET, HEAD');
  t.is((await httpRequest(server.url, 'DELETE')).status, 405);
});

test('custom path and host, the global registry by default, 500 when a collect fails', async (t) => {
  const { register } = await import('prom-client');
  const probe = new Counter({ name: 'metrics_serve_probe_total', help: 'A test counter.', registers: [register] });
  t.teardown(() => register.removeSingleMetric('metrics_serve_probe_total'));
  probe.inc(3);
  const server = await serveMetrics({ port: 0, host: '127.0.0.1', path: '/scrape' });
  t.teardown(() => server.close());
  t.is(server.url, `http://127.0.0.1:${server.port}/scrape`);
  const reply = await httpRequest(server.url);
  t.is(reply.status, 200);
  t.regex(reply.body, /^metrics_serve_probe_total 3$/m);
  t.is((await httpRequest(`http://127.0.0.1:${server.port}/metrics`)).status, 404);

  const failing = new Registry();
  new Counter({
    name: 'failing_total',
    help: 'Fails to collect.',
    registers: [failing],
    collect() {
      throw new Error('collect failed');
    },
  });
  const bad = await serveMetrics({ port: 0, registry: failing });
  t.teardown(() => bad.close());
  const err = await httpRequest(bad.url);
  t.is(err.status, 500);
  t.regex(err.body, /collect failed/);
});

testIf(ipv6LoopbackMissing())('IPv6 loopback: the url has the address in brackets', async (t) => {
  const server = await serveMetrics({ port: 0, host: '::1', registry: new Registry() });
  t.teardown(() => server.close());
  t.is(server.host, '::1');
  t.is(server.url, `http://[::1]:${server.port}/metrics`);
  t.is((await httpRequest(server.url)).status, 200);
});

test('close() resolves even with a keep-alive connection open, and is idempotent', async (t) => {
  const server = await serveMetrics({ port: 0, registry: new Registry() });
  const { Agent } = await import('node:http');
  const agent = new Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  // A keep-alive connection the server would keep for ten minutes: close() must end it
  // rather than wait (a wait would outlast the test's timeout).
  server.server.keepAliveTimeout = 10 * 60_000;
  const kept = new Promise<Socket>((resolve) => server.server.once('connection', resolve));
  t.is((await httpRequest(server.url, 'GET', agent)).status, 200);
  const connection = await kept;
  t.false(connection.destroyed, 'the keep-alive connection is open');
  t.is(server.server.listening, true);
  await Promise.all([server.close(), server.close()]);
  t.true(connection.destroyed, 'close() ended the keep-alive connection');
  t.is(server.server.listening, false);
  await t.throwsAsync(httpRequest(server.url), { code: 'ECONNREFUSED' });
});

test('a port in use rejects with EADDRINUSE; bad options throw', async (t) => {
  const first = await serveMetrics({ port: 0, registry: new Registry() });
  t.teardown(() => first.close());
  await t.throwsAsync(serveMetrics({ port: first.port, registry: new Registry() }), { code: 'EADDRINUSE' });
  t.throws(() => serveMetrics({ port: 70_000 }), { code: 'ERR_SOCKET_BAD_PORT', instanceOf: RangeError });
  const port = await freePort();
  t.throws(() => serveMetrics({ port, path: 'metrics' }), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => serveMetrics({ host: 1 as unknown as string }), { code: 'ERR_INVALID_ARG_TYPE' });
});
