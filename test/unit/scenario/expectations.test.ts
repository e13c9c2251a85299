import { describe, expect, it } from 'vitest';
import { lastLines, unmet, type CommandResult } from '../../../router/deploy/scenario/expectations.ts';

const result = (exit: number | null, stdout = '', stderr = '', extra: Partial<CommandResult> = {}): CommandResult => ({ exit, stdout, stderr, timedOut: false, ...extra });

describe('step expectations', () => {
  it('checks the exit status, exactly or as "anything but"', () => {
    expect(unmet({ exit: 0 }, result(0))).toBeNull();
    expect(unmet({ exit: 0 }, result(7))).toBe('expected exit 0, got 7');
    expect(unmet({ exitNot: 0 }, result(67))).toBeNull();
    expect(unmet({ exitNot: 0 }, result(0))).toBe('expected an exit other than 0, got 0');
  });

  it('compares stdout and stderr exactly after trimming', () => {
    expect(unmet({ stdout: 'hello through nat' }, result(0, 'hello through nat\n'))).toBeNull();
    expect(unmet({ stdout: 'hello' }, result(0, 'hello world\n'))).toBe('expected stdout "hello", got "hello world"');
    expect(unmet({ stderr: 'boom' }, result(1, '', '  boom \n'))).toBeNull();
  });

  it('searches with a regular expression', () => {
    expect(unmet({ stdoutMatch: /dport=2[01] / }, result(0, '300 proto=6 src=1 dst=2 sport=0 dport=20 mask...'))).toBeNull();
    expect(unmet({ stdoutMatch: /dport=2[01] / }, result(0, 'nothing'))).toBe('expected stdout to match /dport=2[01] /, got "nothing"');
    expect(unmet({ stderrMatch: /^500 / }, result(0, '', 'x'))).toBe('expected stderr to match /^500 /, got "x"');
  });

  it('fails a timeout and a command that could not start, whatever is expected', () => {
    expect(unmet({}, result(null, '', '', { timedOut: true }))).toBe('timed out');
    expect(unmet({}, result(null, '', '', { error: 'spawn nope ENOENT' }))).toBe('could not run: spawn nope ENOENT');
  });

  it('keeps the last lines of the output for a report', () => {
    expect(lastLines('1\n2\n3\n4\n5\n6\n7\n', 3)).toEqual(['5', '6', '7']);
    expect(lastLines('')).toEqual([]);
  });
});
