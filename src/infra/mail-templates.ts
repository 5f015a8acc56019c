import { escapeHtml } from '../shared/html.js';
import { formatAmount } from '../shared/money.js';

/**
 * Parley's transactional e-mails: each template describes its content as blocks, and one layout
 * renders every template to plain text and to HTML. Templates never write markup, so every value
 * is escaped in the one place that writes it.
 */

export interface VerifyEmailVars {
  link: string;
  expiresInMinutes: number;
}

export interface ResetPasswordVars {
  link: string;
  expiresInMinutes: number;
}

export interface PasswordChangedVars {
  at: Date;
  /** IANA zone the time is shown in; UTC unless given. */
  timeZone?: string | undefined;
  /** Says that every device was signed out with the change. */
  signedOutEverywhere?: boolean | undefined;
  /** A link to the app, when there is one to give. */
  appUrl?: string | undefined;
}

export interface PaymentReceiptVars {
  description: string;
  /** In the currency's minor unit (cents for USD, yen for JPY). */
  amountMinor: number;
  /** ISO 4217 code, e.g. 'USD'. */
  currency: string;
  orderId: string;
  paidAt: Date;
  timeZone?: string | undefined;
}

export interface NewSignInVars {
  /** What signed in, e.g. 'Chrome on macOS' or the platform. */
  device: string;
  ip: string;
  at: Date;
  timeZone?: string | undefined;
}

export interface NotificationVars {
  title: string;
  body: string;
  actionUrl?: string | undefined;
}

/** Each template's variables, by template name. */
export interface MailTemplateVars {
  'verify-email': VerifyEmailVars;
  'reset-password': ResetPasswordVars;
  'password-changed': PasswordChangedVars;
  'payment-receipt': PaymentReceiptVars;
  'new-sign-in': NewSignInVars;
  notification: NotificationVars;
}

export type MailTemplateName = keyof MailTemplateVars;

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

type Block =
  { kind: 'paragraph'; text: string } | { kind: 'action'; label: string; url: string } | { kind: 'facts'; rows: Array<{ label: string; value: string }> };

interface MailContent {
  subject: string;
  heading: string;
  blocks: Block[];
}

const PRODUCT = 'Parley';
const FOOTER = `You received this e-mail because of your ${PRODUCT} account. Replies to it are not read.`;

/** A link a mail may carry: an absolute http(s) URL, normalized. Anything else (javascript:, data:, relative) throws. */
function safeUrl(link: string): string {
  let url: URL;
  try {
    url = new URL(link);
  } catch {
    throw new Error('A mail link must be an absolute http(s) URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`A mail link must be http(s), not ${url.protocol}`);
  return url.href;
}

function action(label: string, link: string): Block {
  return { kind: 'action', label, url: safeUrl(link) };
}

function paragraph(text: string): Block {
  return { kind: 'paragraph', text };
}

/** Day, month name, year, 24-hour time and zone: the same reading in every locale. */
function formatTime(at: Date, timeZone = 'UTC'): string {
  return new Intl.DateTimeFormat('en-GB', {
    day: 'numeric',
    month: 'long',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    timeZone,
    timeZoneName: 'short',
  }).format(at);
}

function formatDuration(minutes: number): string {
  if (!Number.isInteger(minutes) || minutes <= 0) throw new RangeError(`expiresInMinutes must be a positive integer, not ${minutes}`);
  const [count, unit] = minutes % 60 === 0 ? [minutes / 60, 'hour'] : [minutes, 'minute'];
  return `${count} ${unit}${count === 1 ? '' : 's'}`;
}

const TEMPLATES: { [N in MailTemplateName]: (vars: MailTemplateVars[N]) => MailContent } = {
  'verify-email': ({ link, expiresInMinutes }) => ({
    subject: `Confirm your e-mail for ${PRODUCT}`,
    heading: 'Confirm your e-mail address',
    blocks: [
      paragraph(`Welcome to ${PRODUCT}! Confirm that this address is yours to finish setting up your account.`),
      action('Confirm your e-mail address', link),
      paragraph(`The link is valid for ${formatDuration(expiresInMinutes)}. If you did not create a ${PRODUCT} account, ignore this e-mail.`),
    ],
  }),
  'reset-password': ({ link, expiresInMinutes }) => ({
    subject: `Reset your ${PRODUCT} password`,
    heading: 'Reset your password',
    blocks: [
      paragraph(`Someone asked to reset the password of your ${PRODUCT} account. If it was you, choose a new one.`),
      action('Choose a new password', link),
      paragraph(
        `The link is valid for ${formatDuration(expiresInMinutes)} and works once. If it was not you, ignore this e-mail: your password stays as it is.`,
      ),
    ],
  }),
  'password-changed': ({ at, timeZone, signedOutEverywhere, appUrl }) => ({
    subject: `Your ${PRODUCT} password was changed`,
    heading: 'Your password was changed',
    blocks: [
      paragraph(
        `The password of your ${PRODUCT} account was changed on ${formatTime(at, timeZone)}${signedOutEverywhere ? ', and every device was signed out' : ''}.`,
      ),
      paragraph(
        'If it was you, there is nothing more to do. If it was not you, reset your password at once and check the e-mail account this message reached.',
      ),
      ...(appUrl ? [action(`Open ${PRODUCT}`, appUrl)] : []),
    ],
  }),
  'payment-receipt': ({ description, amountMinor, currency, orderId, paidAt, timeZone }) => ({
    subject: `Your ${PRODUCT} receipt for order ${orderId}`,
    heading: 'Thank you for your payment',
    blocks: [
      paragraph(`We received your payment. Keep this e-mail as your receipt.`),
      {
        kind: 'facts',
        rows: [
          { label: 'Item', value: description },
          { label: 'Amount', value: formatAmount(amountMinor, currency) },
          { label: 'Order', value: orderId },
          { label: 'Paid on', value: formatTime(paidAt, timeZone) },
        ],
      },
    ],
  }),
  'new-sign-in': ({ device, ip, at, timeZone }) => ({
    subject: `New sign-in to your ${PRODUCT} account`,
    heading: 'New sign-in from a device we have not seen',
    blocks: [
      paragraph(`Your ${PRODUCT} account was just signed in to from a new device.`),
      {
        kind: 'facts',
        rows: [
          { label: 'Device', value: device },
          { label: 'IP address', value: ip },
          { label: 'Time', value: formatTime(at, timeZone) },
        ],
      },
      paragraph('If it was you, there is nothing to do. If it was not you, change your password at once: that signs every device out.'),
    ],
  }),
  notification: ({ title, body, actionUrl }) => ({
    subject: title,
    heading: title,
    blocks: [paragraph(body), ...(actionUrl ? [action(`Open in ${PRODUCT}`, actionUrl)] : [])],
  }),
};

export const MAIL_TEMPLATE_NAMES = Object.keys(TEMPLATES) as MailTemplateName[];

export function isMailTemplateName(name: string): name is MailTemplateName {
  return Object.hasOwn(TEMPLATES, name);
}

/** Escaped, with the value's line breaks kept. */
function htmlLines(value: string): string {
  return escapeHtml(value).replace(/\r?\n/g, '<br>');
}

const FONT = "font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif";
const TEXT_STYLE = `margin:0 0 16px;${FONT};font-size:16px;line-height:24px;color:#1f2933`;

function blockHtml(block: Block): string {
  switch (block.kind) {
    case 'paragraph':
      return `<p style="${TEXT_STYLE}">${htmlLines(block.text)}</p>`;
    case 'action': {
      const href = escapeHtml(block.url);
      return [
        '<table role="presentation" cellpadding="0" cellspacing="0" border="0" style="margin:8px 0 24px"><tr>',
        `<td align="center" bgcolor="#2f6fed" style="border-radius:6px">`,
        `<a href="${href}" target="_blank" style="display:inline-block;padding:12px 24px;${FONT};font-size:16px;font-weight:600;color:#ffffff;text-decoration:none;border-radius:6px">${escapeHtml(block.label)}</a>`,
        '</td></tr></table>',
        `<p style="margin:0 0 16px;${FONT};font-size:13px;line-height:20px;color:#52606d">If the button does not work, open this link: <a href="${href}" style="color:#2f6fed;word-break:break-all">${escapeHtml(block.url)}</a></p>`,
      ].join('');
    }
    case 'facts': {
      const rows = block.rows.map(
        ({ label, value }) =>
          `<tr><td style="padding:8px 16px 8px 0;${FONT};font-size:14px;color:#52606d;vertical-align:top;white-space:nowrap">${escapeHtml(label)}</td>` +
          `<td style="padding:8px 0;${FONT};font-size:14px;color:#1f2933;vertical-align:top">${htmlLines(value)}</td></tr>`,
      );
      return `<table role="presentation" cellpadding="0" cellspacing="0" border="0" width="100%" style="margin:0 0 16px;border-top:1px solid #e4e7eb;border-bottom:1px solid #e4e7eb">${rows.join('')}</table>`;
    }
  }
}

function blockText(block: Block): string {
  switch (block.kind) {
    case 'paragraph':
      return block.text;
    case 'action':
      return `${block.label}: ${block.url}`;
    case 'facts':
      return block.rows.map(({ label, value }) => `${label}: ${value}`).join('\n');
  }
}

/** The one layout: a centred 600-pixel table with inline styles, which mail clients render alike. */
function layoutHtml({ subject, heading, blocks }: MailContent): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">',
    `<title>${escapeHtml(subject)}</title></head>`,
    '<body style="margin:0;padding:0;background-color:#f3f4f6">',
    '<table role="presentation" cellpadding="0" cellspacing="0" border="0" width="100%" bgcolor="#f3f4f6"><tr><td align="center" style="padding:24px 12px">',
    '<table role="presentation" cellpadding="0" cellspacing="0" border="0" width="600" style="width:100%;max-width:600px">',
    `<tr><td style="padding:0 0 16px;${FONT};font-size:22px;font-weight:700;color:#2f6fed">${PRODUCT}</td></tr>`,
    '<tr><td bgcolor="#ffffff" style="padding:32px;border-radius:8px;border:1px solid #e4e7eb">',
    `<h1 style="margin:0 0 24px;${FONT};font-size:22px;line-height:30px;font-weight:700;color:#1f2933">${htmlLines(heading)}</h1>`,
    ...blocks.map(blockHtml),
    '</td></tr>',
    `<tr><td style="padding:16px 8px 0;${FONT};font-size:12px;line-height:18px;color:#7b8794;text-align:center">${escapeHtml(FOOTER)}</td></tr>`,
    '</table></td></tr></table></body></html>',
  ].join('\n');
}

function layoutText({ heading, blocks }: MailContent): string {
  return [heading, ...blocks.map(blockText), `-- \n${PRODUCT}: ${FOOTER}`].join('\n\n') + '\n';
}

/** A template's subject, plain-text and HTML parts. Throws on a link that is not http(s), an unknown currency or time zone. */
export function renderMail<N extends MailTemplateName>(name: N, vars: MailTemplateVars[N]): RenderedMail {
  const render: (vars: MailTemplateVars[N]) => MailContent = TEMPLATES[name];
  const content = render(vars);
  // a header holds one line: a value's line breaks and control characters must not reach it
  const subject = content.subject.replace(/[\s\p{Cc}]+/gu, ' ').trim();
  return { subject, text: layoutText(content), html: layoutHtml({ ...content, subject }) };
}
