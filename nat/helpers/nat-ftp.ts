/**
 * The FTP helper's NAT half (nf_nat_ftp.c): when the control connection is NATed, the address and
 * port a PORT / EPRT command or a 227 / 229 reply announces are rewritten to what the peer can
 * reach, and the expectation is registered for the rewritten port.
 *
 * - The address written is the other direction's destination: where this segment goes is where
 *   the data connection will come from, so it is the NAT address as the peer sees it.
 * - The announced port is kept if the expectation can take it, else ports are drawn at random
 *   from [port, 65534], as mainline's nf_nat_exp_find_port does, while the table answers BUSY.
 * - The expected connection follows the master's NAT (NatHooks.followMaster), back to the
 *   announced endpoint (`savedPort`).
 */
import type { Conntrack } from '../../netfilter/conntrack/conntrack-entry.ts';
import { Expectation } from '../../netfilter/conntrack/expectation.ts';
import { ExpectResult, type ExpectationTable } from '../../netfilter/conntrack/expectation-table.ts';
import { ctinfoDirection } from '../../netfilter/conntrack/status.ts';
import { FtpType, type FtpNatHook } from '../../netfilter/helpers/ftp.ts';
import { Verdict } from '../../router/core/hooks.ts';
import type { Packet } from '../../router/core/packet.ts';
import { RateLimitedLog } from '../../router/core/rate-limited-log.ts';
import { formatIpv4 } from '../../router/wire/ipv4.ts';
import type { NatHooks } from '../nat-hooks.ts';
import { mangleTcpPayload } from '../tcp-mangle.ts';

export interface FtpNatDeps {
  expectations: ExpectationTable;
  nat: NatHooks;
  /** [0, 1), for the port search; Math.random unless a test fixes it. */
  random?: () => number;
  log?: RateLimitedLog;
}

/** nf_nat_exp_find_port's limit on random draws after the announced port. */
const MAX_ATTEMPTS = 128;

/**
 * nf_nat_exp_find_port: registers `expectation` on `port` or, while the table answers BUSY, on up
 * to 128 ports drawn from [port, 65534]. Returns the port taken, 0 if none (as in the kernel, an
 * announced port 0 that registers also reads as 0).
 */
export function findExpectationPort(expectations: ExpectationTable, expectation: Expectation, port: number, random: () => number): number {
  const first = port;
  const range = 65535 - first;
  let attemptsLeft = Math.min(range, MAX_ATTEMPTS);
  for (;;) {
    expectation.tuple.dstPort = port;
    const result = expectations.add(expectation);
    if (result === ExpectResult.OK) return port;
    if (result !== ExpectResult.BUSY || --attemptsLeft < 0) return 0;
    port = first + Math.floor(random() * range);
  }
}

/** nf_nat_ftp_fmt_cmd: the argument text for the rewritten address and port. */
export function formatFtpArgument(type: FtpType, address: number, port: number): string {
  switch (type) {
    case FtpType.PORT:
    case FtpType.PASV:
      return `${formatIpv4(address).replaceAll('.', ',')},${port >>> 8},${port & 0xff}`;
    case FtpType.EPRT:
      return `|1|${formatIpv4(address)}|${port}|`;
    case FtpType.EPSV:
      return `|||${port}|`;
  }
}

/** The hook-drop origin when no port is free for the data connection (`vrouter stats`). */
const NO_FREE_PORT_DROP = 'ftp nat: no free port for the data connection';

export function createFtpNat(deps: FtpNatDeps): FtpNatHook {
  const { expectations, nat } = deps;
  const random = deps.random ?? Math.random;
  const log = deps.log ?? new RateLimitedLog();
  const followMaster = (child: Conntrack, expectation: Expectation): void => nat.followMaster(child, expectation);
  return {
    help(packet: Packet, entry: Conntrack, ctinfo: number, type: FtpType, matchOffset: number, matchLength: number, proposed: Expectation): Verdict {
      const direction = ctinfoDirection(ctinfo);
      const address = entry.tuples[direction ^ 1]!.dst;
      // The tracking half's expectation, now with the callback that makes the data connection
      // follow the master's NAT (a callback is fixed when an expectation is built).
      const expectation = new Expectation(entry, proposed.tuple, proposed.mask, proposed.expectClass, proposed.helper, proposed.flags, proposed.childHelper, followMaster);
      expectation.savedPort = proposed.tuple.dstPort;
      expectation.natDirection = (direction ^ 1) as 0 | 1;
      const port = findExpectationPort(expectations, expectation, expectation.savedPort, random);
      if (port === 0) {
        log.log(`nf_nat_${proposed.helper.name}`, 'dropping packet: all ports in use');
        packet.dropOrigin = NO_FREE_PORT_DROP;
        return Verdict.DROP;
      }
      const text = Buffer.from(formatFtpArgument(type, address, port), 'latin1');
      if (packet.traced) packet.traceNote = `${packet.traceNote ?? ''}, rewritten to "${text.toString('latin1')}" (${text.length - matchLength >= 0 ? '+' : ''}${text.length - matchLength} bytes)`;
      if (!mangleTcpPayload(packet, entry, ctinfo, matchOffset, matchLength, text)) {
        log.log(`nf_nat_${proposed.helper.name}`, 'dropping packet: cannot mangle packet');
        expectations.remove(expectation);
        return Verdict.DROP;
      }
      return Verdict.ACCEPT;
    },
  };
}
