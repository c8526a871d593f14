/**
 * Every validation message, in one place. Tests assert these texts exactly and scripts may
 * match on them, so change them only on purpose (and update docs/tenants.md).
 * A message never contains a secret: credential problems do not echo the value.
 */

/** `file:line` of another place, as cited in a message. */
export type Where = string;

export const msg = {
  // --- YAML and schema -------------------------------------------------------------------
  yamlSyntax: (reason: string) => `YAML syntax error: ${reason}`,
  required: (prop: string) => `missing required property "${prop}"`,
  unknownProperty: (prop: string) => `unknown property "${prop}"`,
  type: (expected: string) => `must be ${expected}`,
  enumeration: (allowed: readonly unknown[]) => `must be one of: ${allowed.map(String).join(', ')}`,
  minimum: (n: number) => `must be at least ${n}`,
  maximum: (n: number) => `must be at most ${n}`,
  exclusiveMinimum: (n: number) => `must be greater than ${n}`,
  minLength: (n: number) => (n === 1 ? 'must not be empty' : `must be at least ${n} characters long`),
  maxLength: (n: number) => `must be at most ${n} characters long`,
  minItems: (n: number) => `must list at least ${n} item${n === 1 ? '' : 's'}`,
  uniqueItems: (value: unknown) => `lists ${JSON.stringify(value)} twice`,
  pattern: (value: string) => `"${value}" does not have the expected format`,
  invalidId: (value: string) =>
    `invalid name "${value}": use lower-case letters, digits, "-" and "_", at most 63 characters, starting and ending with a letter or digit`,

  // --- numbers -----------------------------------------------------------------------------
  malformedE164: (value: string) => `malformed E.164 number "${value}": expected "+" and 1 to 15 digits, the first not 0`,
  malformedPrefix: (value: string) =>
    `malformed E.164 prefix "${value}": expected "+", 1 to 15 digits (the first not 0) and a final "*"`,
  rangeLengths: (value: string) => `DID range "${value}" must start and end with numbers of the same length`,
  rangeEmpty: (value: string) => `DID range "${value}" is empty: the first number is greater than the last`,
  didOverlap: (value: string, other: string, otherTenant: string, where: Where) =>
    `DID "${value}" overlaps "${other}" of tenant "${otherTenant}" (${where}): a number would map to two tenants`,

  // --- ring groups -------------------------------------------------------------------------
  ringGroupDid: (did: string, tenant: string) =>
    `ring group number "${did}" is not a DID of tenant "${tenant}": add it (or a range or prefix covering it) to the tenant's dids`,
  callerIdDefaultMissing: () => 'callerIdScreening "replace" needs teams.defaultCallerId: the number presented instead of one the tenant does not own',
  callerIdDefaultNotOwned: (n: string, tenant: string) => `defaultCallerId "${n}" is not a DID of tenant "${tenant}": carriers would be sent a number the tenant does not own`,
  ringGroupDuplicate: (did: string, where: Where) => `duplicate ring group for "${did}": already defined at ${where}`,
  ringGroupFallback: (fallback: string) => `fallback "${fallback}" is also a member of the ring group: it would ring twice`,

  // --- FQDNs -------------------------------------------------------------------------------
  fqdnCase: (fqdn: string) => `FQDN "${fqdn}" must be lower case`,
  fqdnOutside: (fqdn: string, base: string) => `FQDN "${fqdn}" is not under the carrier base domain "${base}"`,
  fqdnIsBase: (fqdn: string) =>
    `FQDN "${fqdn}" is the carrier base domain itself: a tenant needs its own label under it`,
  fqdnLabels: (fqdn: string, base: string, labels: number) =>
    `FQDN "${fqdn}" must be a single label under "${base}", found ${labels} labels`,
  fqdnLabelLength: (label: string, length: number) =>
    `FQDN label "${label}" is ${length} characters long: at most 48 are allowed`,
  fqdnLabelChars: (label: string) =>
    `FQDN label "${label}" may only contain a-z, 0-9 and "-", and must not start or end with "-"`,
  fqdnDuplicate: (fqdn: string, otherTenant: string, where: Where) =>
    `duplicate FQDN "${fqdn}": already used by tenant "${otherTenant}" (${where})`,
  baseDomain: (value: string) => `carrierBaseDomain "${value}" is not a valid lower-case domain name with at least two labels`,
  noSettings: () => 'no settings block: one file must define settings.carrierBaseDomain',
  settingsTwice: (where: Where) => `settings are already defined at ${where}: define them once`,

  // --- references and names ----------------------------------------------------------------
  unknownCarrier: (name: string) => `unknown carrier "${name}": no carrier with that name is defined`,
  duplicateTenant: (id: string, where: Where) => `duplicate tenant id "${id}": already defined at ${where}`,
  duplicateCarrier: (name: string, where: Where) => `duplicate carrier name "${name}": already defined at ${where}`,

  // --- addresses ---------------------------------------------------------------------------
  badAddress: (value: string) => `"${value}" is not an IP address or CIDR network`,
  cidrNotNetwork: (value: string, network: string) =>
    `CIDR "${value}" is not a network address: host bits are set (the network is "${network}")`,
  sourceDuplicate: (value: string, otherCarrier: string, where: Where) =>
    `source "${value}" is already allowed for carrier "${otherCarrier}" (${where}): a source address must identify one carrier`,

  // --- secrets and rules -------------------------------------------------------------------
  inlineCredential: () => 'credentials must not be written inline: use "env:VARIABLE" or "file:/path/to/secret"',
  badRegex: (value: string, reason: string) => `invalid regular expression "${value}": ${reason}`,
} as const;
