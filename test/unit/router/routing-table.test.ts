import { describe, expect, it } from 'vitest';
import { parseIpv4Address } from '../../../router/core/addresses.ts';
import type { RouterInterface } from '../../../router/core/interfaces.ts';
import { RoutingTable } from '../../../router/path/routing-table.ts';

function link(name: string, index: number): RouterInterface {
  return { index, name, address: 0, prefixLength: 24, mtu: 1500, device: null, up: true };
}
const a = (text: string): number => parseIpv4Address(text);

describe('routing table', () => {
  const lan = link('lan0', 0);
  const wan = link('wan0', 1);
  const dmz = link('dmz0', 2);
  const table = new RoutingTable();
  table.add(a('0.0.0.0'), 0, wan);
  table.add(a('10.0.0.0'), 8, dmz);
  table.add(a('10.0.1.0'), 24, lan, 0, 'connected');
  table.add(a('10.0.1.128'), 25, dmz);
  table.add(a('10.0.1.77'), 32, wan);

  it.each([
    ['10.0.1.5', 'lan0'],
    ['10.0.1.200', 'dmz0'],
    ['10.0.1.77', 'wan0'],
    ['10.9.9.9', 'dmz0'],
    ['8.8.8.8', 'wan0'],
    ['255.255.255.254', 'wan0'],
  ])('longest prefix wins for %s', (destination, expected) => {
    expect(table.lookup(a(destination))?.outInterface.name).toBe(expected);
  });

  it('returns null without a matching route', () => {
    const small = new RoutingTable();
    small.add(a('10.0.1.9'), 24, lan);
    expect(small.lookup(a('10.0.2.1'))).toBeNull();
    expect(small.list()[0]!.network).toBe(a('10.0.1.0'));
  });

  it('keeps the first of two equal prefixes', () => {
    const table2 = new RoutingTable();
    table2.add(a('192.0.2.0'), 24, lan);
    table2.add(a('192.0.2.0'), 24, wan);
    expect(table2.lookup(a('192.0.2.9'))?.outInterface.name).toBe('lan0');
  });
});
