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

export function compileGlob(source: string): Glob {
  const body = source
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('');
  return { source, exact: new RegExp(`^${body}$`, 's'), loose: new RegExp(`^${normalizeName(body)}$`, 'is') };
}

export function normalizeName(name: string): string {
  return name.normalize('NFKC').trim().toLowerCase();
}

export function matchesExact(globs: readonly Glob[] | undefined, name: string): Glob | undefined {
  return globs?.find((g) => g.exact.test(name));
}

export function matchesLoose(globs: readonly Glob[] | undefined, name: string): Glob | undefined {
  if (!globs) return undefined;
  const normal = normalizeName(name);
  return globs.find((g) => g.exact.test(name) || g.loose.test(normal));
}
