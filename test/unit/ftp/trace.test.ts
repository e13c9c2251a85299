/**
 * `vrouter trace` of an FTP PORT through MASQUERADE-like SNAT: the helper's op shows what it
 * read, the rewrite and the expectation it created, and seqadj the length change the rewrite left
 * (PORT 10,0,1,2,... is three bytes shorter than PORT 203,0,113,1,...).
 */
import { describe, expect, it } from 'vitest';
import { Verdict } from '../../../router/core/hooks.ts';
import type { PacketTracer } from '../../../router/core/observer.ts';
import { ftpBench } from './bench.ts';
import { CLIENT, Session } from './session.ts';

describe('trace of an FTP PORT rewritten by NAT', () => {
  it('shows what the helper read, its rewrite, the expectation it created and the offset seqadj keeps', () => {
    const b = ftpBench({ snat: { inside: '10.0.1.0/24', to: '203.0.113.1' } });
    const s = new Session(b, { clientSeenAs: '203.0.113.1' }).login();
    const lines: string[] = [];
    const tracer: PacketTracer = { wants: (buf) => buf.length > 52, line: (_packet, text) => lines.push(text) };
    b.router.tracer = tracer;
    s.line(CLIENT, 'PORT 10,0,1,2,18,67\r\n');
    const helper = lines.find((line) => line.startsWith('POSTROUTING conntrack-helper'));
    expect(helper).toMatch(/; ftp read PORT 10\.0\.1\.2 port 4675, rewritten to "203,0,113,1,18,67" \(\+3 bytes\); expects 300 proto=6 src=203\.0\.113\.2 dst=203\.0\.113\.1 sport=0 dport=4675 .* helper=ftp$/);
    expect(lines.find((line) => line.startsWith('POSTROUTING seqadj'))).toMatch(/^POSTROUTING seqadj \(301\) ACCEPT: original \+3 after seq \d+ \(\+0 before\), reply \+0 after seq 0 \(\+0 before\)$/);
    expect(lines.at(-1)).toMatch(/^sent on wan0 to 203\.0\.113\.2: tcp src=203\.0\.113\.1 dst=203\.0\.113\.2 /);
  });

  it('counts a command cut short under the helper\'s own drop origin in stats', () => {
    const b = ftpBench({ snat: { inside: '10.0.1.0/24', to: '203.0.113.1' } });
    const s = new Session(b, { clientSeenAs: '203.0.113.1' }).login();
    expect(s.line(CLIENT, 'PORT 10,0,1,2,18').verdict).toBe(Verdict.DROP);
    expect(b.router.stats.hookDropsByOrigin()).toEqual({ 'ftp helper: partial command or reply': 1 });
  });
});
