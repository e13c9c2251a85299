/**
 * Every request shape a client can send gets an error reply naming what is wrong, and the server
 * keeps answering: a request line is data from whoever reaches the socket (issue 12, item 1).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange, startTestControl, type TestControl } from './support.ts';

let control: TestControl;

beforeAll(async () => {
  control = await startTestControl();
});

afterAll(() => control.close());

const REFUSED: [string, RegExp][] = [
  ['null', /^a request is a JSON object \{"command": NAME, "args": \{\.\.\.\}\} \(got null\)$/],
  ['[]', /^a request is a JSON object .* \(got \[\]\)$/],
  ['42', /^a request is a JSON object .* \(got 42\)$/],
  ['"stats"', /^a request is a JSON object .* \(got "stats"\)$/],
  ['{', /^request is not JSON: /],
  ['{"args":{}}', /^request\.command: is required \(must be a string\)$/],
  ['{"command":5}', /^request\.command: must be a string \(got 5\)$/],
  ['{"command":null}', /^request\.command: must be a string \(got null\)$/],
  ['{"command":"nope"}', /^unknown command "nope" \(known: stats, interfaces, routes, conntrack-list, .*link\)$/],
  ['{"command":"__proto__"}', /^unknown command "__proto__"/],
  ['{"command":"stats","extra":1}', /^request\.extra: unknown argument \(known: command, args\) \(got 1\)$/],
  ['{"command":"stats","args":null}', /^args: must be an object \(got null\)$/],
  ['{"command":"stats","args":[1]}', /^args: must be an object \(got \[1\]\)$/],
  ['{"command":"stats","args":{"__proto__":1}}', /^args\.__proto__: unknown argument \(known: router\) \(got 1\)$/],
  ['{"command":"stats","args":{"router":7}}', /^args\.router: must be a string \(got 7\)$/],
  ['{"command":"stats","args":{"router":"r9"}}', /^no router "r9" in lab ctl \(routers: r1\)$/],
  ['{"command":"conntrack-list","args":{"filter":"x"}}', /^args\.filter: must be an object \(got "x"\)$/],
  ['{"command":"conntrack-list","args":{"filter":{"replySrc":1e400}}}', /^args\.filter\.replySrc: must be a whole number from 0 to 4294967295 \(got Infinity\)$/],
  ['{"command":"conntrack-list","args":{"filter":{"origSrc":{"address":1,"mask":-1}}}}', /^args\.filter\.origSrc\.mask: must be a whole number from 0 to 4294967295 \(got -1\)$/],
  ['{"command":"conntrack-list","args":{"filter":{"protocol":1e20}}}', /^args\.filter\.protocol: must be a whole number from 0 to 255 \(got 100000000000000000000\)$/],
  ['{"command":"conntrack-list","args":{"filter":{"origDstPort":80.5}}}', /^args\.filter\.origDstPort: must be a whole number from 0 to 65535 \(got 80\.5\)$/],
  ['{"command":"conntrack-list","args":{"filter":{"sport":80}}}', /^args\.filter\.sport: unknown argument \(known: protocol, origSrc, /],
  ['{"command":"conntrack-list","args":{"json":"yes"}}', /^args\.json: must be true or false \(got "yes"\)$/],
  ['{"command":"conntrack-events","args":{"events":["NEW","BOGUS"]}}', /^args\.events\[1\]: must be one of NEW, UPDATE, DESTROY \(got "BOGUS"\)$/],
  ['{"command":"conntrack-events","args":{"events":"NEW"}}', /^args\.events: must be a list of at most 3 \(got "NEW"\)$/],
  ['{"command":"iptables-restore","args":{}}', /^args\.text: is required \(must be a string\)$/],
  ['{"command":"iptables-restore","args":{"text":{"a":1}}}', /^args\.text: must be a string \(got \{"a":1\}\)$/],
  ['{"command":"iptables-save","args":{"table":"bogus"}}', /^Table `bogus' does not exist$/],
  ['{"command":"link","args":{"segment":"lan","settings":{"delay":"abc"}}}', /^args\.settings\.delay: must be a number from 0 to 3600000 \(got "abc"\)$/],
  ['{"command":"link","args":{"segment":"lan","settings":{"delay":1e308}}}', /^args\.settings\.delay: must be a number from 0 to 3600000 \(got 1e\+308\)$/],
  ['{"command":"link","args":{"segment":"lan","settings":{"__proto__":{"down":true}}}}', /^args\.settings\.__proto__: unknown argument/],
  ['{"command":"link","args":{"segment":"nowhere"}}', /^no segment "nowhere" in lab ctl \(segments: lan, wan\)$/],
  [`{"command":"stats","args":{"router":"${'x'.repeat(200)}"}}`, /^no router "x{200}" in lab ctl/],
];

describe('control requests', () => {
  it.each(REFUSED)('%s is refused with an error reply', async (line, message) => {
    const replies = await exchange(control.path, `${line}\n`);
    expect(replies).toHaveLength(1);
    expect(replies[0]!.ok).toBe(false);
    expect(replies[0]!.error).toMatch(message);
  });

  it('keeps answering after every refusal, and leaves the router as it was', async () => {
    for (const [line] of REFUSED) await exchange(control.path, `${line}\n`);
    const [stats] = await exchange(control.path, '{"command":"stats"}\n');
    expect(stats!.ok).toBe(true);
    const [link] = await exchange(control.path, '{"command":"lab"}\n');
    const segments = (link!.result as { segments: { name: string; impairment: Record<string, unknown> }[] }).segments;
    expect(segments.map((segment) => segment.impairment)).toEqual([expect.objectContaining({ delay: 0, down: false }), expect.objectContaining({ delay: 0, down: false })]);
  });

  it('takes the well-formed requests the tools send', async () => {
    const requests = [
      '{"command":"conntrack-list","args":{"filter":{"protocol":6,"origSrc":{"address":167772418,"mask":4294967295}},"json":true,"router":"r1"}}',
      '{"command":"conntrack-expect-list","args":{"filter":{},"json":false}}',
      '{"command":"conntrack-delete","args":{"filter":{"origDstPort":80}}}',
      '{"command":"conntrack-flush","args":{"expect":true}}',
      '{"command":"conntrack-count","args":{"expect":false}}',
      '{"command":"iptables-save","args":{"counters":true,"table":"nat"}}',
      '{"command":"iptables-restore","args":{"text":"*filter\\nCOMMIT\\n","origin":"test","counters":false}}',
      '{"command":"link","args":{"segment":"lan","settings":{"delay":20,"loss":1,"rate":50000000,"limit":100,"down":false}}}',
      '{"command":"interfaces"}',
      '{"command":"routes","args":{}}',
    ];
    for (const request of requests) {
      const replies = await exchange(control.path, `${request}\n`);
      expect(replies.map((reply) => reply.error ?? 'ok'), request).toEqual(['ok']);
    }
  });
});
