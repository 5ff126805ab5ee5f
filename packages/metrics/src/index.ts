/**
 * @porter/metrics: porter's pools, ports, retries, errors and connect latency as
 * Prometheus metrics (prom-client), read from the native core at scrape time, and a
 * small HTTP server to expose them.
 *
 * @packageDocumentation
 */
export {
  ERR_METRICS_REGISTERED,
  type PorterMetrics,
  type PorterMetricsOptions,
  type PorterSource,
  registerPorterMetrics,
} from './register.js';
export { type MetricsServer, type ServeMetricsOptions, serveMetrics } from './serve.js';
