import { fileURLToPath } from 'node:url';

/** Absolute path of test/fixtures/<name>, e.g. fixturePath('env-server.mjs'). */
export function fixturePath(name: string): string {
  return fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
}
