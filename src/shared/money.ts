/** The ISO 4217 codes this runtime knows (upper case). */
export const CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));

/** Decimals of the currency's minor unit: 2 for USD, 0 for JPY, 3 for BHD. */
export function minorUnitDigits(currencyCode: string): number {
  return new Intl.NumberFormat('en-US', { style: 'currency', currency: currencyCode.toUpperCase() }).resolvedOptions().maximumFractionDigits ?? 0;
}

/** An amount in minor units, shown with the currency's own number of decimals (0 for JPY, 2 for USD, 3 for BHD). */
export function formatAmount(amountMinor: number, currencyCode: string): string {
  const currency = currencyCode.toUpperCase();
  if (!CURRENCIES.has(currency)) throw new RangeError(`Unknown ISO 4217 currency: ${currency}`);
  if (!Number.isSafeInteger(amountMinor)) throw new RangeError(`amountMinor must be an integer, not ${amountMinor}`);
  const format = new Intl.NumberFormat('en-US', { style: 'currency', currency });
  const digits = minorUnitDigits(currency);
  // A decimal string, so the amount is exact whatever its size.
  const units = Math.abs(amountMinor)
    .toString()
    .padStart(digits + 1, '0');
  const decimal = digits === 0 ? units : `${units.slice(0, -digits)}.${units.slice(-digits)}`;
  return format.format(`${amountMinor < 0 ? '-' : ''}${decimal}` as `${number}`);
}
