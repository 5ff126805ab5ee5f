/**
 * A streaming reader of the Prometheus text exposition format (and of OpenMetrics' sample
 * lines), for `porter inspect`: the body is fed in chunks as it arrives and never held
 * whole; each sample line whose name starts with the prefix is parsed, by a loop over its
 * characters (no recursion, no backtracking regular expression), and handed to a sink;
 * every other line is passed over without being kept, however long. A line of ours longer
 * than {@link MAX_LINE} is refused: no porter series is anywhere near it.
 */
import { StringDecoder } from 'node:string_decoder';

/** The longest sample line of ours that is read (64 KiB). */
export const MAX_LINE = 64 * 1024;

/** Receives each sample of ours: its name, labels and value. */
export type SampleSink = (name: string, labels: Record<string, string>, value: number) => void;

/** Why the text could not be read (a line of ours that is not a sample, or too long). */
export class ExpositionError extends Error {
  override readonly name = 'ExpositionError';
}

const isNameChar = (c: number): boolean =>
  (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95 || c === 58;

function parseValue(text: string): number {
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  const n = text === '' ? Number.NaN : Number(text);
  if (Number.isNaN(n)) throw new ExpositionError(`"${text.slice(0, 40)}" is not a number`);
  return n;
}

/** The labels of a sample, from just after its `{`; returns them and where the `}` ended. */
function parseLabels(line: string, from: number): [Record<string, string>, number] {
  const labels: Record<string, string> = Object.create(null);
  let i = from;
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (line[i] === '}') return [labels, i + 1];
    const nameStart = i;
    while (i < line.length && isNameChar(line.charCodeAt(i))) i++;
    const name = line.slice(nameStart, i);
    if (name === '' || line[i] !== '=' || line[i + 1] !== '"') throw new ExpositionError('a label is not name="value"');
    i += 2;
    let value = '';
    let runStart = i;
    for (;;) {
      if (i >= line.length) throw new ExpositionError('a label value is not closed');
      const c = line[i];
      if (c === '"') break;
      if (c === '\\') {
        value += line.slice(runStart, i);
        const next = line[i + 1];
        value += next === 'n' ? '\n' : (next ?? '');
        i += 2;
        runStart = i;
      } else {
        i++;
      }
    }
    labels[name] = value + line.slice(runStart, i);
    i++;
  }
}

/** Reads the exposition chunk by chunk; throws ExpositionError on a bad line of ours. */
export class ExpositionReader {
  readonly #decoder = new StringDecoder('utf8');
  #partial = '';
  #skipping = false;
  #line = 0;

  constructor(
    private readonly prefix: string,
    private readonly sink: SampleSink,
  ) {}

  write(chunk: Buffer): void {
    const text = this.#decoder.write(chunk);
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      this.#line++;
      if (this.#skipping) this.#skipping = false;
      else this.#readLine(this.#partial + text.slice(start, nl));
      this.#partial = '';
      start = nl + 1;
    }
    if (this.#skipping) return;
    this.#partial += text.slice(start);
    if (this.#partial.length > MAX_LINE) {
      if (this.#partial.startsWith(this.prefix)) this.#tooLong();
      this.#skipping = true; // not ours: passed over up to its end
      this.#partial = '';
    }
  }

  /** The end of the text. */
  end(): void {
    const rest = this.#partial + this.#decoder.end();
    if (!this.#skipping && rest !== '') {
      this.#line++;
      this.#readLine(rest);
    }
  }

  #tooLong(): never {
    throw new ExpositionError(`line ${this.#line + 1} is a ${this.prefix}* sample longer than ${MAX_LINE / 1024} KiB`);
  }

  #readLine(raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line.startsWith(this.prefix)) return; // comments, blank lines, other metrics
    if (line.length > MAX_LINE) this.#tooLong();
    try {
      let i = 0;
      while (i < line.length && isNameChar(line.charCodeAt(i))) i++;
      const name = line.slice(0, i);
      let labels: Record<string, string> = Object.create(null);
      if (line[i] === '{') [labels, i] = parseLabels(line, i + 1);
      while (line[i] === ' ' || line[i] === '\t') i++;
      let end = i;
      while (end < line.length && line[end] !== ' ' && line[end] !== '\t') end++;
      this.sink(name, labels, parseValue(line.slice(i, end)));
    } catch (err) {
      if (err instanceof ExpositionError) throw new ExpositionError(`line ${this.#line}: ${err.message}`);
      throw err;
    }
  }
}
