/** The chain that keeps time, identities and weights, and the store that carries updates. */
import { Schema } from "effect"
import { Bool, NonEmptyString, NonNegativeInt, PositiveInt, stringWhere } from "./fields.ts"

const isUrl = (protocols: ReadonlyArray<string>) => (s: string): boolean => {
  try {
    return protocols.includes(new URL(s).protocol)
  } catch {
    return false
  }
}

const EnvVarName = stringWhere("an environment variable name ([A-Z_][A-Z0-9_]*)", (s) => /^[A-Z_][A-Z0-9_]*$/.test(s))

export const ChainSpec = Schema.Union(
  /** An in-process chain persisted under `path`, producing a block every `blockTimeMs`. */
  Schema.Struct({ kind: Schema.Literal("local"), path: NonEmptyString, blockTimeMs: PositiveInt }),
  /** A Subtensor node (Bittensor) and the subnet the run lives on. */
  Schema.Struct({
    kind: Schema.Literal("subtensor"),
    endpoint: stringWhere("a ws:// or wss:// URL", isUrl(["ws:", "wss:"])),
    netuid: NonNegativeInt,
  }),
).annotations({ identifier: "ChainSpec" })
export type ChainSpec = typeof ChainSpec.Type

export const TransportSpec = Schema.Union(
  /** A shared folder: every participant's bucket is a sub-folder. */
  Schema.Struct({ kind: Schema.Literal("filesystem"), dir: NonEmptyString }),
  /** An S3-compatible store; credentials are read from the named environment variables, never stored here. */
  Schema.Struct({
    kind: Schema.Literal("s3"),
    endpoint: stringWhere("an http:// or https:// URL", isUrl(["http:", "https:"])),
    region: NonEmptyString,
    bucket: stringWhere("a bucket name of 3 to 63 characters [a-z0-9.-]", (s) => /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(s)),
    forcePathStyle: Bool,
    credentials: Schema.Struct({ accessKeyIdEnv: EnvVarName, secretAccessKeyEnv: EnvVarName }),
  }),
).annotations({ identifier: "TransportSpec" })
export type TransportSpec = typeof TransportSpec.Type

export const InfrastructureSpec = Schema.Struct({ chain: ChainSpec, transport: TransportSpec }).annotations({
  identifier: "InfrastructureSpec",
})
export type InfrastructureSpec = typeof InfrastructureSpec.Type
