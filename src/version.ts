/**
 * The package's own name and version, read once from package.json (src/ and dist/ both sit
 * one level below it). The gateway introduces itself to children with them.
 */
import { createRequire } from 'node:module';

const pkg = createRequire(import.meta.url)('../package.json') as { name: string; version: string };

export const PACKAGE_NAME: string = pkg.name;
export const PACKAGE_VERSION: string = pkg.version;
