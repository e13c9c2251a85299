/**
 * The iptables command's edits and their refusals. The steps below were run in this order with the
 * real iptables v1.8.9 (nf_tables) in a scratch network namespace loaded with BASE (iptables-restore
 * -c); each step keeps its exit status, what it printed on stderr (the version prefix and the
 * pointer to the help turned into vrouter's) and `iptables -S -v` after it, counters included.
 */
import { describe, expect, it } from 'vitest';
import { runIptables, type IptablesHost } from '../../../netfilter/tables/command.ts';
import { TableId } from '../../../netfilter/tables/tables.ts';
import { buildRouter } from '../../../router/stack/build-router.ts';
import { icmpPacket } from '../../support/packets.ts';
import { RouterBench, interfaceSpec } from '../../support/router-bench.ts';

const BASE = `*filter
:INPUT ACCEPT [1:2]
:FORWARD DROP [5:500]
:OUTPUT ACCEPT [0:0]
:zeta - [0:0]
:alpha - [0:0]
[7:700] -A FORWARD -j zeta
[8:800] -A FORWARD -s 1.1.1.1 -j ACCEPT
[9:900] -A zeta -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
`;

interface Step {
  argv: string[];
  status: number;
  stderr: string;
  after: string;
}

const STEPS: readonly Step[] = [
  {
    argv: ["-A", "FORWARD", "-s", "2.2.2.2,3.3.3.3", "-p", "tcp", "--dport", "22", "-j", "DROP"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A FORWARD -s 3.3.3.3/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-I", "FORWARD", "-i", "lan0", "-j", "ACCEPT"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N zeta\n-A FORWARD -i lan0 -c 0 0 -j ACCEPT\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A FORWARD -s 3.3.3.3/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-I", "FORWARD", "3", "-m", "comment", "--comment", "two words", "-j", "LOG"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N zeta\n-A FORWARD -i lan0 -c 0 0 -j ACCEPT\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -m comment --comment \"two words\" -c 0 0 -j LOG\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A FORWARD -s 3.3.3.3/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-I", "FORWARD", "9", "-j", "ACCEPT"],
    status: 1,
    stderr: "iptables: Index of insertion too big.\n",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N zeta\n-A FORWARD -i lan0 -c 0 0 -j ACCEPT\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -m comment --comment \"two words\" -c 0 0 -j LOG\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A FORWARD -s 3.3.3.3/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-I", "FORWARD", "0", "-j", "ACCEPT"],
    status: 2,
    stderr: "iptables: Invalid rule number `0'\nTry `vrouter iptables --help' for more information.\n",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N zeta\n-A FORWARD -i lan0 -c 0 0 -j ACCEPT\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -m comment --comment \"two words\" -c 0 0 -j LOG\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A FORWARD -s 3.3.3.3/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-D", "FORWARD", "-s", "3.3.3.3", "-p", "tcp", "--dport", "22", "-j", "DROP"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N zeta\n-A FORWARD -i lan0 -c 0 0 -j ACCEPT\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -m comment --comment \"two words\" -c 0 0 -j LOG\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-D", "FORWARD", "-s", "3.3.3.3", "-p", "tcp", "--dport", "22", "-j", "DROP"],
    status: 1,
    stderr: "iptables: Bad rule (does a matching rule exist in that chain?).\n",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N zeta\n-A FORWARD -i lan0 -c 0 0 -j ACCEPT\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -m comment --comment \"two words\" -c 0 0 -j LOG\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-D", "FORWARD", "-s", "2.2.2.2,9.9.9.9", "-p", "tcp", "--dport", "22", "-j", "DROP"],
    status: 1,
    stderr: "iptables: Bad rule (does a matching rule exist in that chain?).\n",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N zeta\n-A FORWARD -i lan0 -c 0 0 -j ACCEPT\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -m comment --comment \"two words\" -c 0 0 -j LOG\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-D", "FORWARD", "1"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -m comment --comment \"two words\" -c 0 0 -j LOG\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-D", "FORWARD", "99"],
    status: 1,
    stderr: "iptables: Index of deletion too big.\n",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -m comment --comment \"two words\" -c 0 0 -j LOG\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-R", "FORWARD", "2", "-s", "4.4.4.4", "-j", "ACCEPT"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-R", "FORWARD", "9", "-j", "ACCEPT"],
    status: 1,
    stderr: "iptables: Index of replacement too big.\n",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-R", "FORWARD", "1", "-s", "1.1.1.1,2.2.2.2"],
    status: 2,
    stderr: "iptables: Replacement rule does not specify a unique address\nTry `vrouter iptables --help' for more information.\n",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-A", "nope", "-j", "ACCEPT"],
    status: 1,
    stderr: "iptables: No chain/target/match by that name.\n",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-N", "beta"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N beta\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-N", "beta"],
    status: 1,
    stderr: "iptables: Chain already exists.\n",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N beta\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-N", "FORWARD"],
    status: 1,
    stderr: "iptables: Chain already exists.\n",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N beta\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-A", "beta", "-j", "zeta"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N beta\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A beta -c 0 0 -j zeta\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-A", "zeta", "-j", "beta"],
    status: 4,
    stderr: "iptables: RULE_APPEND failed (Too many links): rule in chain zeta\n",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N beta\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A beta -c 0 0 -j zeta\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-X", "zeta"],
    status: 4,
    stderr: "iptables: CHAIN_DEL failed (Device or resource busy): chain zeta\n",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N beta\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A beta -c 0 0 -j zeta\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-X", "beta"],
    status: 4,
    stderr: "iptables: CHAIN_DEL failed (Device or resource busy): chain beta\n",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N beta\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A beta -c 0 0 -j zeta\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-F", "beta"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N beta\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-X", "beta"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N alpha\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-E", "alpha", "omega"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N omega\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-A", "FORWARD", "-j", "omega"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N omega\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A FORWARD -c 0 0 -j omega\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-E", "omega", "zeta"],
    status: 1,
    stderr: "iptables: File exists.\n",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N omega\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A FORWARD -c 0 0 -j omega\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-E", "nope", "x"],
    status: 1,
    stderr: "iptables: No chain/target/match by that name.\n",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD DROP -c 5 500\n-P OUTPUT ACCEPT -c 0 0\n-N omega\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A FORWARD -c 0 0 -j omega\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-P", "FORWARD", "ACCEPT"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD ACCEPT -c 0 0\n-P OUTPUT ACCEPT -c 0 0\n-N omega\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A FORWARD -c 0 0 -j omega\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-P", "zeta", "DROP"],
    status: 1,
    stderr: "iptables: Bad built-in chain name.\n",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD ACCEPT -c 0 0\n-P OUTPUT ACCEPT -c 0 0\n-N omega\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A FORWARD -c 0 0 -j omega\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-P", "FORWARD", "REJECT"],
    status: 1,
    stderr: "iptables: Bad policy name. Run `dmesg' for more information.\n",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD ACCEPT -c 0 0\n-P OUTPUT ACCEPT -c 0 0\n-N omega\n-N zeta\n-A FORWARD -c 7 700 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A FORWARD -c 0 0 -j omega\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-Z", "FORWARD", "1"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD ACCEPT -c 0 0\n-P OUTPUT ACCEPT -c 0 0\n-N omega\n-N zeta\n-A FORWARD -c 0 0 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A FORWARD -c 0 0 -j omega\n-A zeta -c 9 900 -j RETURN\n",
  },
  {
    argv: ["-Z", "zeta"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD ACCEPT -c 0 0\n-P OUTPUT ACCEPT -c 0 0\n-N omega\n-N zeta\n-A FORWARD -c 0 0 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A FORWARD -c 0 0 -j omega\n-A zeta -c 0 0 -j RETURN\n",
  },
  {
    argv: ["-F", "nope"],
    status: 1,
    stderr: "iptables: No chain/target/match by that name.\n",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD ACCEPT -c 0 0\n-P OUTPUT ACCEPT -c 0 0\n-N omega\n-N zeta\n-A FORWARD -c 0 0 -j zeta\n-A FORWARD -s 4.4.4.4/32 -c 0 0 -j ACCEPT\n-A FORWARD -s 1.1.1.1/32 -c 8 800 -j ACCEPT\n-A FORWARD -s 2.2.2.2/32 -p tcp -m tcp --dport 22 -c 0 0 -j DROP\n-A FORWARD -c 0 0 -j omega\n-A zeta -c 0 0 -j RETURN\n",
  },
  {
    argv: ["-F", "FORWARD"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 1 2\n-P FORWARD ACCEPT -c 0 0\n-P OUTPUT ACCEPT -c 0 0\n-N omega\n-N zeta\n-A zeta -c 0 0 -j RETURN\n",
  },
  {
    argv: ["-Z"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 0 0\n-P FORWARD ACCEPT -c 0 0\n-P OUTPUT ACCEPT -c 0 0\n-N omega\n-N zeta\n-A zeta -c 0 0 -j RETURN\n",
  },
  {
    argv: ["-F"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 0 0\n-P FORWARD ACCEPT -c 0 0\n-P OUTPUT ACCEPT -c 0 0\n-N omega\n-N zeta\n",
  },
  {
    argv: ["-X"],
    status: 0,
    stderr: "",
    after: "-P INPUT ACCEPT -c 0 0\n-P FORWARD ACCEPT -c 0 0\n-P OUTPUT ACCEPT -c 0 0\n",
  },
  {
    argv: ["-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE"],
    status: 0,
    stderr: "",
    after: "-P PREROUTING ACCEPT -c 0 0\n-P INPUT ACCEPT -c 0 0\n-P OUTPUT ACCEPT -c 0 0\n-P POSTROUTING ACCEPT -c 0 0\n-A POSTROUTING -o wan0 -c 0 0 -j MASQUERADE\n",
  },
  {
    argv: ["-t", "nat", "-A", "PREROUTING", "-i", "wan0", "-p", "tcp", "--dport", "5001", "-j", "DNAT", "--to-destination", "10.0.2.2:5001"],
    status: 0,
    stderr: "",
    after: "-P PREROUTING ACCEPT -c 0 0\n-P INPUT ACCEPT -c 0 0\n-P OUTPUT ACCEPT -c 0 0\n-P POSTROUTING ACCEPT -c 0 0\n-A PREROUTING -i wan0 -p tcp -m tcp --dport 5001 -c 0 0 -j DNAT --to-destination 10.0.2.2:5001\n-A POSTROUTING -o wan0 -c 0 0 -j MASQUERADE\n",
  },
  {
    argv: ["-t", "nat", "-D", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE"],
    status: 0,
    stderr: "",
    after: "-P PREROUTING ACCEPT -c 0 0\n-P INPUT ACCEPT -c 0 0\n-P OUTPUT ACCEPT -c 0 0\n-P POSTROUTING ACCEPT -c 0 0\n-A PREROUTING -i wan0 -p tcp -m tcp --dport 5001 -c 0 0 -j DNAT --to-destination 10.0.2.2:5001\n",
  },
  // Our parser words this parameter problem its own way.
  {
    argv: ["-t", "nat", "-A", "POSTROUTING", "-j", "DROP"],
    status: 2,
    stderr: "iptables: the nat table is not intended for filtering: iptables inhibits DROP in it\nTry `vrouter iptables --help' for more information.\n",
    after: "-P PREROUTING ACCEPT -c 0 0\n-P INPUT ACCEPT -c 0 0\n-P OUTPUT ACCEPT -c 0 0\n-P POSTROUTING ACCEPT -c 0 0\n-A PREROUTING -i wan0 -p tcp -m tcp --dport 5001 -c 0 0 -j DNAT --to-destination 10.0.2.2:5001\n",
  },
];

const NO_NAMES = { serviceName: () => null, hostName: () => null };

/** A router with `rules` loaded as iptables-restore -c loads them. */
function routerWith(rules: string | null) {
  const built = buildRouter({ interfaces: [] });
  if (rules !== null) built.netfilter.loadRules(rules, 'test.rules', 0, { keepCounters: true });
  const host: IptablesHost = { rules: built.netfilter.rules, apply: (ruleset) => built.netfilter.applyRules(ruleset), names: NO_NAMES };
  return { built, run: (...argv: string[]) => runIptables(argv, host) };
}

describe('iptables edits, step by step as the real iptables did them', () => {
  const { run } = routerWith(BASE);
  it.each(STEPS)('iptables $argv', (step) => {
    const result = run(...step.argv);
    expect({ status: result.status, stdout: result.stdout, stderr: result.stderr }).toEqual({ status: step.status, stdout: '', stderr: step.stderr });
    const table = step.argv.includes('-t') ? step.argv[step.argv.indexOf('-t') + 1]! : 'filter';
    expect(run('-t', table, '-S', '-v').stdout).toBe(step.after);
  });
});

/** [argv, exit status, stderr]: the real iptables' refusals of the words themselves, from the same namespace. */
const USAGE: readonly (readonly [readonly string[], number, string])[] = [
  [[], 2, 'iptables: no command specified'],
  [['-A', 'FORWARD', '-L'], 2, 'iptables: Cannot use -L with -A'],
  [['-L', '-F'], 2, 'iptables: Cannot use -F with -L'],
  [['-S', '-n'], 2, "iptables: Illegal option `-n' with this command"],
  [['-A', 'FORWARD', '-n', '-j', 'ACCEPT'], 2, "iptables: Illegal option `-n' with this command"],
  [['-L', '-s', '1.1.1.1'], 2, "iptables: Illegal option `-s' with this command"],
  [['-D', 'FORWARD', '1', '-s', '1.1.1.1'], 2, "iptables: Illegal option `-s' with this command"],
  [['-F', 'FORWARD', 'x'], 2, "Bad argument `x'"],
  [['-L', '-n', 'FORWARD'], 2, "Bad argument `FORWARD'"],
  [['-X', 'a', 'b'], 2, "Bad argument `b'"],
  [['-N'], 2, 'iptables: option "-N" requires an argument'],
  [['-A'], 2, 'iptables: option "-A" requires an argument'],
  [['-P', 'FORWARD'], 2, 'iptables: -P requires a chain and a policy'],
  [['-E', 'x'], 2, 'iptables: -E requires old-chain-name and new-chain-name'],
  [['-I', 'FORWARD', 'x', '-j', 'ACCEPT'], 2, "iptables: Invalid rule number `x'"],
  [['-L', 'FORWARD', 'x'], 2, "iptables: Invalid rule number `x'"],
  [['-S', 'FORWARD', '0'], 2, "iptables: Invalid rule number `0'"],
  [['-D', 'FORWARD', '0'], 2, "iptables: Invalid rule number `0'"],
  [['-A', 'FORWARD', '--frob'], 2, 'iptables: unknown option "--frob"'],
  // iptables says "Invalid chain name `a b'"; our parser names what is wrong with it.
  [['-N', 'a b'], 2, 'iptables: invalid chain name "a b" (no blanks)'],
];

describe('iptables refuses bad words as iptables does, with exit status 2', () => {
  const { run } = routerWith(BASE);
  it.each(USAGE)('iptables %j', (argv, status, message) => {
    expect(run(...argv)).toEqual({ status, stdout: '', stderr: `${message}\nTry \`vrouter iptables --help' for more information.\n` });
  });

  it('refuses an unknown table with exit status 3, as iptables', () => {
    expect(run('-t', 'bogus', '-L')).toEqual({ status: 3, stdout: '', stderr: "iptables: table 'bogus' does not exist\nPerhaps iptables or your kernel needs to be upgraded.\n" });
  });
});

describe('iptables -L and -S through the command line', () => {
  const { run } = routerWith(BASE);

  it('reads -L [CHAIN [N]], bundled flags and long options as iptables does', () => {
    const listed = run('-L', 'FORWARD', '-n', '-v', '--line-numbers').stdout;
    expect(listed).toBe(
      'Chain FORWARD (policy DROP 5 packets, 500 bytes)\n' +
        'num   pkts bytes target     prot opt in     out     source               destination         \n' +
        '1        7   700 zeta       0    --  *      *       0.0.0.0/0            0.0.0.0/0           \n' +
        '2        8   800 ACCEPT     0    --  *      *       1.1.1.1              0.0.0.0/0           \n',
    );
    expect(run('-nvL', 'FORWARD', '--line-numbers').stdout).toBe(listed);
    expect(run('--list', 'FORWARD', '--numeric', '--verbose', '--line-numbers').stdout).toBe(listed);
    expect(run('-L', 'FORWARD', '2').stdout).toBe('ACCEPT     all  --  1.1.1.1              anywhere            \n');
    expect(run('-S', 'zeta').stdout).toBe('-N zeta\n-A zeta -j RETURN\n');
    expect(run('-t', 'mangle', '-L', 'POSTROUTING').stdout).toBe('Chain POSTROUTING (policy ACCEPT)\ntarget     prot opt source               destination         \n');
  });

  it('refuses to list a chain the table does not have (iptables-legacy\'s message: iptables-nft 1.8.9 calls it "incompatible")', () => {
    expect(run('-L', 'nope')).toEqual({ status: 1, stdout: '', stderr: 'iptables: No chain/target/match by that name.\n' });
    expect(run('-S', 'nope').status).toBe(1);
  });

  it('zeroes after listing with -L -Z, and says so with -v', () => {
    const { run: fresh } = routerWith(BASE);
    const listed = fresh('-L', 'FORWARD', '-Z', '-v', '-x');
    expect(listed.stdout).toContain('(policy DROP 5 packets, 500 bytes)');
    expect(listed.stdout.endsWith("Zeroing chain `FORWARD'\n")).toBe(true);
    expect(fresh('-S', 'FORWARD', '-v').stdout).toBe('-P FORWARD DROP -c 0 0\n-A FORWARD -c 0 0 -j zeta\n-A FORWARD -s 1.1.1.1/32 -c 0 0 -j ACCEPT\n');
  });
});

describe('iptables edits as vrouter does them', () => {
  it('changes nothing when it refuses an edit', () => {
    const { built, run } = routerWith(BASE);
    const before = built.netfilter.rules.table(TableId.FILTER);
    for (const argv of [['-D', 'FORWARD', '-s', '1.1.1.1,9.9.9.9', '-j', 'ACCEPT'], ['-A', 'zeta', '-j', 'zeta'], ['-A', 'FORWARD', '-p', 'tcp', '--dport', '99999'], ['-X', 'zeta']]) {
      expect(run(...argv).status).not.toBe(0);
      expect(built.netfilter.rules.table(TableId.FILTER)).toBe(before);
    }
  });

  it('refuses what iptables-legacy refuses where iptables-nft 1.8.9 goes wrong', () => {
    const { run } = routerWith(BASE);
    // nft renames the base chain (and recreates FORWARD empty); nft drops an empty base chain; nft zeroes nothing and says 0.
    expect(run('-E', 'FORWARD', 'x')).toEqual({ status: 1, stdout: '', stderr: 'iptables: No chain/target/match by that name.\n' });
    expect(run('-X', 'INPUT')).toEqual({ status: 1, stdout: '', stderr: "iptables: Invalid argument. Run `dmesg' for more information.\n" });
    expect(run('-Z', 'FORWARD', '9')).toEqual({ status: 1, stdout: '', stderr: 'iptables: Index of counter too big.\n' });
  });

  it('hooks in a table an edit creates, and starts tracking when its rule needs it', () => {
    const { built, run } = routerWith(null);
    expect(built.netfilter.tracking).toBe(false);
    expect(run('-t', 'raw', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '21', '-j', 'CT', '--helper', 'ftp').status).toBe(0);
    expect(built.netfilter.tracking).toBe(true);
    expect(run('-t', 'raw', '-S').stdout).toBe('-P PREROUTING ACCEPT\n-P OUTPUT ACCEPT\n-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp\n');
  });

  it('says which chains -F, -Z and -X work on with -v', () => {
    const { run } = routerWith(BASE);
    expect(run('-v', '-F').stdout).toBe("Flushing chain `INPUT'\nFlushing chain `FORWARD'\nFlushing chain `OUTPUT'\nFlushing chain `alpha'\nFlushing chain `zeta'\n");
    expect(run('-v', '-X', 'alpha').stdout).toBe("Deleting chain `alpha'\n");
  });
});

describe('an edit changes what the router does at once', () => {
  it('drops pings through FORWARD after -A ... -j DROP, counts them, and forwards them again after -D', () => {
    const bench = new RouterBench({ interfaces: [interfaceSpec('lan0', '10.0.1.1/24'), interfaceSpec('wan0', '203.0.113.1/24')] });
    const host: IptablesHost = { rules: bench.netfilter.rules, apply: (ruleset) => bench.netfilter.applyRules(ruleset), names: NO_NAMES };
    const run = (...argv: string[]) => runIptables(argv, host);
    /** Whether the echo request left by wan0. */
    const ping = (): boolean => bench.receive(icmpPacket({ src: '10.0.1.2', dst: '203.0.113.2' }, { type: 8, code: 0, rest: 0x10001 })).sent.some((sent) => sent.via === 'wan0');
    expect(ping()).toBe(true);
    expect(run('-A', 'FORWARD', '-i', 'lan0', '-p', 'icmp', '-j', 'DROP').status).toBe(0);
    expect(ping()).toBe(false);
    expect(ping()).toBe(false);
    expect(run('-L', 'FORWARD', '-v', '-x', '-n').stdout).toContain('       2       56 DROP       1    --  lan0   *       0.0.0.0/0            0.0.0.0/0           \n');
    expect(run('-D', 'FORWARD', '-i', 'lan0', '-p', 'icmp', '-j', 'DROP').status).toBe(0);
    expect(ping()).toBe(true);
    bench.close();
  });
});

describe('iptables -v echoes the rules it adds, replaces and deletes', () => {
  it('prints them as the real iptables -v did, one line per address, in the order the words make them', () => {
    const { run } = routerWith('*filter\n:c1 - [0:0]\nCOMMIT\n');
    // Each expected line is what iptables v1.8.9 (nf_tables) -v printed for the same command.
    expect(run('-v', '-I', 'FORWARD', '-s', '1.1.1.1,2.2.2.2', '-p', '47').stdout).toBe('  47 opt -- in * out *  1.1.1.1  -> 0.0.0.0/0  \n  47 opt -- in * out *  2.2.2.2  -> 0.0.0.0/0  \n');
    expect(run('-v', '-A', 'FORWARD', '-p', '200', '-g', 'c1').stdout).toBe('c1  200 opt -- in * out *  0.0.0.0/0  -> 0.0.0.0/0  [goto] \n');
    expect(run('-v', '-A', 'FORWARD', '-d', '10.0.0.0/8', '!', '-o', 'wan+', '-f', '-j', 'c1').stdout).toBe('c1  all opt -f in * out !wan+  0.0.0.0/0  -> 10.0.0.0/8  \n');
    expect(run('-v', '-D', 'FORWARD', '-s', '1.1.1.1,2.2.2.2', '-p', '47').stdout).toBe('  47 opt -- in * out *  1.1.1.1  -> 0.0.0.0/0  \n  47 opt -- in * out *  2.2.2.2  -> 0.0.0.0/0  \n');
    expect(run('-v', '-R', 'FORWARD', '1', '-p', 'udp', '--dport', '53', '-j', 'ACCEPT').stdout).toBe('ACCEPT  udp opt -- in * out *  0.0.0.0/0  -> 0.0.0.0/0   udp dpt:53\n');
    expect(run('-v', '-I', 'FORWARD', '2', '-s', '5.5.5.5,6.6.6.6').stdout).toBe('  all opt -- in * out *  5.5.5.5  -> 0.0.0.0/0  \n  all opt -- in * out *  6.6.6.6  -> 0.0.0.0/0  \n');
    expect(run('-v', '-A', 'FORWARD', '-s', '1.1.1.1', '-i', 'lan0', '-p', 'tcp', '--dport', '80', '-j', 'ACCEPT').stdout).toBe('ACCEPT  tcp opt -- in lan0 out *  1.1.1.1  -> 0.0.0.0/0   tcp dpt:80\n');
    expect(run('-v', '-I', 'FORWARD', '1', '!', '-s', '3.3.3.3', '-j', 'LOG').stdout).toBe('LOG  all opt -- in * out * !3.3.3.3  -> 0.0.0.0/0   LOG flags 0 level 4\n');
    expect(run('-v', '-D', 'FORWARD', '1').stdout).toBe('');
    expect(run('-S', 'FORWARD').stdout).toBe('-P FORWARD ACCEPT\n-A FORWARD -p udp -m udp --dport 53 -j ACCEPT\n-A FORWARD -s 6.6.6.6/32\n-A FORWARD -s 5.5.5.5/32\n-A FORWARD -d 10.0.0.0/8 ! -o wan+ -f -j c1\n-A FORWARD -s 1.1.1.1/32 -i lan0 -p tcp -m tcp --dport 80 -j ACCEPT\n');
  });
});
