/** `covenant chain metagraph`: a subnet's metagraph and each uid's commitment (declared role and location only: not the committed read key pair, which is public on chain anyway). */
import { Effect, Either, Layer } from "effect"
import { Chain, describeChainError, identityFromSecret, layerLocalClient, layerSubtensor, readOwnerUrl } from "@covenant/chain"
import type { ChainShape, Commitment } from "@covenant/chain"
import { RuntimeError, type RuntimeFailure } from "../errors.ts"

export interface MetagraphSource {
  readonly endpoint?: string
  readonly netuid?: number
  /** A local chain's folder whose owner is running. */
  readonly local?: string
  readonly blocksPerWindow: number
}

const describeLocation = (c: Commitment): string => (c._tag === "S3" ? `s3 ${c.endpoint}/${c.bucket}` : `fs ${c.dir}`)

const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? []
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  ").trimEnd()).join("\n")
}

const print = (chain: ChainShape) =>
  Effect.gen(function* () {
    const head = yield* chain.currentBlock
    const metagraph = yield* chain.refreshMetagraph
    const commitments = yield* chain.commitments
    const byHotkey = new Map(commitments.map((c) => [c.hotkey, c]))
    const rows = metagraph.neurons.map((n) => {
      const c = byHotkey.get(n.hotkey)
      const location = c === undefined ? "-" : Either.isRight(c.commitment) ? describeLocation(c.commitment.right) : `unreadable (${c.raw.length} chars)`
      const role = c !== undefined && Either.isRight(c.commitment) ? c.commitment.right.role : "-"
      return [String(n.uid), n.hotkey, n.coldkey, n.stake.toFixed(3), n.validatorPermit ? "yes" : "no", n.incentive.toFixed(4), String(n.lastUpdate), role, location]
    })
    console.log(`block ${head.number} (window ${chain.windowOf(head.number)}, ${new Date(head.timestampMs).toISOString()}), ${metagraph.neurons.length} uids`)
    console.log(table([["uid", "hotkey", "coldkey", "stake", "permit", "incentive", "last update", "role", "commitment"], ...rows]))
  })

export const printMetagraph = (source: MetagraphSource): Effect.Effect<void, RuntimeFailure> =>
  Effect.gen(function* () {
    // Reading needs no key of one's own: a dev identity fills the service's slot (it signs nothing).
    const identity = yield* identityFromSecret("//covenant-metagraph-reader")
    const layer = source.local !== undefined
      ? Layer.unwrapEffect(Effect.map(readOwnerUrl(source.local), (url) => layerLocalClient(url, identity, { reconnectTimeoutMs: 3_000 })))
      : layerSubtensor({ endpoint: source.endpoint ?? "", netuid: source.netuid ?? 0, identity, blocksPerWindow: source.blocksPerWindow, connectTimeoutMs: 20_000 })
    yield* Effect.provide(Effect.flatMap(Chain, print), layer)
  }).pipe(
    // e.g. "SubnetNotFound: subnet 77 does not exist on ws://…", "ChainUnavailable: endpoint …, reason cannot connect to …"
    Effect.mapError((error) => new RuntimeError({ phase: "chain", reason: error._tag === "IdentityError" || error._tag === "LocalStoreError" ? `${error._tag}: ${JSON.stringify(error)}` : describeChainError(error) })),
  )
