/** `-m comment --comment TEXT` (xt_comment): always matches; the text is kept for iptables-save. */
import { OptionError } from '../errors.ts';
import { MatchResult, type Match, type MatchBuilder, type MatchType } from '../extension.ts';
import { saveString } from '../words.ts';

/** XT_MAX_COMMENT_LEN is 256 with the NUL: iptables cuts longer comments to 255 characters. */
const MAX_COMMENT = 255;

class CommentMatch implements Match {
  constructor(private readonly text: string) {}

  test(): MatchResult {
    return MatchResult.YES;
  }

  save(): string {
    return ` -m comment --comment${saveString(this.text)}`;
  }

  print(): string {
    return ` /* ${this.text} */`;
  }
}

class CommentBuilder implements MatchBuilder {
  private text: string | null = null;

  option(name: string, args: readonly string[]): void {
    this.text = args[0]!.slice(0, MAX_COMMENT);
  }

  build(): Match {
    if (this.text === null) throw new OptionError('comment', 'the comment match needs --comment');
    return new CommentMatch(this.text);
  }
}

export const commentMatch: MatchType = {
  name: 'comment',
  options: [{ names: ['comment'], args: 1, invertible: false }],
  create: () => new CommentBuilder(),
};
