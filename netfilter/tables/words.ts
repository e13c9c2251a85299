/**
 * Words of an iptables-restore line, and strings printed back the way iptables-save prints them.
 *
 * iptables-restore splits on blanks; a word that starts with `"` runs to the next unescaped `"`,
 * and inside it a backslash takes the next character literally (`"a \"b\""` is `a "b"`). Single
 * quotes are ordinary characters. Where iptables-restore would go on with something odd (an
 * unterminated quote swallowing the rest of the line, text glued to a closing quote), this refuses.
 */
import { OptionError } from './errors.ts';

export function splitWords(text: string): string[] {
  const words: string[] = [];
  let i = 0;
  const end = text.length;
  while (i < end) {
    const c = text[i]!;
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '"') {
      let word = '';
      let j = i + 1;
      for (;;) {
        if (j >= end) throw new OptionError(text.slice(i), `unterminated quote in ${text.slice(i)}`);
        const d = text[j]!;
        if (d === '\\' && j + 1 < end) {
          word += text[j + 1];
          j += 2;
        } else if (d === '"') {
          break;
        } else {
          word += d;
          j++;
        }
      }
      if (j + 1 < end && text[j + 1] !== ' ' && text[j + 1] !== '\t') {
        const glued = text.slice(i, nextBlank(text, j + 1));
        throw new OptionError(glued, `text after a closing quote in ${glued}`);
      }
      words.push(word);
      i = j + 1;
      continue;
    }
    const stop = nextBlank(text, i);
    const word = text.slice(i, stop);
    if (word.includes('"')) throw new OptionError(word, `a quote must start a word: ${word}`);
    words.push(word);
    i = stop;
  }
  return words;
}

function nextBlank(text: string, from: number): number {
  let i = from;
  while (i < text.length && text[i] !== ' ' && text[i] !== '\t') i++;
  return i;
}

const NO_QUOTE = /^[A-Za-z0-9_-]+$/;

/**
 * xtables_save_string: a word of letters, digits, `_` and `-` as is, anything else (the empty
 * string too) in double quotes with `"`, `\` and `'` escaped by a backslash. Leading space included.
 */
export function saveString(value: string): string {
  if (NO_QUOTE.test(value)) return ` ${value}`;
  return ` "${value.replace(/["\\']/g, '\\$&')}"`;
}
