/**
 * Which network addresses the authorization server may fetch a client metadata document
 * from: public ones only. Loopback, private (RFC 1918, IPv6 unique-local, which holds Fly's
 * private network fdaa::/16), link-local (cloud metadata services live there), CGNAT,
 * multicast, reserved and documentation ranges are refused, and so is every IPv4-mapped or
 * translated IPv6 form (it could hide any of those). `allowLoopback` (a test setting) opens
 * 127.0.0.0/8 and ::1 only.
 */
import { BlockList, isIP } from 'node:net';

const RANGES: readonly [string, number, 'ipv4' | 'ipv6', string][] = [
  ['0.0.0.0', 8, 'ipv4', 'a reserved address'],
  ['10.0.0.0', 8, 'ipv4', 'a private address'],
  ['100.64.0.0', 10, 'ipv4', 'a shared (CGNAT) address'],
  ['169.254.0.0', 16, 'ipv4', 'a link-local address'],
  ['172.16.0.0', 12, 'ipv4', 'a private address'],
  ['192.0.0.0', 24, 'ipv4', 'a reserved address'],
  ['192.0.2.0', 24, 'ipv4', 'a documentation address'],
  ['192.88.99.0', 24, 'ipv4', 'a reserved address'],
  ['192.168.0.0', 16, 'ipv4', 'a private address'],
  ['198.18.0.0', 15, 'ipv4', 'a benchmarking address'],
  ['198.51.100.0', 24, 'ipv4', 'a documentation address'],
  ['203.0.113.0', 24, 'ipv4', 'a documentation address'],
  ['224.0.0.0', 4, 'ipv4', 'a multicast address'],
  ['240.0.0.0', 4, 'ipv4', 'a reserved address'],
  ['::', 128, 'ipv6', 'an unspecified address'],
  ['::ffff:0:0', 96, 'ipv6', 'an IPv4-mapped address'],
  ['64:ff9b::', 96, 'ipv6', 'a translated (NAT64) address'],
  ['64:ff9b:1::', 48, 'ipv6', 'a translated (NAT64) address'],
  ['100::', 64, 'ipv6', 'a discard address'],
  ['2001::', 23, 'ipv6', 'a reserved address'],
  ['2001:db8::', 32, 'ipv6', 'a documentation address'],
  ['2002::', 16, 'ipv6', 'a 6to4 address'],
  ['fdaa::', 16, 'ipv6', 'a Fly.io private address'],
  ['fc00::', 7, 'ipv6', 'a private (unique-local) address'],
  ['fe80::', 10, 'ipv6', 'a link-local address'],
  ['fec0::', 10, 'ipv6', 'a site-local address'],
  ['ff00::', 8, 'ipv6', 'a multicast address'],
];

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

const lists = RANGES.map(([address, prefix, family, what]) => {
  const list = new BlockList();
  list.addSubnet(address, prefix, family);
  return { list, family, what };
});

/** Why `address` may not be fetched from, or undefined for a public address. */
export function addressProblem(address: string, { allowLoopback = false }: { readonly allowLoopback?: boolean } = {}): string | undefined {
  const plain = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const version = isIP(plain);
  if (version === 0) return 'not an IP address';
  const family = version === 4 ? 'ipv4' : 'ipv6';
  if (LOOPBACK.check(plain, family)) return allowLoopback ? undefined : 'a loopback address';
  for (const { list, family: rangeFamily, what } of lists) if (rangeFamily === family && list.check(plain, family)) return what;
  return undefined;
}
