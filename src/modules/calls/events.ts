import type { EndedBy } from './entities.js';

/** What the calls module tells other modules; published after the transaction commits. */
declare module '../../infra/events.js' {
  interface DomainEvents {
    /** A call ended (once, whoever ended it) and counts in both users' stats. */
    'call.ended': { callId: string; roomId: string; userIds: [string, string]; durationSeconds: number; endedBy: EndedBy };
  }
}
