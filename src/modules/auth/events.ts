/** What the auth module tells other modules; published after the transaction commits. */
declare module '../../infra/events.js' {
  interface DomainEvents {
    'user.registered': { userId: string; email: string };
    /** The password was reset; every session of the account was revoked with it. */
    'password.changed': { userId: string };
    /** The account was deleted (personal fields cleared, sessions revoked). */
    'user.deleted': { userId: string };
  }
}

export {};
