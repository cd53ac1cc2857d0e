import type { Response } from 'express';

/** Headers that keep proxies (Fly's, nginx) from buffering or transforming an event stream. */
export function streamHeaders(res: Response): void {
  res.setHeader('X-Accel-Buffering', 'no');
  res.setHeader('Cache-Control', 'no-cache, no-transform');
}
