/**
 * Text that came from elsewhere (a metrics endpoint's labels, an HTTP reason phrase) made
 * safe for a terminal: control characters (C0, DEL, C1) and the Unicode controls that
 * reorder text (bidirectional overrides and isolates) are shown as escapes (`\x1b`,
 * `\u202e`), so that they can neither drive the terminal (set its title, clear the
 * screen, move the cursor) nor disguise what is printed.
 */

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
/** What JSON.stringify leaves as is but a terminal may act on (it escapes C0 itself). */
const JSON_CONTROLS = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const hex = (c: string, width: number): string => c.charCodeAt(0).toString(16).padStart(width, '0');

/** `text` with every control character shown as an escape. */
export function terminalSafe(text: string): string {
  return text.replace(CONTROLS, (c) => (c.charCodeAt(0) <= 0xff ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`));
}

/** JSON.stringify, with the controls it leaves raw escaped too (`\u009b`): still JSON, and inert on a terminal. */
export function safeJson(value: unknown): string {
  return JSON.stringify(value).replace(JSON_CONTROLS, (c) => `\\u${hex(c, 4)}`);
}
