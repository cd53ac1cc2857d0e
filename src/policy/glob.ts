/**
 * Name globs: `*` any characters (including `/`), `?` exactly one; the rest literal.
 * Deny globs also match a name's normalised form (NFKC, case-folded, trimmed), so a
 * look-alike or re-cased name cannot slip past a deny.
 */
export interface Glob {
  readonly source: string;
  readonly exact: RegExp;
  readonly loose: RegExp;
}

function globBody(pattern: string): string {
  return Array.from(pattern)
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('');
}

/** `pattern` is what is matched when it differs from the `source` shown in rule labels. */
export function compileGlob(source: string, pattern = source): Glob {
  // The loose form normalises the pattern first, then escapes: a fullwidth `．` stays a literal.
  return { source, exact: new RegExp(`^${globBody(pattern)}$`, 'su'), loose: new RegExp(`^${globBody(normalizeName(pattern))}$`, 'isu') };
}

/** NFKC, without invisible format characters (zero-width, soft hyphen), trimmed, lower case. */
export function normalizeName(name: string): string {
  return name
    .normalize('NFKC')
    .replace(/\p{Cf}/gu, '')
    .trim()
    .toLowerCase();
}

export function matchesExact(globs: readonly Glob[] | undefined, name: string): Glob | undefined {
  return globs?.find((g) => g.exact.test(name));
}

export function matchesLoose(globs: readonly Glob[] | undefined, name: string): Glob | undefined {
  if (!globs) return undefined;
  const normal = normalizeName(name);
  return globs.find((g) => g.exact.test(name) || g.loose.test(normal));
}
