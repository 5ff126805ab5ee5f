/**
 * The live view of `porter hold`: on a terminal, cli-progress bars redrawn in place (the
 * connections, then one bar per pool: ports in use of the pool's ports); elsewhere one
 * plain line a second. Both read the same {@link Progress} state.
 */
import { MultiBar, type SingleBar } from 'cli-progress';
import { formatMs } from './latency.js';
import type { PoolRow } from './pools.js';

/** What the view shows, read at each redraw. */
export interface Progress {
  phase: 'opening' | 'holding' | 'closing' | 'done' | 'interrupted';
  total: number;
  opened: number;
  failed: number;
  errors: Record<string, number>;
  /** Connections that closed while held (the peer closed or reset them). */
  dropped: number;
  open: number;
  ratePerSec: number;
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  elapsedMs: number;
  /** Seconds left to hold, while holding. */
  holdLeftSec?: number;
  /** The busiest pools, and how many others there are. */
  pools: PoolRow[];
  otherPools: number;
  /** With --lifetime: connections closed at the end of their lifetime. */
  churned?: number;
  /** With --message: messages sent and come back, round trips. */
  messages?: { sent: number; received: number; rttP50Ms: number | undefined; rttP99Ms: number | undefined };
}

/** The parts of a line that only some runs have: churn, messages, drops (numbers as `n` writes them). */
function extras(p: Progress, separator: string, n: (v: number) => string): string {
  const parts: string[] = [];
  if (p.churned !== undefined) parts.push(`held ${n(p.open)}, churned ${n(p.churned)}`);
  if (p.messages !== undefined) {
    const m = p.messages;
    parts.push(
      `messages ${n(m.sent)} sent ${n(m.received)} back, rtt p50 ${formatMs(m.rttP50Ms)} p99 ${formatMs(m.rttP99Ms)}`,
    );
  }
  if (p.dropped > 0) parts.push(`dropped ${n(p.dropped)}`);
  return parts.map((x) => `${separator}${x}`).join('');
}

/** A view: `update()` redraws (it is cheap to call often), `stop()` leaves the last frame. */
export interface ProgressView {
  update(p: Progress): void;
  stop(p: Progress): void;
}

const MAX_POOL_BARS = 6;

export function errorsText(errors: Record<string, number>): string {
  const entries = Object.entries(errors).sort((a, b) => b[1] - a[1]);
  return entries.length === 0
    ? ''
    : ` (${entries.map(([code, n]) => `${code} ${n.toLocaleString('en-US')}`).join(', ')})`;
}

function phaseText(p: Progress): string {
  if (p.phase === 'holding' && p.holdLeftSec !== undefined)
    return `holding ${p.open.toLocaleString('en-US')}, ${Math.ceil(p.holdLeftSec)} s left`;
  return p.phase;
}

/** cli-progress bars on a terminal. */
export function terminalView(stream: NodeJS.WriteStream): ProgressView {
  const multi = new MultiBar({
    stream,
    format: `{label} {bar} {text}`,
    barCompleteChar: '█',
    barIncompleteChar: '░',
    barsize: 24,
    hideCursor: true,
    clearOnComplete: false,
    stopOnComplete: false,
    gracefulExit: false,
    autopadding: true,
    fps: 10,
    linewrap: false,
  });
  let main: SingleBar | undefined;
  const poolBars: SingleBar[] = [];
  let others: SingleBar | undefined;
  const labelWidth = (p: Progress): number =>
    Math.max('connections'.length, ...p.pools.map((r) => `${r.remote} from ${r.local}`.length));

  const draw = (p: Progress): void => {
    const width = labelWidth(p);
    const mainText =
      `${(p.opened + p.failed).toLocaleString('en-US')}/${p.total.toLocaleString('en-US')} | opened ${p.opened.toLocaleString('en-US')}` +
      ` | failed ${p.failed.toLocaleString('en-US')}${errorsText(p.errors)} | ${Math.round(p.ratePerSec).toLocaleString('en-US')}/s` +
      ` | connect p50 ${formatMs(p.p50Ms)} p99 ${formatMs(p.p99Ms)}` +
      extras(p, ' | ', (v) => v.toLocaleString('en-US')) +
      ` | ${phaseText(p)}`;
    if (main === undefined) main = multi.create(Math.max(1, p.total), 0, { label: '', text: '' });
    main.setTotal(Math.max(1, p.total));
    // Replacements after a --lifetime count on past the total: the bar stays full.
    main.update(Math.min(p.total, p.opened + p.failed), { label: 'connections'.padEnd(width), text: mainText });
    p.pools.slice(0, MAX_POOL_BARS).forEach((row, i) => {
      const capacity = Math.max(1, row.in_use + row.aging + row.free);
      let bar = poolBars[i];
      if (bar === undefined) {
        bar = multi.create(capacity, 0, { label: '', text: '' });
        poolBars.push(bar);
      }
      bar.setTotal(capacity);
      bar.update(row.in_use, {
        label: `${row.remote} from ${row.local}`.padEnd(width),
        text: `in use ${row.in_use.toLocaleString('en-US')} | aging ${row.aging.toLocaleString('en-US')} | free ${row.free.toLocaleString('en-US')}`,
      });
    });
    const hidden = p.otherPools + Math.max(0, p.pools.length - MAX_POOL_BARS);
    if (hidden > 0) {
      if (others === undefined) others = multi.create(1, 0, { label: '', text: '' }, { format: '{label} {text}' });
      others.update(0, { label: ''.padEnd(width), text: `and ${hidden.toLocaleString('en-US')} more pools` });
    }
  };
  return {
    update: draw,
    stop(p) {
      draw(p);
      multi.update();
      multi.stop();
    },
  };
}

/** One plain line a second (and at each change of phase), for pipes and logs. */
export function plainView(stream: NodeJS.WritableStream): ProgressView {
  let lastLine = 0;
  let lastPhase: Progress['phase'] | undefined;
  const line = (p: Progress): string => {
    const inUse = p.pools.reduce((n, r) => n + r.in_use, 0);
    return (
      `[${(p.elapsedMs / 1000).toFixed(1)} s] ${phaseText(p)}: opened ${p.opened}/${p.total}, failed ${p.failed}${errorsText(p.errors)}, ` +
      `${Math.round(p.ratePerSec)}/s, connect p50 ${formatMs(p.p50Ms)} p99 ${formatMs(p.p99Ms)}, ports in use ${inUse}` +
      extras(p, ', ', String)
    );
  };
  return {
    update(p) {
      const now = performance.now();
      if (p.phase !== lastPhase || now - lastLine >= 1000) {
        stream.write(`${line(p)}\n`);
        lastLine = now;
        lastPhase = p.phase;
      }
    },
    stop(p) {
      stream.write(`${line(p)}\n`);
    },
  };
}
