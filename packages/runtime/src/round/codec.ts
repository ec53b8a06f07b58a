/**
 * What travels between nodes besides the raw store: a peer's update (the SparseLoCo wire format,
 * checked against the model's manifest on receipt) and the leader's per-window aggregation record
 * (every update it aggregated, sorted by uid), which joiners replay.
 */
import { Either, ParseResult, Schema } from "effect"
import { decode, encode } from "@covenant/sparseloco"
import type { Manifest, UpdateMessage, UpdateMeta, WireTensor } from "@covenant/sparseloco"
import { CodecFailure, type RuntimeFailure } from "../errors.ts"

export const encodeUpdate = (meta: UpdateMeta, tensors: readonly WireTensor[]): Either.Either<Uint8Array, RuntimeFailure> =>
  Either.mapLeft(encode({ meta, tensors }), (e) => new CodecFailure({ phase: "encode", reason: `${e.reason}: ${e.message}` }))

/** Decodes a received update; anything that does not fit the model (names, shapes, k) is a typed error. */
export const decodeUpdate = (bytes: Uint8Array, manifest: Manifest): Either.Either<UpdateMessage, RuntimeFailure> =>
  Either.mapLeft(decode(bytes, manifest), (e) => new CodecFailure({ phase: "decode", reason: `${e.reason}: ${e.message}` }))

const RecordHeader = Schema.parseJson(
  Schema.Struct({
    window: Schema.Int.pipe(Schema.nonNegative()),
    entries: Schema.Array(Schema.Struct({ uid: Schema.Int.pipe(Schema.between(0, 65535)), length: Schema.Int.pipe(Schema.nonNegative()) })),
  }),
)

/** One window's aggregated updates: payloads (wire bytes) by uid, in ascending uid order. */
export interface AggregationRecord {
  readonly window: number
  readonly updates: ReadonlyArray<{ readonly uid: number; readonly payload: Uint8Array }>
}

/** `u32 header length | header JSON | payloads back to back`. */
export const encodeRecord = (record: AggregationRecord): Uint8Array => {
  const sorted = [...record.updates].sort((a, b) => a.uid - b.uid)
  const header = new TextEncoder().encode(
    JSON.stringify({ window: record.window, entries: sorted.map((u) => ({ uid: u.uid, length: u.payload.length })) }),
  )
  const total = 4 + header.length + sorted.reduce((n, u) => n + u.payload.length, 0)
  const out = new Uint8Array(total)
  new DataView(out.buffer).setUint32(0, header.length, true)
  out.set(header, 4)
  let at = 4 + header.length
  for (const u of sorted) {
    out.set(u.payload, at)
    at += u.payload.length
  }
  return out
}

export const decodeRecord = (bytes: Uint8Array): Either.Either<AggregationRecord, RuntimeFailure> => {
  const bad = (reason: string) => Either.left(new CodecFailure({ phase: "record", reason }))
  if (bytes.length < 4) return bad("truncated record")
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true)
  if (4 + headerLength > bytes.length) return bad("header longer than the record")
  const text = new TextDecoder().decode(bytes.subarray(4, 4 + headerLength))
  const header = Schema.decodeUnknownEither(RecordHeader)(text)
  if (Either.isLeft(header)) return bad(ParseResult.TreeFormatter.formatErrorSync(header.left))
  let at = 4 + headerLength
  const updates: Array<{ uid: number; payload: Uint8Array }> = []
  for (const { uid, length } of header.right.entries) {
    if (at + length > bytes.length) return bad("payloads shorter than the header says")
    updates.push({ uid, payload: bytes.slice(at, at + length) })
    at += length
  }
  if (at !== bytes.length) return bad("trailing bytes after the payloads")
  for (let i = 1; i < updates.length; i++) if (updates[i]!.uid <= updates[i - 1]!.uid) return bad("uids not strictly ascending")
  return Either.right({ window: header.right.window, updates })
}
