/**
 * Spawning one stdio MCP server: argv only, never a shell, an env built from scratch,
 * its own process group (so the whole tree can be signalled), stdout/stdin piped and
 * unbuffered, stderr lines to the logger.
 */
import { execa, type ResultPromise } from 'execa';
import type { CommandSpec } from '../commands/types.js';
import { UpstreamFailedError } from '../errors.js';
import { LogThrottle, type Logger } from '../logging/logger.js';
import { StderrTail } from './stderrTail.js';

type Subprocess = ResultPromise<{
  stdin: 'pipe';
  stdout: 'pipe';
  stderr: 'pipe';
  buffer: false;
  reject: false;
}>;

export interface SpawnedChild {
  readonly subprocess: Subprocess;
  readonly pid: number;
  readonly stderr: StderrTail;
}

/**
 * Starts the command and resolves once the OS reports it running.
 * Rejects with UpstreamFailedError (e.g. ENOENT) without leaving anything behind.
 */
export async function spawnChild(spec: CommandSpec, env: Readonly<Record<string, string>>, logger: Logger): Promise<SpawnedChild> {
  const subprocess = execa(spec.command, [...spec.args], {
    cwd: spec.cwd,
    env: { ...env },
    extendEnv: false,
    shell: false,
    buffer: false,
    reject: false,
    detached: true,
    cleanup: false,
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    windowsHide: true,
  }) as Subprocess;

  try {
    await new Promise<void>((resolve, reject) => {
      subprocess.once('spawn', () => resolve());
      subprocess.once('error', reject);
    });
  } catch (error) {
    await subprocess.catch(() => undefined);
    const code = (error as NodeJS.ErrnoException).code ?? 'spawn error';
    logger.warn('spawn failed', { command: spec.key, code });
    throw new UpstreamFailedError(code, undefined);
  }

  const pid = subprocess.pid;
  if (pid === undefined) throw new UpstreamFailedError('no pid');
  const stderr = new StderrTail();
  const throttle = new LogThrottle(50, 10_000);
  stderr.onLine = (line) => {
    if (throttle.allow((n) => logger.warn('child stderr suppressed', { command: spec.key, pid, lines: n }))) {
      logger.info('child stderr', { command: spec.key, pid, line });
    }
  };
  subprocess.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  // Errors on the pipes (EPIPE after the child died) are reported through the exit path.
  subprocess.stdin.on('error', () => undefined);
  subprocess.stdout.on('error', () => undefined);
  subprocess.stderr.on('error', () => undefined);
  logger.debug('child spawned', { command: spec.key, pid });
  return { subprocess, pid, stderr };
}
