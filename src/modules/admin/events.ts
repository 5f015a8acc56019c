/** What the admin module tells other modules; published after the transaction commits. */
declare module '../../infra/events.js' {
  interface DomainEvents {
    /** The account is banned and these device sessions were revoked with it (deny them, end their calls). */
    'user.banned': { userId: string; actorId: string; reason: string; sessionIds: string[] };
    'user.unbanned': { userId: string; actorId: string };
    /** An admin decided on a report (the reporter may be told). */
    'report.resolved': { reportId: string; reporterId: string; reportedId: string; status: 'reviewed' | 'actioned' | 'dismissed'; actorId: string };
  }
}

export {};
