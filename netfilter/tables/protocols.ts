/**
 * IP protocol names for `-p`, as iptables knows them: /etc/protocols (netbase's list, fixed here so
 * the output does not depend on the machine) plus iptables' own spellings (icmpv6, mh, all).
 * iptables-save prints a protocol by its /etc/protocols name, or as a number if it has none.
 */
import { OptionError } from './errors.ts';
import { parseCNumber } from './numbers.ts';

/** number, name, aliases: the netbase /etc/protocols entries with a number below 256. */
const ETC_PROTOCOLS: readonly (readonly [number, string, ...string[]])[] = [
  [0, 'ip', 'IP'],
  [1, 'icmp', 'ICMP'],
  [2, 'igmp', 'IGMP'],
  [3, 'ggp', 'GGP'],
  [4, 'ipencap', 'IP-ENCAP'],
  [5, 'st', 'ST'],
  [6, 'tcp', 'TCP'],
  [8, 'egp', 'EGP'],
  [9, 'igp', 'IGP'],
  [12, 'pup', 'PUP'],
  [17, 'udp', 'UDP'],
  [20, 'hmp', 'HMP'],
  [22, 'xns-idp', 'XNS-IDP'],
  [27, 'rdp', 'RDP'],
  [29, 'iso-tp4', 'ISO-TP4'],
  [33, 'dccp', 'DCCP'],
  [36, 'xtp', 'XTP'],
  [37, 'ddp', 'DDP'],
  [38, 'idpr-cmtp', 'IDPR-CMTP'],
  [41, 'ipv6', 'IPv6'],
  [43, 'ipv6-route', 'IPv6-Route'],
  [44, 'ipv6-frag', 'IPv6-Frag'],
  [45, 'idrp', 'IDRP'],
  [46, 'rsvp', 'RSVP'],
  [47, 'gre', 'GRE'],
  [50, 'esp', 'IPSEC-ESP'],
  [51, 'ah', 'IPSEC-AH'],
  [57, 'skip', 'SKIP'],
  [58, 'ipv6-icmp', 'IPv6-ICMP'],
  [59, 'ipv6-nonxt', 'IPv6-NoNxt'],
  [60, 'ipv6-opts', 'IPv6-Opts'],
  [73, 'rspf', 'RSPF', 'CPHB'],
  [81, 'vmtp', 'VMTP'],
  [88, 'eigrp', 'EIGRP'],
  [89, 'ospf', 'OSPFIGP'],
  [93, 'ax.25', 'AX.25'],
  [94, 'ipip', 'IPIP'],
  [97, 'etherip', 'ETHERIP'],
  [98, 'encap', 'ENCAP'],
  [103, 'pim', 'PIM'],
  [108, 'ipcomp', 'IPCOMP'],
  [112, 'vrrp', 'VRRP'],
  [115, 'l2tp', 'L2TP'],
  [124, 'isis', 'ISIS'],
  [132, 'sctp', 'SCTP'],
  [133, 'fc', 'FC'],
  [135, 'mobility-header', 'Mobility-Header'],
  [136, 'udplite', 'UDPLite'],
  [137, 'mpls-in-ip', 'MPLS-in-IP'],
  [138, 'manet'],
  [139, 'hip', 'HIP'],
  [140, 'shim6', 'Shim6'],
  [141, 'wesp', 'WESP'],
  [142, 'rohc', 'ROHC'],
  [143, 'ethernet', 'Ethernet'],
];

/** iptables' xtables_chain_protos names that /etc/protocols spells differently. */
const XTABLES_NAMES: readonly (readonly [string, number])[] = [
  ['all', 0],
  ['icmpv6', 58],
  ['mh', 135],
];

const BY_NAME = new Map<string, number>();
const NAME_OF: string[] = [];
for (const [number, name, ...aliases] of ETC_PROTOCOLS) {
  NAME_OF[number] = name;
  for (const spelling of [name, ...aliases]) BY_NAME.set(spelling.toLowerCase(), number);
}
for (const [name, number] of XTABLES_NAMES) BY_NAME.set(name, number);

/** A `-p` value: a number 0..255 or a name in any letter case. 0 (`all`, `ip`) means any protocol. */
export function parseProtocol(text: string): number {
  const number = parseCNumber(text, 255);
  if (number >= 0) return number;
  const named = BY_NAME.get(text.toLowerCase());
  if (named === undefined) throw new OptionError(text, `unknown protocol "${text}"`);
  return named;
}

export function protocolName(protocol: number): string {
  return NAME_OF[protocol] ?? String(protocol);
}
