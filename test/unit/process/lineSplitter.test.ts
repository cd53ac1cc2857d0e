/**
 * LineSplitter: newline framing of a child's stdout with a cap per line (not per chunk),
 * multi-byte text split across chunks, and nothing kept once a line passes the cap.
 */
import { describe, expect, it } from '@jest/globals';
import { LineSplitter } from '../../../src/process/lineSplitter.js';

/** Pushes each chunk in turn; returns the lines handed over and every push's answer. */
function feed(splitter: LineSplitter, chunks: readonly (string | Buffer)[]): { lines: string[]; results: boolean[] } {
  const lines: string[] = [];
  const results = chunks.map((chunk) => splitter.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk, (line) => lines.push(line)));
  return { lines, results };
}

/** `buffer` cut into pieces of `size` bytes. */
function pieces(buffer: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buffer.length; i += size) out.push(buffer.subarray(i, i + size));
  return out;
}

describe('LineSplitter', () => {
  it('hands over every line of one chunk, in order, and keeps the unterminated rest', () => {
    const splitter = new LineSplitter(1024);
    const first = feed(splitter, ['{"a":1}\n{"b":2}\n{"c":3}\n{"d"']);
    expect(first).toEqual({ lines: ['{"a":1}', '{"b":2}', '{"c":3}'], results: [true] });
    // the rest was kept: it completes with the next chunk
    expect(feed(splitter, [':4}\n'])).toEqual({ lines: ['{"d":4}'], results: [true] });
  });

  it('joins a line split across many chunks', () => {
    const splitter = new LineSplitter(1024);
    const line = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { text: 'x'.repeat(300) } });
    const { lines, results } = feed(splitter, [...pieces(Buffer.from(line), 7), '\n']);
    expect(lines).toEqual([line]);
    expect(results.every(Boolean)).toBe(true);
  });

  it('hands over nothing until the newline arrives', () => {
    const splitter = new LineSplitter(1024);
    expect(feed(splitter, ['abc', 'def']).lines).toEqual([]);
    expect(feed(splitter, ['\n']).lines).toEqual(['abcdef']);
  });

  it.each([
    ['€ (3 bytes)', '€'],
    ['😀 (4 bytes, a surrogate pair in UTF-16)', '😀'],
    ['é (2 bytes)', 'é'],
  ])('decodes %s whole when it arrives byte by byte', (_name, char) => {
    const splitter = new LineSplitter(1024);
    const text = `{"t":"a${char}b${char}${char}"}`;
    const { lines } = feed(splitter, pieces(Buffer.from(`${text}\n`, 'utf8'), 1));
    expect(lines).toEqual([text]);
    expect(lines[0]).not.toContain('\ufffd');
  });

  it("decodes a character split between the end of one line's chunk and the next chunk", () => {
    const splitter = new LineSplitter(1024);
    const bytes = Buffer.from('first\nsecond 😀 end\n', 'utf8');
    const cut = bytes.indexOf(Buffer.from('😀')) + 2; // inside the emoji
    const { lines } = feed(splitter, [bytes.subarray(0, cut), bytes.subarray(cut)]);
    expect(lines).toEqual(['first', 'second 😀 end']);
  });

  it('removes one trailing \\r, whole or split from its \\n, and keeps any other \\r', () => {
    const splitter = new LineSplitter(1024);
    expect(feed(splitter, ['a\r\nb\r\r\nc\rd\n']).lines).toEqual(['a', 'b\r', 'c\rd']);
    expect(feed(splitter, ['e\r', '\n']).lines).toEqual(['e']);
    expect(feed(splitter, ['\r\n']).lines).toEqual(['']);
  });

  it('hands empty lines over as empty strings', () => {
    const splitter = new LineSplitter(1024);
    expect(feed(splitter, ['\n\na\n\n', '\n'])).toEqual({ lines: ['', '', 'a', '', ''], results: [true, true] });
  });

  it('ignores an empty chunk', () => {
    const splitter = new LineSplitter(1024);
    expect(feed(splitter, ['ab', Buffer.alloc(0), 'c\n'])).toEqual({ lines: ['abc'], results: [true, true, true] });
  });

  describe('the cap is per line, in bytes, without the newline', () => {
    const MAX = 64;

    it('passes a line of exactly maxLineBytes, whole', () => {
      const splitter = new LineSplitter(MAX);
      const line = 'x'.repeat(MAX);
      expect(feed(splitter, [`${line}\n`])).toEqual({ lines: [line], results: [true] });
    });

    it('passes a line of exactly maxLineBytes split across chunks, the newline arriving alone', () => {
      const splitter = new LineSplitter(MAX);
      const line = 'x'.repeat(MAX);
      expect(feed(splitter, [line.slice(0, 10), line.slice(10), '\n'])).toEqual({ lines: [line], results: [true, true, true] });
    });

    it('counts bytes, not characters: 16 euro signs are 48 bytes', () => {
      const line = '€'.repeat(16);
      expect(Buffer.byteLength(line)).toBe(48);
      expect(feed(new LineSplitter(48), [`${line}\n`]).results).toEqual([true]);
      expect(feed(new LineSplitter(47), [`${line}\n`]).results).toEqual([false]);
    });

    it('fails a line of maxLineBytes + 1 that arrives whole', () => {
      const splitter = new LineSplitter(MAX);
      expect(feed(splitter, [`${'x'.repeat(MAX + 1)}\n`])).toEqual({ lines: [], results: [false] });
    });

    it('fails maxLineBytes + 1 bytes with no newline yet, as soon as they are pushed', () => {
      const splitter = new LineSplitter(MAX);
      expect(feed(splitter, ['x'.repeat(MAX + 1)])).toEqual({ lines: [], results: [false] });
    });

    it('fails a line that passes the cap across chunks, on the chunk that passes it', () => {
      const splitter = new LineSplitter(MAX);
      const { lines, results } = feed(splitter, ['x'.repeat(40), 'x'.repeat(MAX - 40), 'x']);
      expect(lines).toEqual([]);
      expect(results).toEqual([true, true, false]);
    });

    it('fails a line that passes the cap when its newline arrives in a later chunk', () => {
      const splitter = new LineSplitter(MAX);
      const { lines, results } = feed(splitter, ['x'.repeat(MAX), 'x\n']);
      expect(lines).toEqual([]);
      expect(results).toEqual([true, false]);
    });

    it('counts a trailing \\r toward the cap (it is removed only after the check)', () => {
      const line = 'x'.repeat(MAX);
      expect(feed(new LineSplitter(MAX), [`${line}\r\n`])).toEqual({ lines: [], results: [false] });
      expect(feed(new LineSplitter(MAX + 1), [`${line}\r\n`])).toEqual({ lines: [line], results: [true] });
    });

    it('hands over the lines before an oversized one in the same chunk, then fails', () => {
      const splitter = new LineSplitter(MAX);
      const { lines, results } = feed(splitter, [`ok-1\nok-2\n${'x'.repeat(MAX + 1)}\nnever\n`]);
      expect(lines).toEqual(['ok-1', 'ok-2']);
      expect(results).toEqual([false]);
    });

    it('passes a burst of short lines whose total is far over the cap', () => {
      const splitter = new LineSplitter(MAX);
      const sent = Array.from({ length: 2000 }, (_, i) => `{"jsonrpc":"2.0","method":"n","params":{"i":${i}}}`);
      expect(sent.every((l) => Buffer.byteLength(l) <= MAX)).toBe(true);
      const burst = Buffer.from(sent.map((l) => `${l}\n`).join(''));
      expect(burst.length).toBeGreaterThan(1000 * MAX);
      // once as one chunk, once cut in 4 KiB reads that split lines anywhere
      expect(feed(splitter, [burst])).toEqual({ lines: sent, results: [true] });
      const cut = feed(splitter, pieces(burst, 4096));
      expect(cut.lines).toEqual(sent);
      expect(cut.results.every(Boolean)).toBe(true);
    });
  });

  describe('after a failed push nothing is kept', () => {
    const MAX = 16;

    it('a partial line kept before the failing chunk is dropped too', () => {
      const splitter = new LineSplitter(MAX);
      expect(feed(splitter, ['prefix-', 'y'.repeat(MAX)]).results).toEqual([true, false]);
      // neither 'prefix-' nor the oversized bytes come back with the next line
      expect(feed(splitter, ['next\n'])).toEqual({ lines: ['next'], results: [true] });
    });

    it('the rest of the failing chunk after the oversized line is not kept', () => {
      const splitter = new LineSplitter(MAX);
      expect(feed(splitter, [`${'y'.repeat(MAX + 1)}\nleft-over`]).results).toEqual([false]);
      expect(feed(splitter, ['fresh\n']).lines).toEqual(['fresh']);
    });

    it('after clear() a full-size line passes again', () => {
      const splitter = new LineSplitter(MAX);
      expect(feed(splitter, ['z'.repeat(MAX + 5)]).results).toEqual([false]);
      splitter.clear();
      expect(feed(splitter, [`${'a'.repeat(MAX)}\n`])).toEqual({ lines: ['a'.repeat(MAX)], results: [true] });
    });
  });

  it('clear() drops a partial line', () => {
    const splitter = new LineSplitter(1024);
    feed(splitter, ['half a li']);
    splitter.clear();
    expect(feed(splitter, ['ne\n']).lines).toEqual(['ne']);
  });
});
