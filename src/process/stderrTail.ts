/**
 * Splits a child's stderr into lines (each capped in length) and keeps the last few,
 * so a failing start can be explained in the log without sending stderr to clients.
 */
export class StderrTail {
  onLine: ((line: string) => void) | undefined;
  private partial = '';
  private readonly lines: string[] = [];
  private readonly decoder = new TextDecoder('utf-8');

  constructor(
    private readonly keep = 20,
    private readonly maxLineChars = 2000,
  ) {}

  push(chunk: Buffer): void {
    const text = this.partial + this.decoder.decode(chunk, { stream: true });
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    if (this.partial.length > this.maxLineChars) {
      parts.push(this.partial);
      this.partial = '';
    }
    for (const part of parts) this.add(part);
  }

  /** The last lines seen (a trailing partial line included). */
  tail(): string[] {
    return this.partial ? [...this.lines, this.partial] : [...this.lines];
  }

  private add(raw: string): void {
    const line = escapeControl(raw.replace(/\r$/, '').slice(0, this.maxLineChars));
    if (line.length === 0) return;
    this.lines.push(line);
    if (this.lines.length > this.keep) this.lines.shift();
    this.onLine?.(line);
  }
}

/** Replaces control characters so a child cannot forge log lines or terminal escapes. */
function escapeControl(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
