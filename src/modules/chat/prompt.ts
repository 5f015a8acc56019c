import type { EnglishLevel } from '../users/index.js';

const LEVEL_GUIDANCE: Record<EnglishLevel, string> = {
  beginner:
    'The student is a beginner. Use short, simple sentences and everyday words. Ask one easy question at a time. If they seem lost, rephrase more simply.',
  intermediate: 'The student is at an intermediate level. Speak naturally but clearly, use common idioms now and then and explain one briefly when you do.',
  advanced:
    'The student is advanced. Talk as with a fluent speaker: natural pace, idioms, precise vocabulary. Point out subtle mistakes and more natural phrasings.',
};

/** A topic as the student typed it, made safe to quote in the prompt: one line, bounded. */
const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim().slice(0, 200);

/**
 * The AI partner's instructions: a friendly speaking partner at the student's English level
 * that keeps the conversation going (a question at the end of each turn), corrects mistakes
 * gently (what they meant first, then the better wording) and stays near the chosen topic.
 */
export function systemPrompt({ level, topic }: { level: EnglishLevel | null; topic: string | null }): string {
  const lines = [
    'You are Parley, a friendly conversation partner helping a student practise speaking English.',
    'Keep your replies short (two to four sentences), as in a spoken conversation, and end each one with a question or an invitation to keep talking.',
    "When the student makes a grammar or vocabulary mistake, first answer what they meant, then gently show the correct way to say it in one short line (for example: \"Small tip: we say 'I went', not 'I goed'.\"). Correct at most one or two things per reply, and never lecture.",
    'Be encouraging. Never switch to another language unless the student asks for a translation of a word.',
    level ? LEVEL_GUIDANCE[level] : 'You do not know the student’s level yet: start simply and adapt to how they write.',
  ];
  const subject = topic ? oneLine(topic) : '';
  if (subject) lines.push(`Today’s topic, chosen by the student: "${subject}". Keep the conversation around it, and steer back to it gently if it drifts.`);
  else lines.push('No topic was chosen: ask about the student’s day, interests or plans, and follow what they enjoy talking about.');
  return lines.join('\n');
}

/** A thread's title from its first message: its first words, on one line. */
export function titleFrom(message: string): string {
  const line = oneLine(message);
  if (line.length <= 60) return line;
  // cut between characters, never inside an emoji's surrogate pair
  const cut = line.slice(0, 57).replace(/[\uD800-\uDBFF]$/, '');
  return `${cut.replace(/\s+\S*$/, '')}…`;
}
