/**
 * ioredis on porter's ports: a Connector whose stream is porter's socket (ioredis calls
 * it again for every reconnect). Needs Redis (default 127.0.0.1:6379).
 *
 *   node --import tsx examples/redis.ts [host] [port]
 */
import { createConnection } from '@porter/core';
import { AbstractConnector, Redis } from 'ioredis';

const host = process.argv[2] ?? '127.0.0.1';
const port = Number(process.argv[3] ?? 6379);

class PorterConnector extends AbstractConnector {
  constructor() {
    super(2_000);
  }
  connect() {
    this.connecting = true;
    this.stream = createConnection({ host, port });
    return Promise.resolve(this.stream);
  }
}

const redis = new Redis({ host, port, Connector: PorterConnector });
console.log(await redis.client('INFO'));
redis.disconnect();
