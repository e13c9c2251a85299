/**
 * Splits a command line into words as a POSIX shell would, without running one: single quotes
 * keep everything, double quotes keep everything but `\"`, `\\`, `\$` and `` \` `` escapes, a
 * backslash outside quotes escapes the next character, and unquoted blanks separate words. There
 * is no expansion of any kind ($VAR, globs, ~): a scenario that wants a shell says `shell: true`.
 */
export class ArgvError extends Error {}

export function splitArgv(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new ArgvError(`unterminated single quote at character ${i + 1}`);
      word += line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '\\' && j + 1 < line.length && '"\\$`'.includes(line[j + 1]!)) j++;
        word += line[j];
      }
      if (j >= line.length) throw new ArgvError(`unterminated double quote at character ${i + 1}`);
      i = j;
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new ArgvError('a backslash ends the line');
      word += line[++i];
    } else {
      word += c;
    }
  }
  if (inWord) words.push(word);
  return words;
}
