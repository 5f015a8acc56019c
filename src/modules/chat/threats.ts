/** The families of attack a chat message can look like. */
export type ThreatKind = 'xss' | 'sql_injection' | 'shell_injection' | 'path_traversal';

export interface ThreatPattern {
  /** Stable name, written to the activity log. */
  id: string;
  kind: ThreatKind;
  pattern: RegExp;
}

/**
 * What attack payloads look like, and ordinary English does not: a student's "I'd rather; or
 * not", "select the best answer" or "rock && roll" must pass, so a pattern needs the syntax
 * around a keyword (a tag, a quote before OR, a command after the chaining operator), never
 * the keyword alone. Every quantifier is bounded, so no message makes a pattern backtrack for
 * long. Messages are a chat partner's input, never run anywhere: this is for the security log.
 */
export const THREAT_PATTERNS: readonly ThreatPattern[] = [
  { id: 'script_tag', kind: 'xss', pattern: /<\s{0,5}\/?\s{0,5}script\b/i },
  { id: 'event_handler', kind: 'xss', pattern: /<[a-z][^>]{0,200}?\bon[a-z]{3,20}\s{0,5}=/i },
  // "javascript:alert(1)" but not "I love JavaScript: it's fun"
  {
    id: 'script_url',
    kind: 'xss',
    pattern: /\b(?:javascript|vbscript):[^\s]|(?:href|src|action)\s{0,5}=\s{0,5}['"]?\s{0,5}(?:javascript|vbscript)\s{0,5}:|\bdata:text\/html/i,
  },
  { id: 'dangerous_tag', kind: 'xss', pattern: /<\s{0,5}(?:iframe|object|embed|svg|math|base|meta)\b/i },
  { id: 'union_select', kind: 'sql_injection', pattern: /\bunion(?:\s{1,10}|\/\*.{0,50}?\*\/)(?:all\s{1,10})?select\b/i },
  // ' OR 1=1, " or ""=", ' and 'a'='a
  { id: 'quoted_tautology', kind: 'sql_injection', pattern: /['"]\s{0,10}(?:or|and)\s{1,10}['"]?\w{0,20}['"]?\s{0,5}=\s{0,5}['"]?\w{0,20}/i },
  // admin'--, x';--, admin'#, or a quote then a comment ending the message
  { id: 'quote_then_comment', kind: 'sql_injection', pattern: /'(?:;\s?)?(?:--|#)|'\s{1,3}--\s{0,10}$/ },
  {
    id: 'stacked_statement',
    kind: 'sql_injection',
    pattern:
      /;\s{0,10}(?:(?:drop|truncate|alter)\s{1,10}(?:table|database)\b|delete\s{1,10}from\s{1,10}\w{1,64}\s{0,10}(?:;|--|$|where\b)|insert\s{1,10}into\s{1,10}\w{1,64}\s{0,10}(?:\(|values\b|select\b)|update\s{1,10}\w{1,64}\s{1,10}set\s{1,10}\w{1,64}\s{0,5}=)/i,
  },
  { id: 'sql_delay', kind: 'sql_injection', pattern: /\b(?:sleep|pg_sleep|benchmark)\(\s{0,5}\d|\bwaitfor\s{1,10}delay\b/i },
  {
    id: 'command_substitution',
    kind: 'shell_injection',
    pattern: /\$\(\s{0,5}[a-z_/.]|`\s{0,5}(?:rm|curl|wget|nc|ncat|bash|sh|zsh|cat|id|whoami|uname|python3?|perl|chmod|echo)\b[^`]{0,200}`/i,
  },
  // "; rm -rf", "&& curl http://...", "| sh"; not "tea; curl up with a book" nor "rock && roll"
  {
    id: 'command_chaining',
    kind: 'shell_injection',
    pattern:
      /(?:;|&&|\|\|?)\s{0,10}(?:rm\s{1,10}-[a-z]{0,5}[rf]|(?:curl|wget)\s{1,10}(?:-|https?:|ftp:|\S{1,100}\.\S)|nc\s{1,10}-|ncat\s|(?:ba|z)?sh\s{1,10}-c\b|chmod\s{1,10}[0-7+]|cat\s{1,10}\/etc\/|\/bin\/(?:ba)?sh\b|python3?\s{1,10}-c\b|powershell\b)|\|\s{0,5}(?:ba|z)?sh\s{0,5}$/i,
  },
  // "../" at the start of a path; not "Wait.../what"
  { id: 'dot_dot_slash', kind: 'path_traversal', pattern: /(?:^|[\s/\\'"=])\.\.[/\\]/ },
  { id: 'encoded_traversal', kind: 'path_traversal', pattern: /%2e%2e|%252e|\.\.%2f|\.\.%5c|%c0%ae/i },
  { id: 'system_file', kind: 'path_traversal', pattern: /\/etc\/(?:passwd|shadow|hosts)\b|\bboot\.ini\b|\\windows\\system32\\/i },
];

export interface ThreatMatch {
  kinds: ThreatKind[];
  /** The ids of the patterns that matched. */
  patterns: string[];
}

/** The attack patterns a message matches, or null for a message that looks like one a person writes. */
export function scanForThreats(text: string): ThreatMatch | null {
  // full-width and other compatibility forms (＜script＞) read as their plain letters
  const normalized = text.normalize('NFKC');
  const matched = THREAT_PATTERNS.filter(({ pattern }) => pattern.test(normalized));
  if (!matched.length) return null;
  return { kinds: [...new Set(matched.map(({ kind }) => kind))], patterns: matched.map(({ id }) => id) };
}
