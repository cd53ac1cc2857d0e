/**
 * Splits a whitelist key such as `npx -y "@scope/pkg@1.0" --flag='a b'` into argv words.
 *
 * Quoting follows the POSIX shell for word splitting only. Nothing is ever expanded:
 * no `$VAR`, no globs, no `~`, no command substitution, and no operators (`;`, `|`, `&&`,
 * `>` are ordinary characters inside words). The result is passed to spawn as argv with
 * `shell: false`, so these characters never reach a shell.
 *
 * - Whitespace (space, tab, CR, LF, FF, VT) outside quotes separates words.
 * - `'...'` keeps everything literal, backslashes included.
 * - `"..."` keeps everything literal except `\"` and `\\`, which yield `"` and `\`;
 *   any other backslash inside double quotes stays a backslash (as in the shell).
 * - Outside quotes a backslash makes the next character literal.
 * - Adjacent quoted and unquoted parts join into one word (`a"b c"'d'` -> `ab cd`);
 *   `''` and `""` on their own are an empty word.
 */

const WHITESPACE = new Set([' ', '\t', '\n', '\r', '\f', '\v']);

/**
 * @throws {TypeError} on an unterminated quote, a trailing lone backslash, or a line that
 * holds no word at all.
 */
export function splitCommandLine(line: string): string[] {
  if (typeof line !== 'string') {
    throw new TypeError(`command line must be a string, got ${typeof line}`);
  }
  const words: string[] = [];
  let current = '';
  // A word has started even if it is still empty (e.g. after `''`).
  let inWord = false;
  let i = 0;

  while (i < line.length) {
    const ch = line[i] as string;

    if (WHITESPACE.has(ch)) {
      if (inWord) {
        words.push(current);
        current = '';
        inWord = false;
      }
      i += 1;
      continue;
    }

    inWord = true;

    if (ch === '\\') {
      if (i + 1 >= line.length) {
        throw new TypeError(`command line ends with a lone backslash: ${JSON.stringify(line)}`);
      }
      current += line[i + 1];
      i += 2;
      continue;
    }

    if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      if (end === -1) {
        throw new TypeError(`unterminated single quote at position ${i} in command line ${JSON.stringify(line)}`);
      }
      current += line.slice(i + 1, end);
      i = end + 1;
      continue;
    }

    if (ch === '"') {
      const start = i;
      i += 1;
      let closed = false;
      while (i < line.length) {
        const c = line[i] as string;
        if (c === '"') {
          closed = true;
          i += 1;
          break;
        }
        if (c === '\\' && i + 1 < line.length && (line[i + 1] === '"' || line[i + 1] === '\\')) {
          current += line[i + 1];
          i += 2;
          continue;
        }
        current += c;
        i += 1;
      }
      if (!closed) {
        throw new TypeError(`unterminated double quote at position ${start} in command line ${JSON.stringify(line)}`);
      }
      continue;
    }

    current += ch;
    i += 1;
  }

  if (inWord) words.push(current);
  if (words.length === 0) {
    throw new TypeError(`command line is empty: ${JSON.stringify(line)}`);
  }
  return words;
}
