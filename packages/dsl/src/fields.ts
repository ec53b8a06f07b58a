/**
 * Field schemas whose failures read `expected <what>, got <value>`, so a decoding error
 * names the rule that was broken and the value that broke it.
 */
import { Schema } from "effect"

/** Renders an offending value the way it would be written in a spec. */
export const show = (value: unknown): string => {
  if (value === undefined) return "nothing"
  if (typeof value === "number" || typeof value === "bigint") return String(value)
  if (typeof value === "string") return JSON.stringify(value)
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

const gotMessage = (expected: string) => (issue: { readonly actual: unknown }) =>
  `expected ${expected}, got ${show(issue.actual)}`

const number = Schema.Number.annotations({ message: gotMessage("a number") })
const string = Schema.String.annotations({ message: gotMessage("a string") })

/** A number that satisfies `predicate`; `expected` completes "expected ...". */
export const numberWhere = (expected: string, predicate: (n: number) => boolean) =>
  number.pipe(Schema.filter(predicate, { message: gotMessage(expected) }))

/** A string that satisfies `predicate`. */
export const stringWhere = (expected: string, predicate: (s: string) => boolean) =>
  string.pipe(Schema.filter(predicate, { message: gotMessage(expected) }))

export const PositiveInt = numberWhere("a positive integer", (n) => Number.isSafeInteger(n) && n > 0)
export const NonNegativeInt = numberWhere("a non-negative integer", (n) => Number.isSafeInteger(n) && n >= 0)
export const Positive = numberWhere("a finite number > 0", (n) => Number.isFinite(n) && n > 0)
export const NonNegative = numberWhere("a finite number >= 0", (n) => Number.isFinite(n) && n >= 0)
/** A fraction in [0, 1]. */
export const UnitInterval = numberWhere("a number in [0, 1]", (n) => n >= 0 && n <= 1)
/** A decay or momentum coefficient: [0, 1). */
export const Decay = numberWhere("a number in [0, 1)", (n) => n >= 0 && n < 1)
export const NonEmptyString = stringWhere("a non-empty string", (s) => s.length > 0)
export const Bool = Schema.Boolean.annotations({ message: gotMessage("true or false") })

/** A string literal union whose failure lists the accepted values. */
export const oneOf = <const L extends readonly [string, ...Array<string>]>(...literals: L) =>
  Schema.Literal(...literals).annotations({
    // override: a multi-value Literal is a union, whose members would each report on their own.
    message: (issue) => ({ message: gotMessage(literals.map((l) => JSON.stringify(l)).join(" | "))(issue), override: true }),
  })

/** A path inside the spec, as the error formatter prints it: `a.b[2].c`. */
export const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>((acc, key) => {
    if (typeof key === "number") return `${acc}[${key}]`
    const name = typeof key === "symbol" ? key.toString() : key
    return acc === "" ? name : `${acc}.${name}`
  }, "")
