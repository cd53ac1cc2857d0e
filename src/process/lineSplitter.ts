/**
 * Newline framing of a child's stdout with a cap per line. Only the partial last line is
 * kept between chunks (as buffers, so multi-byte text split across chunks decodes whole);
 * each byte is scanned for a newline once.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;

  /** @param maxLineBytes longest line accepted, in bytes (without its newline) */
  constructor(private readonly maxLineBytes: number) {}

  /**
   * Hands every complete line of `chunk` (without `\n` or a trailing `\r`) to `onLine`.
   * Returns false, and keeps nothing, once a line passes the cap.
   */
  push(chunk: Buffer, onLine: (line: string) => void): boolean {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline === -1) break;
      if (this.size + newline - start > this.maxLineBytes) return this.overflow();
      let line: string;
      if (this.size === 0) {
        line = chunk.toString('utf8', start, newline);
      } else {
        this.parts.push(chunk.subarray(start, newline));
        line = Buffer.concat(this.parts, this.size + newline - start).toString('utf8');
        this.parts = [];
        this.size = 0;
      }
      onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
      start = newline + 1;
    }
    const rest = chunk.length - start;
    if (rest > 0) {
      if (this.size + rest > this.maxLineBytes) return this.overflow();
      this.parts.push(start === 0 ? chunk : chunk.subarray(start));
      this.size += rest;
    }
    return true;
  }

  clear(): void {
    this.parts = [];
    this.size = 0;
  }

  private overflow(): false {
    this.clear();
    return false;
  }
}
