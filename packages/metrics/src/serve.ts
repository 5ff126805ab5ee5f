/**
 * serveMetrics: a small node:http server that answers Prometheus scrapes with a
 * prom-client Registry's exposition.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { invalidArgValue, validateIp, validateObject, validatePort, validateString } from '@porter/core/internal';
import { register as globalRegistry, type Registry, type RegistryContentType } from 'prom-client';

/** Options of {@link serveMetrics}. */
export interface ServeMetricsOptions {
  /** TCP port to listen on (default 9464); 0 picks a free one (see `port` of the result). */
  port?: number;
  /**
   * IP address to bind (default '127.0.0.1': only this host can scrape; 'localhost' is
   * taken too). '0.0.0.0' or '::' for all. Names other than 'localhost' are refused.
   */
  host?: string;
  /** The path that answers (default '/metrics'); other paths get 404. */
  path?: string;
  /** The registry to expose (default: prom-client's global `register`). */
  registry?: Registry<RegistryContentType>;
}

/** A running metrics server. */
export interface MetricsServer {
  /** The node:http server. */
  readonly server: Server;
  /** The address it listens on. */
  readonly host: string;
  /** The port it listens on. */
  readonly port: number;
  /** The scrape URL, e.g. `http://127.0.0.1:9464/metrics`. */
  readonly url: string;
  /** Stops listening and closes every connection (keep-alive ones included). */
  close(): Promise<void>;
}

/**
 * Serves `registry.metrics()` on GET (and HEAD) `path`, with the registry's content type.
 * Other paths answer 404, other methods 405. Resolves once listening.
 */
export function serveMetrics(options: ServeMetricsOptions = {}): Promise<MetricsServer> {
  validateObject(options, 'options');
  const port = options.port === undefined ? 9464 : validatePort(options.port, 'options.port', true);
  // An address, not a name: a name would be looked up (a query that may leave the host)
  // and could bind wherever it resolves.
  const host =
    options.host === undefined || options.host === 'localhost'
      ? (options.host ?? '127.0.0.1')
      : validateIp(options.host, 'options.host');
  const path = options.path === undefined ? '/metrics' : validateString(options.path, 'options.path');
  if (!path.startsWith('/')) throw invalidArgValue('options.path', path, "must start with '/'");
  const registry: Registry<RegistryContentType> = options.registry ?? globalRegistry;
  if (typeof registry?.metrics !== 'function') {
    throw invalidArgValue('options.registry', typeof registry, 'must be a prom-client Registry');
  }

  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const pathname = query === -1 ? url : url.slice(0, query);
    if (pathname !== path) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not Found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res
        .writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' })
        .end('Method Not Allowed\n');
      return;
    }
    registry.metrics().then(
      (body) => {
        res
          .writeHead(200, { 'Content-Type': registry.contentType, 'Content-Length': Buffer.byteLength(body) })
          .end(body);
      },
      (err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${message}\n`);
      },
    );
  });

  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.removeListener('error', onError);
      const address = server.address() as AddressInfo;
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      let closing: Promise<void> | undefined;
      resolve({
        server,
        host: address.address,
        port: address.port,
        url: `http://${shown}:${address.port}${path}`,
        close() {
          closing ??= new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()));
            server.closeAllConnections();
          });
          return closing;
        },
      });
    });
  });
}
