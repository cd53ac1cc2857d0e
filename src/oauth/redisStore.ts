/**
 * The grant store in Redis, shared by every machine of a deployment (the connection is the
 * rate limiter's). Keys, under the deployment's prefix:
 * - `oauth:grant:<id>`: a hash `info` (the GrantRecord as JSON), `gen` (current refresh
 *   generation), `prev`/`prevGen`/`prevAt` (the answer of the generation just rotated, sealed),
 *   `used` (last use); it expires with the grant.
 * - `oauth:grants` and `oauth:client:<sha256 of client_id>`: sets of grant ids, for the admin's
 *   list and for revoking a client (ids whose hash has expired are dropped as they are read;
 *   a client's set lives as long as its longest-lived grant).
 * - `oauth:once:<name>`: single-use marks (`SET NX PX`).
 * A refresh rotation is one Lua script, so two machines never both rotate one generation.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { GrantRecord, GrantStore, RotateOutcome, RotateRequest } from './store.js';

const ROTATE = `
local gen = redis.call('HGET', KEYS[1], 'gen')
if not gen then return {'gone'} end
local presented = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
if tonumber(gen) == presented then
  redis.call('HSET', KEYS[1], 'gen', presented + 1, 'prev', ARGV[4], 'prevGen', presented, 'prevAt', now, 'used', now)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[5]) then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
  return {'rotated'}
end
local prevGen = redis.call('HGET', KEYS[1], 'prevGen')
local prevAt = redis.call('HGET', KEYS[1], 'prevAt')
if prevGen and tonumber(prevGen) == presented and now - tonumber(prevAt) <= tonumber(ARGV[3]) then
  return {'replay', redis.call('HGET', KEYS[1], 'prev')}
end
redis.call('DEL', KEYS[1])
return {'reuse'}
`;

export class RedisGrantStore implements GrantStore {
  readonly shared = true;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private grantKey(id: string): string {
    return `${this.prefix}:oauth:grant:${id}`;
  }

  private clientKey(clientId: string): string {
    return `${this.prefix}:oauth:client:${createHash('sha256').update(clientId).digest('hex')}`;
  }

  private get indexKey(): string {
    return `${this.prefix}:oauth:grants`;
  }

  async create(record: GrantRecord, ttlMs: number): Promise<void> {
    const key = this.grantKey(record.id);
    await this.redis
      .multi()
      .hset(key, 'info', JSON.stringify(record), 'gen', 0, 'used', record.lastUsedAt)
      .pexpire(key, ttlMs)
      .sadd(this.indexKey, record.id)
      .sadd(this.clientKey(record.clientId), record.id)
      .pexpire(this.clientKey(record.clientId), ttlMs)
      .exec();
  }

  async active(id: string): Promise<boolean> {
    return (await this.redis.exists(this.grantKey(id))) === 1;
  }

  async touch(id: string, at: number): Promise<void> {
    // Only an existing grant: HSET on a deleted one would bring a revoked grant back.
    await this.redis.eval(`if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'used', ARGV[1]) end return 0`, 1, this.grantKey(id), at);
  }

  async rotate(id: string, request: RotateRequest): Promise<RotateOutcome> {
    const reply = (await this.redis.eval(
      ROTATE,
      2,
      this.grantKey(id),
      this.clientKey(request.clientId),
      request.generation,
      request.at,
      request.graceMs,
      request.response,
      request.ttlMs,
    )) as [string, string?];
    if (reply[0] === 'rotated') return { kind: 'rotated' };
    if (reply[0] === 'replay') return { kind: 'replay', response: reply[1] ?? '' };
    if (reply[0] === 'reuse') return { kind: 'reuse' };
    return { kind: 'gone' };
  }

  async claimOnce(name: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(`${this.prefix}:oauth:once:${name}`, '1', 'PX', ttlMs, 'NX')) === 'OK';
  }

  async revoke(id: string): Promise<boolean> {
    return (await this.redis.del(this.grantKey(id))) === 1;
  }

  async revokeClient(clientId: string): Promise<string[]> {
    const setKey = this.clientKey(clientId);
    const ids = await this.redis.smembers(setKey);
    const revoked: string[] = [];
    for (const id of ids) if (await this.revoke(id)) revoked.push(id);
    await this.redis.del(setKey);
    return revoked;
  }

  async list(): Promise<GrantRecord[]> {
    const ids = await this.redis.smembers(this.indexKey);
    const records: GrantRecord[] = [];
    for (const id of ids) {
      const [info, used] = await this.redis.hmget(this.grantKey(id), 'info', 'used');
      if (info === null || info === undefined) {
        await this.redis.srem(this.indexKey, id);
        continue;
      }
      const record = JSON.parse(info) as GrantRecord;
      records.push({ ...record, lastUsedAt: Number(used ?? record.lastUsedAt) });
    }
    return records;
  }
}
