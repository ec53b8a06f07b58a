/**
 * What a gather refused, in words: which peers' updates landed before or after the upload
 * interval (and by how much), failed verification, or could not be read. A window whose updates
 * all land late (a run timed for faster blocks than the chain makes) must not look like an idle one.
 */
import type { GatherResult, UploadInterval } from "@covenant/transport"

export interface Rejections {
  readonly early: ReadonlyArray<{ readonly uid: number; readonly byMs: number }>
  readonly late: ReadonlyArray<{ readonly uid: number; readonly byMs: number }>
  readonly invalid: ReadonlyArray<{ readonly uid: number; readonly reason: string }>
  readonly unavailable: ReadonlyArray<{ readonly uid: number; readonly reason: string }>
  readonly missing: ReadonlyArray<number>
}

/** The gather's refusals, each with how far outside the interval it landed. */
export const rejectionsOf = (result: GatherResult, interval: UploadInterval): Rejections => ({
  early: [...result.tooEarly].map(([uid, at]) => ({ uid, byMs: interval.start - at })).sort((a, b) => a.uid - b.uid),
  late: [...result.tooLate].map(([uid, at]) => ({ uid, byMs: at - interval.end })).sort((a, b) => a.uid - b.uid),
  invalid: [
    ...[...result.badSignature].map(([uid, reason]) => ({ uid, reason })),
    ...[...result.tooLarge].map(([uid, size]) => ({ uid, reason: `TooLarge: ${size} bytes, past the largest legal update` })),
    ...result.unknownPeer.map((uid) => ({ uid, reason: "no committed bucket or hotkey" })),
  ].sort((a, b) => a.uid - b.uid),
  unavailable: [...result.unavailable].map(([uid, reason]) => ({ uid, reason })).sort((a, b) => a.uid - b.uid),
  missing: [...result.missing].sort((a, b) => a - b),
})

/**
 * One line naming every refused peer and why (and, then, the missing ones); `undefined` when
 * nothing was refused: a peer that uploaded nothing already shows in the round's gathered list.
 */
export const describeRejections = (window: number, r: Rejections, uploadWindowMs: number): string | undefined => {
  if (r.late.length + r.early.length + r.invalid.length + r.unavailable.length === 0) return undefined
  const parts = [
    ...(r.late.length === 0 ? [] : [`late ${r.late.map((x) => `uid ${x.uid} (+${x.byMs} ms)`).join(", ")}`]),
    ...(r.early.length === 0 ? [] : [`early ${r.early.map((x) => `uid ${x.uid} (-${x.byMs} ms)`).join(", ")}`]),
    ...(r.invalid.length === 0 ? [] : [`invalid ${r.invalid.map((x) => `uid ${x.uid} (${x.reason})`).join(", ")}`]),
    ...(r.unavailable.length === 0 ? [] : [`unreadable ${r.unavailable.map((x) => `uid ${x.uid} (${x.reason})`).join(", ")}`]),
    ...(r.missing.length === 0 ? [] : [`missing uid ${r.missing.join(", ")}`]),
  ]
  const hint = r.late.length > 0 ? `; the upload window is ${uploadWindowMs} ms after the next window's first block: if every upload is late, the run's timing does not fit this chain's block time` : ""
  return `window ${window}: not gathered: ${parts.join("; ")}${hint}`
}
