/** What the matchmaking module tells other modules. */
declare module '../../infra/events.js' {
  interface DomainEvents {
    /** A user was matched while none of their sockets was connected (the app in the background): they must come back to join `roomId`. */
    'match.found': { userId: string; roomId: string; partnerName: string };
  }
}

export {};
