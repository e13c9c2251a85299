import { describe, expect, it } from 'vitest';
import { Conntrack } from '../../../netfilter/conntrack/conntrack-entry.ts';
import { genericTracker } from '../../../netfilter/conntrack/trackers/index.ts';
import { Tuple } from '../../../netfilter/conntrack/tuple.ts';
import { SourceMappings } from '../../../nat/source-mappings.ts';
import { IpProtocol } from '../../../router/wire/ipv4.ts';
import { ip } from '../../support/packets.ts';

const PUBLIC = ip('203.0.113.1');
const SERVER = ip('198.51.100.7');

/** A connection from src:srcPort to the server, mapped to the public address and `mappedPort`. */
function connection(src: number, srcPort: number, mappedPort: number, protocol: number = IpProtocol.UDP): Conntrack {
  return new Conntrack(genericTracker, new Tuple(src, SERVER, protocol, srcPort, 53), new Tuple(SERVER, PUBLIC, protocol, 53, mappedPort));
}

describe('SNAT source mappings (bysource)', () => {
  it('finds the latest connection of a source, told apart by address, protocol and port', () => {
    const mappings = new SourceMappings();
    const first = connection(ip('10.0.1.2'), 40000, 40000);
    const latest = connection(ip('10.0.1.2'), 40000, 1025);
    mappings.set(first);
    mappings.set(latest);
    // High addresses (above 2^31) and many sources: each finds its own, never a neighbour's.
    const others = Array.from({ length: 5000 }, (_, i) => connection(ip('192.168.0.0') + i, 40000 + (i % 3), 2000 + i));
    for (const other of others) mappings.set(other);
    mappings.set(connection(ip('10.0.1.2'), 40000, 9, IpProtocol.TCP));
    expect(mappings.find(ip('10.0.1.2'), IpProtocol.UDP, 40000)).toBe(latest);
    others.forEach((other, i) => expect(mappings.find(ip('192.168.0.0') + i, IpProtocol.UDP, 40000 + (i % 3))).toBe(other));
    expect(mappings.find(ip('10.0.1.2'), IpProtocol.UDP, 40001)).toBeNull();
  });

  it('forgets a source only when its latest connection goes', () => {
    const mappings = new SourceMappings();
    const first = connection(ip('10.0.1.2'), 40000, 40000);
    const latest = connection(ip('10.0.1.2'), 40000, 1025);
    mappings.set(first);
    mappings.set(latest);
    mappings.delete(first);
    expect(mappings.find(ip('10.0.1.2'), IpProtocol.UDP, 40000)).toBe(latest);
    mappings.delete(latest);
    expect(mappings.find(ip('10.0.1.2'), IpProtocol.UDP, 40000)).toBeNull();
  });
});
