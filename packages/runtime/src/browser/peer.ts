/**
 * A peer in a browser tab: the same `runPeer` loop as a node process, over layers a page can
 * build: the engine on the page's `navigator.gpu`, the S3 transport straight to the run's store
 * (signed in the page; the store answers the page's origin by the buckets' CORS rules), the chain
 * (the local chain's client over the page origin's `/chain/`, see serve.ts for why, or a subtensor
 * node over WebSocket, as the CLI's `--chain ws://...` connects), the run's shards from
 * the store like a node's (an `s3://` corpus) or over HTTP from the page server (a local folder),
 * and no disk (the tab starts from the leader's checkpoint and replays, as any new node does).
 * Nothing here touches Node's APIs.
 */
import { Effect, Layer, Schema } from "effect"
import type { Scope } from "effect"
import { Chain, identityFromSecret, layerLocalClient, layerSubtensor, measureBlockTimeMs } from "@covenant/chain"
import { RunSpec } from "@covenant/dsl"
import { EngineWebGpuFromGpu } from "@covenant/gpu-webgpu"
import { layerS3, makeS3Transport } from "@covenant/transport"
import type { S3TransportConfig } from "@covenant/transport"
import { EngineFailure, type RuntimeFailure, inPhase } from "../errors.ts"
import { httpObjects } from "../data/http-objects.ts"
import { openObjectShardSet } from "../data/object-shards.ts"
import { transportObjects } from "../data/objects.ts"
import { s3Commitment } from "../node/credentials.ts"
import type { S3Keys } from "../node/credentials.ts"
import { runAddress } from "../node/network.ts"
import type { NodeEvent } from "../node/node.ts"
import { runPeer } from "../node/peer.ts"
import type { StopRule } from "../node/stop.ts"
import { runTimingFor } from "../timing.ts"

const Keys = Schema.Struct({ accessKeyId: Schema.String, secretAccessKey: Schema.String })

/**
 * Where the tab reads the run's shards: the page server's folder over HTTP (`path`, on the page's
 * origin), or a corpus in object storage (`s3://bucket/prefix`), read with ranged GETs as a node
 * reads it; `keys` when the page server may hand them to every visitor, else the page's read keys.
 */
export const PageData = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("http"), path: Schema.String }),
  Schema.Struct({ kind: Schema.Literal("s3"), endpoint: Schema.String, region: Schema.String, bucket: Schema.String, prefix: Schema.String, keys: Schema.optional(Keys) }),
)
export type PageData = typeof PageData.Type

/**
 * The run's chain as the page reaches it: the local chain through the page server's `/chain/`, or
 * a subtensor node's WebSocket and the subnet (the tab's hotkey registered there with btcli first:
 * a page holds no coldkey).
 */
export const PageChain = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("local") }),
  Schema.Struct({ kind: Schema.Literal("subtensor"), endpoint: Schema.String, netuid: Schema.NonNegativeInt }),
)
export type PageChain = typeof PageChain.Type

/** What the page server tells a page about its run (GET /run.json). */
export const PageRun = Schema.Struct({
  /** The run spec, encoded. */
  spec: Schema.encodedSchema(RunSpec),
  /** The store everyone's buckets are in: its real endpoint (committed on chain) and region. */
  store: Schema.Struct({ endpoint: Schema.String, region: Schema.String }),
  /** Defaults the page may fill its form with (a local run's test keys); absent on a public run. */
  keys: Schema.optional(Schema.Struct({ write: Keys, read: Keys })),
  /** The run's shards. */
  data: PageData,
  chain: Schema.optionalWith(PageChain, { default: () => ({ kind: "local" as const }) }),
  /** The page server makes the tab's bucket with a CORS rule for the page (`POST /bucket?name=`): a local run. */
  localBuckets: Schema.Boolean,
})
export type PageRun = typeof PageRun.Type

export interface BrowserPeerOptions {
  readonly gpu: GPU
  readonly spec: RunSpec
  /** A display name; the tab's bucket is covenant-<name>. */
  readonly name: string
  /** The hotkey's secret (a mnemonic or 0x seed kept by the page). */
  readonly secret: string
  /** The local chain's RPC base URL (the page's `${origin}/chain`), or a subtensor node and subnet. */
  readonly chain: { readonly kind: "local"; readonly url: string } | Extract<PageChain, { kind: "subtensor" }>
  /** The run's shards: an absolute URL of the served folder, or the corpus in object storage. */
  readonly data: { readonly kind: "http"; readonly url: string } | Extract<PageData, { kind: "s3" }>
  readonly store: { readonly endpoint: string; readonly region: string }
  readonly write: S3Keys
  readonly read: S3Keys
  readonly events: (e: NodeEvent) => void
  /** This hotkey's weight, read from the chain once a window: the largest share any validator gives it (null: no weights yet). */
  readonly weight?: (share: number | null) => void
  readonly stop?: StopRule
}

/** The largest share of its weights any validator gives `uid` (weights normalised to sum 1); null when none set any. */
const weightShare = Effect.gen(function* () {
  const chain = yield* Chain
  const uid = yield* chain.uid
  const rows = yield* chain.weights
  if (uid === undefined || rows.length === 0) return null
  return Math.max(...rows.map((w) => {
    const total = w.weights.reduce((s, [, v]) => s + v, 0)
    return total === 0 ? 0 : (w.weights.find(([u]) => u === uid)?.[1] ?? 0) / total
  }))
})

/** Runs one peer until its stop rule (or forever); interrupt it to leave (the run sees a missed window). */
export const runBrowserPeer = (o: BrowserPeerOptions): Effect.Effect<void, RuntimeFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const identity = yield* Effect.mapError(identityFromSecret(o.secret), inPhase("identity"))
    const s3: S3TransportConfig = {
      endpoint: o.store.endpoint,
      region: o.store.region,
      forcePathStyle: true,
      accessKeyId: o.write.accessKeyId,
      secretAccessKey: o.write.secretAccessKey,
    }
    const bucket = `covenant-${o.name}`
    const commitment = yield* Effect.mapError(s3Commitment(o.store, bucket, o.read, o.write), inPhase("credentials"))
    const data = o.data
    // An s3:// corpus: its own client (endpoint and read keys), no disk cache in a tab.
    const objects = data.kind === "http"
      ? httpObjects(data.url)
      : transportObjects(
        yield* makeS3Transport({ endpoint: data.endpoint, region: data.region, forcePathStyle: true, ...(data.keys ?? o.read) }),
        { bucket: data.bucket },
        data.prefix,
      )
    const shards = yield* Effect.mapError(openObjectShardSet(objects), inPhase("data"))
    const spec = o.spec
    // The local chain's client over the page origin's proxy (long-polling HTTP), or subtensor over WebSocket.
    const chainLayer = o.chain.kind === "local"
      ? Layer.mapError(layerLocalClient(o.chain.url, identity), inPhase("chain"))
      : Layer.mapError(layerSubtensor({ endpoint: o.chain.endpoint, netuid: o.chain.netuid, identity, blocksPerWindow: spec.participation.blocksPerWindow, connectTimeoutMs: 30_000 }), inPhase("chain"))
    const engine = Layer.mapError(EngineWebGpuFromGpu(o.gpu), (cause) => new EngineFailure({ phase: "engine", cause }))
    const onWeight = o.weight
    const peer = Effect.gen(function* () {
      // Windows are blocks, upload windows ms: a run that cannot fit this chain's measured blocks is refused, as by the CLI.
      if (o.chain.kind === "subtensor") yield* runTimingFor(spec, yield* Effect.mapError(Effect.flatMap(Chain, measureBlockTimeMs), inPhase("chain")), false)
      if (onWeight !== undefined) {
        // Weights change at most once a window: read them that often (a subnet's weights are a large query).
        const every = Math.max(3_000, spec.participation.blocksPerWindow * spec.participation.blockTimeMs)
        yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.ignore(Effect.map(weightShare, onWeight)), Effect.sleep(every))))
      }
      yield* runPeer({
        name: o.name,
        spec,
        address: runAddress(o.spec),
        identity,
        own: { bucket },
        commitment,
        stateDir: "",
        stateless: true,
        shards,
        events: o.events,
        warmUp: "warn",
        ...(o.stop === undefined ? {} : { stop: o.stop }),
      })
    })
    yield* Effect.provide(peer, Layer.mergeAll(layerS3(s3), engine, chainLayer))
  })
