/**
 * pg's Pool on porter's ports: the pool's `stream` factory returns porter's socket, and
 * pg's own connect(port, host) on it joins porter's connect. Needs PostgreSQL (default
 * 127.0.0.1:5432; the user, database and password as pg reads them from PGUSER, ...).
 *
 *   node --import tsx examples/pg.ts [host] [port]
 */
import { Porter } from '@porter/core';
import pg from 'pg';

const host = process.argv[2] ?? '127.0.0.1';
const port = Number(process.argv[3] ?? 5432);
const porter = new Porter();
const pool = new pg.Pool({ host, port, stream: () => porter.createConnection({ host, port }) });
const { rows } = await pool.query('SELECT inet_client_port() AS port');
console.log(`the server saw port ${rows[0].port}`, porter.snapshot());
await pool.end();
