import { AppError } from '../../shared/errors.js';

/**
 * Single-user mode (AUTHORIZED_USER_EMAIL, document 001): only that account may authenticate,
 * by any route. Off when no e-mail is set.
 */
export class SingleUserGate {
  private readonly email: string | null;

  constructor(authorizedEmail: string | null) {
    this.email = authorizedEmail?.trim().toLowerCase() ?? null;
  }

  get enabled(): boolean {
    return this.email !== null;
  }

  /** 403 not_authorized_user for any account but the authorized one. */
  check(email: string): void {
    if (this.email !== null && email.trim().toLowerCase() !== this.email) {
      throw new AppError('not_authorized_user', 'This server serves a single account, and this is not it');
    }
  }
}
