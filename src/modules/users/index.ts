// The users module's public door: other modules import from here, never from its other files.
export { AccountsService, type AccountSummary, type Credentials, type UserSearchFilter } from './accounts.js';
export { ProfilesService, type MeView, type ProfileCompletion, type PublicName } from './profiles.js';
