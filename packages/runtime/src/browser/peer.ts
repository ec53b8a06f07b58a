/**
 * A peer in a browser tab: the same `runPeer` loop as a node process, over layers a page can
 * build: the engine on the page's `navigator.gpu`, the S3 transport through the page's origin (a
 * same-origin proxy, see serve.ts), the local chain's client over the page origin's `/chain/`, the
 * run's shards read over HTTP, and no disk (the tab starts from the leader's checkpoint and
 * replays, as any new node does). Nothing here touches Node's APIs.
 */
import { Effect, Layer, Schema } from "effect"
import type { Scope } from "effect"
import { identityFromSecret, layerLocalClient } from "@covenant/chain"
import { RunSpec } from "@covenant/dsl"
import { EngineWebGpuFromGpu } from "@covenant/gpu-webgpu"
import { layerS3 } from "@covenant/transport"
import type { S3TransportConfig } from "@covenant/transport"
import { EngineFailure, type RuntimeFailure, inPhase } from "../errors.ts"
import { httpObjects } from "../data/http-objects.ts"
import { openObjectShardSet } from "../data/object-shards.ts"
import { s3Commitment } from "../node/credentials.ts"
import type { S3Keys } from "../node/credentials.ts"
import { runAddress } from "../node/network.ts"
import type { NodeEvent } from "../node/node.ts"
import { runPeer } from "../node/peer.ts"
import type { StopRule } from "../node/stop.ts"

/** What the page server tells a page about its run (GET /run.json). */
export const PageRun = Schema.Struct({
  /** The run spec, encoded. */
  spec: Schema.encodedSchema(RunSpec),
  /** The store everyone's buckets are in: its real endpoint (committed on chain) and region. */
  store: Schema.Struct({ endpoint: Schema.String, region: Schema.String }),
  /** Defaults the page may fill its form with (a local run's test keys); absent on a public run. */
  keys: Schema.optional(Schema.Struct({ write: Schema.Struct({ accessKeyId: Schema.String, secretAccessKey: Schema.String }), read: Schema.Struct({ accessKeyId: Schema.String, secretAccessKey: Schema.String }) })),
})
export type PageRun = typeof PageRun.Type

export interface BrowserPeerOptions {
  readonly gpu: GPU
  readonly spec: RunSpec
  /** A display name; the tab's bucket is covenant-<name>. */
  readonly name: string
  /** The hotkey's secret (a mnemonic or 0x seed kept by the page). */
  readonly secret: string
  /** Base URL of the local chain's RPC (the page's `${origin}/chain`). */
  readonly chainUrl: string
  /** Base URL of the run's shard folder (the page's `${origin}/data/`). */
  readonly dataUrl: string
  readonly store: { readonly endpoint: string; readonly region: string }
  readonly write: S3Keys
  readonly read: S3Keys
  /** Rewrites a store URL to the URL the page can fetch (its origin's `/s3/` proxy). */
  readonly route?: (storeUrl: URL) => URL
  readonly events: (e: NodeEvent) => void
  readonly stop?: StopRule
}

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
      ...(o.route === undefined ? {} : { route: o.route }),
    }
    const bucket = `covenant-${o.name}`
    const commitment = yield* Effect.mapError(s3Commitment(o.store, bucket, o.read, o.write), inPhase("credentials"))
    const shards = yield* Effect.mapError(
      openObjectShardSet(httpObjects(o.dataUrl)),
      inPhase("data"),
    )
    // The local chain's client, over the page origin's proxy (a long-polling HTTP client: no WebSocket needed).
    const chainLayer = Layer.mapError(layerLocalClient(o.chainUrl, identity), inPhase("chain"))
    const engine = Layer.mapError(EngineWebGpuFromGpu(o.gpu), (cause) => new EngineFailure({ phase: "engine", cause }))
    yield* Effect.provide(
      runPeer({
        name: o.name,
        spec: o.spec,
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
      }),
      Layer.mergeAll(layerS3(s3), engine, chainLayer),
    )
  })
