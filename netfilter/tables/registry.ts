/**
 * Every match and target of netfilter's own that the parser knows, listed explicitly: a unit
 * exists for the parser only by being named here (or passed in TablesEnv.extraTargets by the code
 * that builds the router, as NAT's are), never by being imported.
 */
import type { MatchType, TargetType } from './extension.ts';
import { addrtypeMatch } from './matches/addrtype.ts';
import { commentMatch } from './matches/comment.ts';
import { connmarkMatch } from './matches/connmark.ts';
import { conntrackMatch, stateMatch } from './matches/conntrack.ts';
import { helperMatch } from './matches/helper.ts';
import { icmpMatch } from './matches/icmp.ts';
import { iprangeMatch } from './matches/iprange.ts';
import { lengthMatch } from './matches/length.ts';
import { limitMatch } from './matches/limit.ts';
import { markMatch } from './matches/mark.ts';
import { multiportMatch } from './matches/multiport.ts';
import { recentMatch } from './matches/recent.ts';
import { tcpMatch } from './matches/tcp.ts';
import { ttlMatch } from './matches/ttl.ts';
import { udpMatch } from './matches/udp.ts';
import { connmarkTarget } from './targets/connmark.ts';
import { ctTarget, notrackTarget } from './targets/ct.ts';
import { logTarget } from './targets/log.ts';
import { markTarget } from './targets/mark.ts';
import { nflogTarget } from './targets/nflog.ts';
import { rejectTarget } from './targets/reject.ts';
import { traceTarget } from './targets/trace.ts';
import { tcpmssTarget } from './targets/tcpmss.ts';

export const MATCH_TYPES: readonly MatchType[] = [
  tcpMatch,
  udpMatch,
  icmpMatch,
  multiportMatch,
  conntrackMatch,
  stateMatch,
  helperMatch,
  commentMatch,
  markMatch,
  connmarkMatch,
  limitMatch,
  iprangeMatch,
  addrtypeMatch,
  lengthMatch,
  ttlMatch,
  recentMatch,
];

export const TARGET_TYPES: readonly TargetType[] = [
  rejectTarget,
  logTarget,
  markTarget,
  ctTarget,
  notrackTarget,
  traceTarget,
  connmarkTarget,
  tcpmssTarget,
  nflogTarget,
];
