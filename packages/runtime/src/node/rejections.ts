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

/** Why an expected peer's update is not in a window's aggregate. */
export type MissingWhy = "late" | "early" | "absent" | "invalid" | "unreadable"

export interface Missing {
  readonly uid: number
  readonly why: MissingWhy
  /** How far outside the interval (late/early), or the refusal (invalid/unreadable). */
  readonly detail?: string
}

/**
 * Every expected peer that is not in `gathered`, with why: refused by the gather as late, early,
 * invalid or unreadable (`refused`), refused at admission (`rejected`, described), else absent
 * (it uploaded nothing for the window).
 */
export const missingPeers = (
  expected: ReadonlyArray<number>,
  gathered: ReadonlyArray<number>,
  refused: Rejections | undefined,
  rejected: ReadonlyArray<{ readonly uid: number; readonly reason: string }>,
): Array<Missing> => {
  const got = new Set(gathered)
  return [...expected].filter((uid) => !got.has(uid)).sort((a, b) => a - b).map((uid): Missing => {
    const late = refused?.late.find((x) => x.uid === uid)
    if (late !== undefined) return { uid, why: "late", detail: `+${late.byMs} ms` }
    const early = refused?.early.find((x) => x.uid === uid)
    if (early !== undefined) return { uid, why: "early", detail: `-${early.byMs} ms` }
    const invalid = rejected.find((x) => x.uid === uid) ?? refused?.invalid.find((x) => x.uid === uid)
    if (invalid !== undefined) return { uid, why: "invalid", detail: invalid.reason }
    const unreadable = refused?.unavailable.find((x) => x.uid === uid)
    if (unreadable !== undefined) return { uid, why: "unreadable", detail: unreadable.reason }
    return { uid, why: "absent" }
  })
}

/** `1 late +420 ms; 2 absent`: for a window line. */
export const describeMissing = (missing: ReadonlyArray<Missing>): string =>
  missing.map((m) => `${m.uid} ${m.why}${m.detail === undefined ? "" : ` ${m.detail}`}`).join("; ")
