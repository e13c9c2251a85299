/**
 * `-j TRACE` (xt_TRACE, raw table only): marks the packet traced (skb->nf_trace). From then on
 * every rule it meets in any table is logged as the kernel logs it, `TRACE: table:chain:type:N`
 * and the LOG fields (see evaluate.ts), and `vrouter trace` shows its every hook op.
 */
import type { Packet } from '../../../router/core/packet.ts';
import { CONTINUE, type Target, type TargetType } from '../extension.ts';

const TRACE: Target = {
  name: 'TRACE',
  run(packet: Packet): number {
    packet.traced = true;
    return CONTINUE;
  },
  save: () => ' -j TRACE',
  /** libxt_TRACE prints nothing after the addresses. */
  print: () => '',
};

export const traceTarget: TargetType = {
  name: 'TRACE',
  tables: ['raw'],
  options: [],
  create: () => ({ option: () => undefined, build: () => TRACE }),
};
