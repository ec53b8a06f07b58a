/**
 * The one place that knows how objects are named (the reference network's layout). Every key
 * carries the release version, so each release has its own namespace.
 */
import { Either } from "effect"
import { InvalidKey } from "./errors.ts"

export type ObjectKind = "gradient" | "debug" | "peers" | "start_window" | "aggregator" | "checkpoint" | "latest"

export type ParsedKey =
  | { readonly kind: "gradient"; readonly window: number; readonly uid: number; readonly version: string }
  | { readonly kind: "debug"; readonly window: number; readonly uid: number; readonly version: string }
  | { readonly kind: "peers"; readonly window: number; readonly version: string }
  | { readonly kind: "start_window"; readonly version: string }
  | { readonly kind: "aggregator"; readonly window: number; readonly version: string }
  | { readonly kind: "checkpoint"; readonly version: string; readonly window: number; readonly name: string }
  | { readonly kind: "latest"; readonly version: string }

const SAFE_CHARS = /^[A-Za-z0-9._+=\-/]+$/
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/
const NAME_SEGMENT = /^[A-Za-z0-9_+=-][A-Za-z0-9._+=-]*$/
const MAX_KEY_LENGTH = 1024

/**
 * A key is safe when it stays inside its bucket on every store: a filesystem store maps "/" to
 * directories, so "..", "." and empty segments are refused, as is anything outside a small
 * alphabet.
 */
export const validateKey = (key: string): Either.Either<string, InvalidKey> => {
  const invalid = (reason: string) => Either.left(new InvalidKey({ key, reason }))
  if (key.length === 0) return invalid("empty key")
  if (key.length > MAX_KEY_LENGTH) return invalid(`longer than ${MAX_KEY_LENGTH} characters`)
  if (!SAFE_CHARS.test(key)) return invalid("characters outside [A-Za-z0-9._+=-/]")
  for (const segment of key.split("/")) {
    if (segment === "") return invalid("empty path segment")
    if (segment === "." || segment === "..") return invalid("relative path segment")
  }
  return Either.right(key)
}

/** A key prefix for listing: the same alphabet; it may end in "/" but may not climb out. */
export const validatePrefix = (prefix: string): Either.Either<string, InvalidKey> => {
  if (prefix === "") return Either.right(prefix)
  const trimmed = prefix.endsWith("/") ? prefix.slice(0, -1) : prefix
  return Either.map(validateKey(trimmed), () => prefix)
}

/** S3 bucket naming rules (3-63 lower-case letters, digits, dots, hyphens). */
export const validateBucket = (bucket: string): Either.Either<string, InvalidKey> =>
  /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) && !bucket.includes("..")
    ? Either.right(bucket)
    : Either.left(new InvalidKey({ key: bucket, reason: "bucket names are 3-63 of [a-z0-9.-]" }))

const assertIndex = (what: string, n: number): number => {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} must be a non-negative integer, got ${n}`)
  return n
}
const assertVersion = (version: string): string => {
  if (!VERSION.test(version)) throw new RangeError(`version must match ${VERSION}, got ${JSON.stringify(version)}`)
  return version
}

// Builders throw RangeError on programmer error (a negative window, a version with "/"): these
// inputs come from our own code, not from the network; parsing is the boundary and is total.
export const gradientKey = (window: number, uid: number, version: string): string =>
  `gradient-${assertIndex("window", window)}-${assertIndex("uid", uid)}-v${assertVersion(version)}`
export const debugKey = (window: number, uid: number, version: string): string =>
  `debug-${assertIndex("window", window)}-${assertIndex("uid", uid)}-v${assertVersion(version)}`
export const peersKey = (firstEffectiveWindow: number, version: string): string =>
  `peers_${assertIndex("window", firstEffectiveWindow)}_v${assertVersion(version)}.json`
export const startWindowKey = (version: string): string => `start_window_v${assertVersion(version)}.json`
export const aggregatorKey = (window: number, version: string): string =>
  `aggregator-${assertIndex("window", window)}-v${assertVersion(version)}`
export const checkpointPrefix = (version: string, window: number): string =>
  `checkpoints/${assertVersion(version)}/${assertIndex("window", window)}/`
export const checkpointKey = (version: string, window: number, name: string): string => {
  if (!name.split("/").every((s) => NAME_SEGMENT.test(s))) throw new RangeError(`unsafe checkpoint file name ${name}`)
  return `${checkpointPrefix(version, window)}${name}`
}
/** The latest-checkpoint pointer, kept inside the version's checkpoint namespace. */
export const latestKey = (version: string): string => `checkpoints/${assertVersion(version)}/_LATEST.json`

/** Runs a builder on values from outside: a RangeError becomes a typed InvalidKey. */
export const tryKey = (build: () => string): Either.Either<string, InvalidKey> =>
  Either.try({
    try: build,
    catch: (error) => new InvalidKey({ key: "", reason: error instanceof Error ? error.message : String(error) }),
  })

/** Prefix under which all of one uid's objects of a kind live (for listing and pruning). */
export const kindPrefix = (kind: "gradient" | "debug"): string => `${kind}-`

const INDEX = "(0|[1-9][0-9]{0,15})"
const VER = "([A-Za-z0-9][A-Za-z0-9._+-]*)"
const patterns: ReadonlyArray<readonly [RegExp, (m: RegExpExecArray) => ParsedKey | undefined]> = [
  [new RegExp(`^gradient-${INDEX}-${INDEX}-v${VER}$`), (m) => ({ kind: "gradient", window: Number(m[1]), uid: Number(m[2]), version: m[3]! })],
  [new RegExp(`^debug-${INDEX}-${INDEX}-v${VER}$`), (m) => ({ kind: "debug", window: Number(m[1]), uid: Number(m[2]), version: m[3]! })],
  [new RegExp(`^peers_${INDEX}_v${VER}\\.json$`), (m) => ({ kind: "peers", window: Number(m[1]), version: m[2]! })],
  [new RegExp(`^start_window_v${VER}\\.json$`), (m) => ({ kind: "start_window", version: m[1]! })],
  [new RegExp(`^aggregator-${INDEX}-v${VER}$`), (m) => ({ kind: "aggregator", window: Number(m[1]), version: m[2]! })],
  [new RegExp(`^checkpoints/${VER}/_LATEST\\.json$`), (m) => ({ kind: "latest", version: m[1]! })],
  [
    new RegExp(`^checkpoints/${VER}/${INDEX}/(.+)$`),
    (m) => (m[3]!.split("/").every((s) => NAME_SEGMENT.test(s)) ? { kind: "checkpoint", version: m[1]!, window: Number(m[2]), name: m[3]! } : undefined),
  ],
]

/** Parses a key of the layout; anything else (foreign objects, temp files) is an InvalidKey. */
export const parseKey = (key: string): Either.Either<ParsedKey, InvalidKey> => {
  for (const [pattern, build] of patterns) {
    const match = pattern.exec(key)
    if (match === null) continue
    const parsed = build(match)
    if (parsed !== undefined && ("window" in parsed ? Number.isSafeInteger(parsed.window) : true) && ("uid" in parsed ? Number.isSafeInteger(parsed.uid) : true)) {
      return Either.right(parsed)
    }
  }
  return Either.left(new InvalidKey({ key, reason: "not a key of the covenant layout" }))
}

/** Builds the key of a parsed description (inverse of parseKey). */
export const buildKey = (parsed: ParsedKey): string => {
  switch (parsed.kind) {
    case "gradient":
      return gradientKey(parsed.window, parsed.uid, parsed.version)
    case "debug":
      return debugKey(parsed.window, parsed.uid, parsed.version)
    case "peers":
      return peersKey(parsed.window, parsed.version)
    case "start_window":
      return startWindowKey(parsed.version)
    case "aggregator":
      return aggregatorKey(parsed.window, parsed.version)
    case "checkpoint":
      return checkpointKey(parsed.version, parsed.window, parsed.name)
    case "latest":
      return latestKey(parsed.version)
  }
}
