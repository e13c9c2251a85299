import { describe, expect, it } from 'vitest';
import { ArgvError, splitArgv } from '../../../router/deploy/scenario/argv.ts';

describe('splitting a command line as a shell would, without a shell', () => {
  const cases: [string, string[]][] = [
    ['curl -s --ftp-port - ftp://203.0.113.10/pub/hello.txt', ['curl', '-s', '--ftp-port', '-', 'ftp://203.0.113.10/pub/hello.txt']],
    ['  a   b\tc  ', ['a', 'b', 'c']],
    [`echo 'it''s' "a \\"b\\" \\$x" c\\ d`, ['echo', 'its', 'a "b" $x', 'c d']],
    [`printf '%s\\n' "$HOME"`, ['printf', '%s\\n', '$HOME']],
    ['x "" y', ['x', '', 'y']],
    ['a"b"\'c\'d', ['abcd']],
    ['', []],
  ];
  for (const [line, words] of cases) it(`splits ${JSON.stringify(line)}`, () => expect(splitArgv(line)).toEqual(words));

  it('refuses unterminated quotes and a trailing backslash, saying where', () => {
    expect(() => splitArgv("echo 'oops")).toThrow(new ArgvError('unterminated single quote at character 6'));
    expect(() => splitArgv('echo "oops')).toThrow(new ArgvError('unterminated double quote at character 6'));
    expect(() => splitArgv('echo \\')).toThrow(ArgvError);
  });
});
