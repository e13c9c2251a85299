import { afterEach, describe, expect, it } from 'vitest';
import { readU16 } from '../../../router/wire/bytes.ts';
import { ipv4Dst, ipv4Src } from '../../../router/wire/ipv4.ts';
import { TcpFlag, tcpChecksumValid } from '../../../router/wire/tcp.ts';
import { ip, tcpPacket } from '../../support/packets.ts';
import { RouterBench, interfaceSpec } from '../../support/router-bench.ts';
import { loaded, refused, savedRules, section } from './support.ts';

let bench: RouterBench;
afterEach(() => bench?.close());

const MSS_AT = 20 + 20 + 2;
const mssOption = (mss: number): number[] => [2, 4, mss >> 8, mss & 0xff];
/** A segment from the LAN with these TCP options (MSS first, then SACK permitted and window scale). */
const segment = (options: number[], flags: number = TcpFlag.SYN): Buffer =>
  tcpPacket({ src: '10.0.1.2', dst: '198.51.100.7' }, { srcPort: 40000, dstPort: 443, seq: 1000, ack: 0, flags, window: 64240, options: Uint8Array.from(options) });
const syn = (mss: number): Buffer => segment([...mssOption(mss), 4, 2, 1, 3, 3, 7]);

function router(rule: string, wanMtu = 1500): RouterBench {
  return new RouterBench({
    interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24', wanMtu)],
    routes: [{ to: 0, prefixLength: 0, via: ip('203.0.113.2'), dev: 'wan0' }],
    rules: { text: section('mangle', `-A FORWARD ${rule}`), origin: 'test.rules', firstLine: 0 },
  });
}

/** The segment as it left on wan0, with its TCP checksum checked. */
function forwarded(buf: Buffer): Buffer {
  const { sent } = bench.receive(buf);
  expect(sent.map((s) => s.via)).toEqual(['wan0']);
  const out = sent[0]!.buf;
  expect(tcpChecksumValid(out, 20, out.length - 20, ipv4Src(out, 0), ipv4Dst(out, 0))).toBe(true);
  return out;
}

describe('-j TCPMSS on a router built by buildRouter', () => {
  it('--set-mss lowers the MSS of a SYN, with the TCP checksum updated incrementally, and changes nothing else', () => {
    bench = router('-p tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1400');
    const out = forwarded(syn(1460));
    expect(readU16(out, MSS_AT)).toBe(1400);
    const expected = syn(1460);
    expected[8]! -= 1; // the TTL
    expected.writeUInt16BE(1400, MSS_AT);
    for (const at of [10, 11, 36, 37]) expected[at] = out[at]!; // the IP and TCP checksums
    expect(out).toEqual(expected);
  });

  it('never raises an MSS: one at or below the value is left alone', () => {
    bench = router('-p tcp --syn -j TCPMSS --set-mss 1400');
    expect(readU16(forwarded(syn(1400)), MSS_AT)).toBe(1400);
    expect(readU16(forwarded(syn(536)), MSS_AT)).toBe(536);
  });

  it('--clamp-mss-to-pmtu lowers it to the output interface MTU less 40', () => {
    bench = router('-p tcp --syn -j TCPMSS --clamp-mss-to-pmtu', 1400);
    expect(readU16(forwarded(syn(1460)), MSS_AT)).toBe(1360);
    expect(readU16(forwarded(syn(1300)), MSS_AT)).toBe(1300);
  });

  it('finds the MSS after other options, and adds none to a SYN without one (as nft maxseg, which iptables-nft loads)', () => {
    bench = router('-p tcp --syn -j TCPMSS --set-mss 1000');
    const late = forwarded(segment([1, 1, 4, 2, ...mssOption(1460)]));
    expect(readU16(late, 20 + 20 + 4 + 2)).toBe(1000);
    const none = segment([4, 2, 1, 1]);
    expect(forwarded(none).subarray(20 + 12)).toEqual(none.subarray(20 + 12));
  });

  it('leaves malformed options and a non-SYN alone when the rule picks SYNs', () => {
    bench = router('-p tcp --syn -j TCPMSS --set-mss 1000');
    const malformed = segment([1, 5, 0, ...mssOption(1460)]);
    expect(readU16(forwarded(malformed), 20 + 20 + 5)).toBe(1460);
    const ack = segment(mssOption(1460), TcpFlag.ACK);
    expect(readU16(forwarded(ack), MSS_AT)).toBe(1460);
  });
});

describe('-j TCPMSS: parse and save as iptables 1.8.9 (nf_tables) does', () => {
  // Each row loaded with iptables-restore in a scratch namespace and read back with iptables-save.
  it.each([
    ['FORWARD', '-p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu', '-p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu'],
    ['FORWARD', '-p tcp --syn -j TCPMSS --set-mss 1400', '-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j TCPMSS --set-mss 1400'],
    ['FORWARD', '-p tcp -j TCPMSS --set-mss 1400', '-p tcp -j TCPMSS --set-mss 1400'],
    ['FORWARD', '-p tcp --tcp-flags SYN SYN -j TCPMSS --set-mss 65515', '-p tcp -m tcp --tcp-flags SYN SYN -j TCPMSS --set-mss 65515'],
    ['FORWARD', '-p tcp --syn -j TCPMSS --set-mss 5 --clamp-mss-to-pmtu', '-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j TCPMSS --clamp-mss-to-pmtu'],
    ['FORWARD', '-p tcp --syn -j TCPMSS --clamp-mss-to-pmtu --set-mss 5', '-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j TCPMSS --set-mss 5'],
    ['PREROUTING', '-p tcp --syn -j TCPMSS --set-mss 1000', '-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j TCPMSS --set-mss 1000'],
    ['OUTPUT', '-p tcp --syn -j TCPMSS --clamp-mss-to-pmtu', '-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j TCPMSS --clamp-mss-to-pmtu'],
    ['POSTROUTING', '-p tcp --syn -j TCPMSS --clamp-mss-to-pmtu', '-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j TCPMSS --clamp-mss-to-pmtu'],
  ])('in %s, %s saves as %s', (chain, rule, saved) => {
    expect(savedRules(loaded(section('mangle', `-A ${chain} ${rule}`)).tables)).toEqual([`-A ${chain} ${saved}`]);
  });

  it.each([
    ['FORWARD', '-j TCPMSS --set-mss 1400', 'TCPMSS needs "-p tcp" (not inverted)'],
    ['FORWARD', '! -p tcp -j TCPMSS --set-mss 1', 'TCPMSS needs "-p tcp" (not inverted)'],
    ['FORWARD', '-p tcp -j TCPMSS --set-mss 65516', 'TCPMSS: bad value "65516" for option "--set-mss", or out of range (0-65515)'],
    ['FORWARD', '-p tcp -j TCPMSS', 'TCPMSS target: At least one parameter is required'],
    ['PREROUTING', '-p tcp --syn -j TCPMSS --clamp-mss-to-pmtu', 'TCPMSS --clamp-mss-to-pmtu is only valid in FORWARD, OUTPUT and POSTROUTING'],
    ['INPUT', '-p tcp --syn -j TCPMSS --clamp-mss-to-pmtu', 'TCPMSS --clamp-mss-to-pmtu is only valid in FORWARD, OUTPUT and POSTROUTING'],
  ])('in %s, refuses %s as iptables and the kernel do', (chain, rule, reason) => {
    expect(refused(section('mangle', `-A ${chain} ${rule}`)).message).toContain(`test.rules:7: ${reason}`);
  });
});
