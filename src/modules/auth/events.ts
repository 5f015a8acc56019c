/** What the auth module tells other modules; published after the transaction commits. */
declare module '../../infra/events.js' {
  interface DomainEvents {
    'user.registered': { userId: string; email: string };
    /** The password was reset (at `at`, ISO 8601); every session of the account was revoked with it. */
    'password.changed': { userId: string; at: string };
    /** A sign-in opened a session; `newDevice` when this account never signed in on that device before. */
    'user.signed-in': { userId: string; deviceId: string; platform: string; newDevice: boolean; ip: string; userAgent: string | null; at: string };
    /** Sessions ended by the user (logout, logout-all, revoking one): these devices, or all of them, are signed out. */
    'user.signed-out': { userId: string; deviceIds: string[] | 'all' };
    /** The account was deleted (personal fields cleared, sessions revoked). */
    'user.deleted': { userId: string };
  }
}

export {};
