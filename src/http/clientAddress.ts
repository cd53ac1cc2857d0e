/**
 * Who a request comes from. Limits count per principal (the shared secret is one client,
 * whatever address its holders use; a client token or grant is its own client), so they
 * can't be escaped by changing address. The address matters only before authentication
 * (the failed-login throttle) and in logs: it is the socket's peer, unless that peer is a
 * proxy the admin trusts (`--trusted-proxy`): `fly` takes Fly's `Fly-Client-IP`, CIDRs
 * take the nearest untrusted hop of `X-Forwarded-For` from a peer inside them. Without a
 * trusted proxy, forwarded headers are never read (a client can forge them).
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { Principal } from '../auth/bearer.js';

export type AddressOf = (req: IncomingMessage) => string;

/** `fly`, or CIDRs / single addresses (`10.0.0.0/8`, `192.0.2.7`, `fd00::/8`). */
export type TrustedProxies = readonly string[];

/** Strips the IPv4-mapped prefix so `::ffff:10.0.0.1` matches `10.0.0.0/8`. */
function plain(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** @throws {TypeError} naming an entry that is neither `fly` nor an address or CIDR. */
export function parseTrustedProxies(entries: TrustedProxies): { fly: boolean; list: BlockList | undefined } {
  let fly = false;
  let list: BlockList | undefined;
  for (const entry of entries) {
    if (entry === 'fly') {
      fly = true;
      continue;
    }
    const [address = '', bits] = entry.split('/');
    const family = isIP(address);
    const prefix = bits === undefined ? (family === 4 ? 32 : 128) : Number(bits);
    if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
      throw new TypeError(`trusted proxy "${entry}" is neither "fly" nor an IP address or CIDR such as 10.0.0.0/8`);
    }
    list ??= new BlockList();
    list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return { fly, list };
}

/** The address resolver for the trusted proxies given. */
export function addressResolver(entries: TrustedProxies): AddressOf {
  const { fly, list } = parseTrustedProxies(entries);
  const trusted = (address: string) => {
    const ip = plain(address);
    const family = isIP(ip);
    return list !== undefined && family !== 0 && list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  };
  return (req) => {
    const peer = plain(req.socket.remoteAddress ?? 'unknown');
    if (fly) {
      const header = req.headers['fly-client-ip'];
      if (typeof header === 'string' && isIP(header.trim()) !== 0) return plain(header.trim());
    }
    if (!list || !trusted(peer)) return peer;
    const forwarded = req.headersDistinct['x-forwarded-for'];
    if (!forwarded) return peer;
    // Each proxy appends the address it saw: the nearest untrusted hop is the client.
    const hops = forwarded.flatMap((value) => value.split(',')).map((hop) => hop.trim());
    for (let i = hops.length - 1; i >= 0; i -= 1) {
      const hop = hops[i]!;
      if (isIP(plain(hop)) === 0) return peer; // malformed: believe nothing beyond the peer
      if (!trusted(hop)) return plain(hop);
    }
    return plain(hops[0] ?? peer);
  };
}

/** Whom per-client limits count a principal against: its kind and id, never its address. */
export function clientKey(principal: Principal): string {
  return `${principal.kind}:${principal.clientId}`;
}
