/** What the reports module tells other modules; published after the transaction commits. */
declare module '../../infra/events.js' {
  interface DomainEvents {
    /** A user reported another; `flagged` when this report put the reported user up for review. */
    'report.created': { reportId: string; reporterId: string; reportedId: string; reason: string; flagged: boolean };
  }
}

export {};
