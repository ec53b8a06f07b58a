/**
 * Strict admission at the trust boundary: a delivered update enters aggregation only if it was
 * made the way the run spec and the chain say, i.e. it decodes against the model's manifest,
 * names this run, window and uid, carries the hotkey the chain lists for that uid, used the
 * spec's coding (sparse vs dense, index coding), chunk, k and bins, and reports the samples
 * that uid was assigned. Anything else is rejected *as that peer's update*, with a typed reason,
 * before aggregation: one peer's mistake or attack can no longer knock tensors out of the step.
 */
import { Data, Effect, Either } from "effect"
import type { RunSpec } from "@covenant/dsl"
import { clampK, decode, layoutOf, maxUpdateBytes } from "@covenant/sparseloco"
import type { Manifest, UpdateMessage, WireErrorReason, WireSettings } from "@covenant/sparseloco"
import { sealedLength } from "@covenant/transport"
import type { GatherResult } from "@covenant/transport"
import { scheduledSampleIds } from "../data/window-data.ts"
import type { ShardSet } from "../data/shards.ts"
import type { Directory, RunAddress } from "./network.ts"

/** Why one peer's update of one window was not aggregated. */
export type Rejection = Data.TaggedEnum<{
  /** The bytes are no legal update for the model (wire error from the strict decoder). */
  Undecodable: { readonly reason: WireErrorReason; readonly message: string }
  WrongRun: { readonly runId: string; readonly expected: string }
  WrongWindow: { readonly window: number; readonly expected: number }
  WrongUid: { readonly uid: number; readonly expected: number }
  /** meta.hotkey is not the hotkey the chain lists for the uid. */
  WrongHotkey: { readonly hotkey: string; readonly expected: string }
  /** Dense where the spec says sparse (or the reverse), or the other index coding. */
  WrongCoding: { readonly tensor: string; readonly coding: string; readonly expected: string }
  WrongChunk: { readonly tensor: string; readonly chunk: number; readonly expected: number }
  WrongK: { readonly tensor: string; readonly kEff: number; readonly expected: number }
  WrongBins: { readonly tensor: string; readonly bins: number; readonly expected: number }
  /** The sample digest or count is not that of the samples assigned to (uid, window). */
  WrongSamples: { readonly digest: string; readonly count: number; readonly expectedDigest: string; readonly expectedCount: number }
  /** Larger than the largest legal update (cut off while downloading). */
  TooLarge: { readonly size: number; readonly maxBytes: number }
  /** The envelope did not verify against the chain's hotkey for the uid (or was replayed / tampered). */
  BadSignature: { readonly detail: string }
}>
export const Rejection = Data.taggedEnum<Rejection>()

export interface Rejected {
  readonly uid: number
  readonly reason: Rejection
}

/** One short line per rejection, for window lines and logs. */
export const describeRejection = (r: Rejection): string =>
  Rejection.$match(r, {
    Undecodable: (e) => `Undecodable(${e.reason})`,
    WrongRun: (e) => `WrongRun(${e.runId})`,
    WrongWindow: (e) => `WrongWindow(${e.window} != ${e.expected})`,
    WrongUid: (e) => `WrongUid(${e.uid} != ${e.expected})`,
    WrongHotkey: (e) => `WrongHotkey(${e.hotkey.slice(0, 8)}…)`,
    WrongCoding: (e) => `WrongCoding(${e.tensor}: ${e.coding} != ${e.expected})`,
    WrongChunk: (e) => `WrongChunk(${e.tensor}: ${e.chunk} != ${e.expected})`,
    WrongK: (e) => `WrongK(${e.tensor}: ${e.kEff} != ${e.expected})`,
    WrongBins: (e) => `WrongBins(${e.tensor}: ${e.bins} != ${e.expected})`,
    WrongSamples: (e) => `WrongSamples(${e.count} samples ${e.digest.slice(0, 8)}…)`,
    TooLarge: (e) => `TooLarge(${e.size} > ${e.maxBytes})`,
    BadSignature: (e) => `BadSignature(${e.detail})`,
  })

/** The codec settings every update of the run must have been made with. */
export const wireSettings = (spec: RunSpec): WireSettings =>
  spec.compression.kind === "none"
    ? { kind: "none" }
    : { kind: "sparseloco", chunk: spec.compression.chunk, topk: spec.compression.topk, indexCoding: spec.compression.indexCoding }

/**
 * The largest sealed object a peer's update of `window` may be: the largest legal wire encoding
 * for the model and the spec's codec, inside its envelope. Gathers stop reading past it.
 */
export const updateCap = (spec: RunSpec, manifest: Manifest, address: RunAddress, window: number): number | undefined => {
  const wire = maxUpdateBytes(manifest, wireSettings(spec), address.runId)
  // uid 65535 is the longest the envelope's fixed-width fields allow; the length does not depend on it.
  return wire === undefined ? undefined : sealedLength({ runId: address.runId, window, uid: 0, kind: "gradient" }, wire)
}

/** The first way `m` disagrees with the spec's codec, if any. */
const codecMismatch = (m: UpdateMessage, manifest: Manifest, spec: RunSpec): Rejection | undefined => {
  const c = spec.compression
  for (let i = 0; i < manifest.tensors.length; i++) {
    const t = m.tensors[i]
    const { name, shape } = manifest.tensors[i]!
    if (t === undefined) return Rejection.Undecodable({ reason: "ShapeMismatch", message: `tensor ${name} missing` })
    if (c.kind === "none") {
      if (t.coding !== "f32") return Rejection.WrongCoding({ tensor: name, coding: t.coding, expected: "f32" })
      continue
    }
    if (t.coding === "f32" || t.coding !== c.indexCoding) return Rejection.WrongCoding({ tensor: name, coding: t.coding, expected: c.indexCoding })
    const u = t.update
    if (u.chunk !== c.chunk) return Rejection.WrongChunk({ tensor: name, chunk: u.chunk, expected: c.chunk })
    const l = layoutOf(shape, c.chunk)
    if (Either.isLeft(l)) return Rejection.Undecodable({ reason: "BadHeader", message: `${name}: ${l.left.message}` })
    const k = clampK(c.topk, l.right.totalk)
    if (u.kEff !== k) return Rejection.WrongK({ tensor: name, kEff: u.kEff, expected: k })
    if (u.lookup.length !== c.quantBins) return Rejection.WrongBins({ tensor: name, bins: u.lookup.length, expected: c.quantBins })
  }
  return undefined
}

/** The ids a uid must train on in a window, and their digest. */
export type SampleRule = (uid: number, window: number) => Effect.Effect<{ readonly ids: Uint32Array; readonly digest: string }, unknown>

/** The run's sample rule over this node's data: the seed rule under the shard schedule, as `trainingBatches` draws. */
export const sampleRule = (shards: Pick<ShardSet, "manifest">, spec: RunSpec, start: number): SampleRule => (uid, window) =>
  scheduledSampleIds(shards, spec.data.schedule, Math.max(0, window - start), uid, window, spec.data.sampling)

export interface AdmissionContext {
  readonly spec: RunSpec
  readonly manifest: Manifest
  readonly address: RunAddress
  readonly window: number
  /** The chain's view: each uid's hotkey. */
  readonly dir: Directory
  /** The samples (ids and digest) a uid must train on in a window (`sampleRule`); omit to skip that check. */
  readonly samples?: SampleRule
  /**
   * Check meta.hotkey against the chain's current hotkey of the uid (default true). Replaying the
   * leader's signed record of a past window skips it: the leader checked it then, and the uid
   * may have been re-registered to another hotkey since.
   */
  readonly checkHotkey?: boolean
}

export interface Admission {
  /** Admitted updates, by ascending uid. */
  readonly accepted: Array<{ uid: number; message: UpdateMessage }>
  readonly rejected: Array<Rejected>
}

/** Judges one delivered payload: the decoded update, or why it is refused. */
export const admitOne = (uid: number, payload: Uint8Array, ctx: AdmissionContext): Effect.Effect<Either.Either<UpdateMessage, Rejection>> =>
  Effect.gen(function* () {
    const decoded = decode(payload, ctx.manifest)
    if (Either.isLeft(decoded)) return Either.left(Rejection.Undecodable({ reason: decoded.left.reason, message: decoded.left.message }))
    const m = decoded.right
    const meta = m.meta
    if (meta.runId !== ctx.address.runId) return Either.left(Rejection.WrongRun({ runId: meta.runId, expected: ctx.address.runId }))
    if (meta.window !== ctx.window) return Either.left(Rejection.WrongWindow({ window: meta.window, expected: ctx.window }))
    if (meta.uid !== uid) return Either.left(Rejection.WrongUid({ uid: meta.uid, expected: uid }))
    if (ctx.checkHotkey !== false) {
      const listed = ctx.dir.participants.get(uid)?.hotkey ?? ""
      if (meta.hotkey !== listed) return Either.left(Rejection.WrongHotkey({ hotkey: meta.hotkey, expected: listed }))
    }
    const codec = codecMismatch(m, ctx.manifest, ctx.spec)
    if (codec !== undefined) return Either.left(codec)
    if (ctx.samples !== undefined) {
      // A sampler failure is this node's problem (its data), not the peer's: then the check is skipped.
      const assigned = yield* Effect.either(ctx.samples(uid, ctx.window))
      if (Either.isRight(assigned) && (assigned.right.digest !== meta.sampleDigest.toLowerCase() || assigned.right.ids.length !== meta.sampleCount)) {
        return Either.left(Rejection.WrongSamples({ digest: meta.sampleDigest, count: meta.sampleCount, expectedDigest: assigned.right.digest, expectedCount: assigned.right.ids.length }))
      }
    }
    return Either.right(m)
  })

/** Admits the delivered payloads of one window; the rest are rejected with their reason. */
export const admitUpdates = (
  delivered: ReadonlyArray<{ readonly uid: number; readonly payload: Uint8Array }>,
  ctx: AdmissionContext,
): Effect.Effect<Admission> =>
  Effect.gen(function* () {
    const accepted: Array<{ uid: number; message: UpdateMessage }> = []
    const rejected: Array<Rejected> = []
    for (const { uid, payload } of [...delivered].sort((a, b) => a.uid - b.uid)) {
      const judged = yield* admitOne(uid, payload, ctx)
      if (Either.isRight(judged)) accepted.push({ uid, message: judged.right })
      else rejected.push({ uid, reason: judged.left })
    }
    return { accepted, rejected }
  })

/** The peers a gather refused at the transport (over the size cap, bad envelope), as rejections. */
export const gatherRejections = (got: GatherResult, maxBytes: number | undefined): Array<Rejected> => [
  ...[...got.tooLarge].map(([uid, size]) => ({ uid, reason: Rejection.TooLarge({ size, maxBytes: maxBytes ?? 0 }) })),
  ...[...got.badSignature].map(([uid, detail]) => ({ uid, reason: Rejection.BadSignature({ detail }) })),
]

/** Admission of a whole gather: the transport's refusals plus the boundary checks, by uid. */
export const admitGathered = (got: GatherResult, ctx: AdmissionContext): Effect.Effect<Admission & { readonly delivered: Array<{ uid: number; payload: Uint8Array }> }> =>
  Effect.gen(function* () {
    const delivered = [...got.delivered].map(([uid, d]) => ({ uid, payload: d.bytes })).sort((a, b) => a.uid - b.uid)
    const admitted = yield* admitUpdates(delivered, ctx)
    const rejected = [...gatherRejections(got, updateCap(ctx.spec, ctx.manifest, ctx.address, ctx.window)), ...admitted.rejected].sort((a, b) => a.uid - b.uid)
    return { accepted: admitted.accepted, rejected, delivered }
  })
