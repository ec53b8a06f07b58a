/**
 * The peer list: whose updates every node aggregates. The leader lists the top `peersGathered`
 * admitted, unpenalised candidates by score plus `reservePeers` reserves; every node then
 * aggregates the listed peers that delivered, and each listed peer that did not deliver has its
 * slot filled by the next delivered reserve in list order. Both steps are pure functions of
 * what every node sees alike (the published list, the gather result), so all nodes aggregate the
 * same set.
 */
import type { Admission } from "@covenant/dsl"

export interface PeerList {
  readonly peers: ReadonlyArray<number>
  readonly reserve: ReadonlyArray<number>
}

export interface Candidate {
  readonly uid: number
  readonly hotkey: string
}

export const admits = (admission: Admission, hotkey: string): boolean =>
  admission.kind === "permissionless" || admission.hotkeys.includes(hotkey)

/**
 * Candidates are ranked by score (high first), then uid; penalised ones are left out. Unscored
 * newcomers rank after scored peers, so they enter as reserves and are evaluated through the
 * random pick.
 */
export const choosePeerList = (
  candidates: ReadonlyArray<Candidate>,
  scoreOf: (uid: number) => number,
  penalised: (uid: number) => boolean,
  admission: Admission,
  sizes: { readonly peersGathered: number; readonly reservePeers: number },
): PeerList => {
  const ranked = [...new Map(candidates.map((c) => [c.uid, c])).values()]
    .filter((c) => admits(admission, c.hotkey) && !penalised(c.uid))
    .map((c) => ({ uid: c.uid, score: scoreOf(c.uid) }))
    .sort((a, b) => b.score - a.score || a.uid - b.uid)
    .map((c) => c.uid)
  return { peers: ranked.slice(0, sizes.peersGathered), reserve: ranked.slice(sizes.peersGathered, sizes.peersGathered + sizes.reservePeers) }
}

/** The uids to aggregate (ascending): delivered listed peers, plus reserves in order for the slots of those that did not deliver. */
export const aggregatedPeers = (list: PeerList, delivered: ReadonlySet<number> | ReadonlyArray<number>): number[] => {
  const got = delivered instanceof Set ? delivered : new Set(delivered as ReadonlyArray<number>)
  const listed = new Set(list.peers)
  const out = list.peers.filter((u) => got.has(u))
  let open = list.peers.length - out.length
  for (const r of list.reserve) {
    if (open === 0) break
    if (!listed.has(r) && got.has(r) && !out.includes(r)) {
      out.push(r)
      open--
    }
  }
  return out.sort((a, b) => a - b)
}

/** Everyone a node gathers for a list: peers and reserves, without repeats. */
export const gatheredUids = (list: PeerList): number[] => [...new Set([...list.peers, ...list.reserve])].sort((a, b) => a - b)
