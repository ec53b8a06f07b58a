/**
 * Who leads a run, as pure functions over what the chain and the store say.
 *
 * A validator permit is the chain's rule for who may set weights, not a role: on a live subtensor
 * miners earn stake and get permits too, and a subnet owner holds one while running no node. So
 * the role is declared in the commitment, and the leader is the highest-stake permit holder that
 * declares and runs this protocol's validator, which it shows by publishing: a committed bucket
 * holding the run's start window. While no candidate has
 * published one, any candidate validator may (the first to start does); from then on the
 * highest-ranked *fresh* publisher leads.
 *
 * Fresh: a leader re-stores its start window (same value) every window it leads, as its heartbeat;
 * a publisher whose start window was last stored in window h is fresh for window w while
 * h >= w - LEADER_STALE_WINDOWS. The heartbeat is the start window itself because every node
 * already lists it each window (readDirectory), so freshness costs no extra store call, and its
 * listing stays one object however long the run (the aggregation records, the other candidate,
 * are never pruned and would make that list grow with the run). The store stamps the time, and a
 * dead leader's last stamp never changes, so every node judging window w sees the same leader.
 * When the leader goes stale, the next candidate validator that runs takes over (`takesOverRun`):
 * it stores the same start window and the peer lists in force, then leads.
 */
import type { Directory, Participant, RunAddress } from "./network.ts"
import { startWindowKey } from "@covenant/transport"

/**
 * Eligible to lead: a declared validator with a validator permit (the chain lets it set weights)
 * and a committed bucket; highest stake first, lowest uid on ties. A declared peer never is, whatever its stake.
 */
export const leaderCandidates = (ps: Iterable<Participant>): Array<Participant> =>
  [...ps]
    .filter((p) => p.role === "validator" && p.validatorPermit && p.location !== undefined)
    .sort((a, b) => b.stake - a.stake || a.uid - b.uid)

/** The leader: the highest-ranked candidate that publishes the run; `undefined` while none does. */
export const chooseLeader = (candidates: ReadonlyArray<Participant>, publishes: (p: Participant) => boolean): Participant | undefined =>
  candidates.find(publishes)

/**
 * Windows a leader may miss its heartbeat before the next candidate takes over. A live leader
 * stores it while it processes window w - 1 (during window w): 3 leaves two windows of slack for a
 * slow store or a busy machine; a dead leader is replaced within 4 windows.
 */
export const LEADER_STALE_WINDOWS = 3

/** A candidate that has published the run's start window, and the window its heartbeat was last stored in. */
export interface Publishing {
  readonly participant: Participant
  readonly heartbeatWindow: number
}

/** Whether a publisher whose last heartbeat is in `heartbeatWindow` may lead `window`. */
export const isFresh = (heartbeatWindow: number, window: number): boolean => heartbeatWindow >= window - LEADER_STALE_WINDOWS

/**
 * The publishers as readDirectory keeps them (ranked, the leader last) and the leader of `window`:
 * the highest-ranked fresh one; the stale ones above it are kept, to read what they published.
 */
export const chooseFreshLeader = (
  candidates: ReadonlyArray<Participant>,
  heartbeat: (p: Participant) => number | undefined,
  window: number,
): { readonly leader: Participant | undefined; readonly publishers: ReadonlyArray<Publishing> } => {
  const publishers: Publishing[] = []
  for (const p of candidates) {
    const h = heartbeat(p)
    if (h === undefined) continue
    publishers.push({ participant: p, heartbeatWindow: h })
    if (isFresh(h, window)) return { leader: p, publishers }
  }
  return { leader: undefined, publishers }
}

/** Whether validator `uid` should publish the run's (first) start window: no candidate has published one and it is a candidate. */
export const leadsVacantRun = (dir: Directory, uid: number): boolean =>
  dir.leader === undefined && (dir.publishers ?? []).length === 0 && leaderCandidates(dir.participants.values()).some((p) => p.uid === uid)

/**
 * Whether validator `uid` (a running validator) takes over a started run: every publisher is
 * stale and it is a candidate. Each running candidate claims; the highest-ranked claimer leads
 * from then on (chooseFreshLeader), so every node switches to the same one.
 */
export const takesOverRun = (dir: Directory, uid: number): boolean =>
  dir.leader === undefined && (dir.publishers ?? []).length > 0 && leaderCandidates(dir.participants.values()).some((p) => p.uid === uid)

/** Where a leader's objects are read: the leader first, then the stale publishers it replaced (newest rank last), so older windows' records are found where they were published. */
export const readSources = (dir: Directory): Participant[] => {
  const stale = (dir.publishers ?? []).map((p) => p.participant).filter((p) => p.uid !== dir.leader?.uid)
  return [...(dir.leader === undefined ? [] : [dir.leader]), ...stale]
}

const short = (hotkey: string) => (hotkey.length > 12 ? `${hotkey.slice(0, 6)}…${hotkey.slice(-4)}` : hotkey)
const who = (p: Participant) => `uid ${p.uid} (${short(p.hotkey)}, stake ${p.stake.toFixed(3)}${p.location === undefined ? ", no bucket committed" : `, bucket ${p.location.bucket}`})`

/** What a node waiting for the run's start window says it waits for: whom, which object, and why. */
export const describeStartWait = (dir: Directory, address: RunAddress): string => {
  const key = startWindowKey(address.version)
  const leader = dir.leader
  if (leader !== undefined) {
    return `run ${address.runId}: waiting for ${key} from the leader ${who(leader)}: listed but not readable yet`
  }
  const candidates = leaderCandidates(dir.participants.values())
  if (candidates.length > 0) {
    return `run ${address.runId}: waiting for a validator to publish ${key}: none of the ${candidates.length} candidate(s) (declared validator + permit + committed bucket, by stake) has: ${candidates.slice(0, 5).map(who).join("; ")}${candidates.length > 5 ? "; …" : ""}. The first validator node to start publishes it.`
  }
  const declared = [...dir.participants.values()].filter((p) => p.role === "validator" && p.location !== undefined)
  return `run ${address.runId}: waiting for ${key}, but no validator can lead: ${
    declared.length === 0
      ? `none of the ${dir.participants.size} registered uid(s) has committed the validator role`
      : `no declared validator holds a validator permit (declared validators: ${declared.slice(0, 5).map(who).join("; ")}${declared.length > 5 ? "; …" : ""})`
  }. A validator needs a permit (stake) and a running node.`
}

/**
 * What a node says, each window, when the lead is not with the highest-ranked publisher: who went
 * stale since which window, and whom it follows or waits for. `undefined` when the top publisher
 * leads (or no run has started: describeStartWait says that).
 */
export const describeLeadership = (dir: Directory, window: number): string | undefined => {
  const publishers = dir.publishers ?? []
  const stale = publishers.filter((p) => p.participant.uid !== dir.leader?.uid)
  if (stale.length === 0) return undefined
  const staleText = stale.map((p) => `uid ${p.participant.uid} (${short(p.participant.hotkey)}) last heartbeat in window ${p.heartbeatWindow}, stale since window ${p.heartbeatWindow + LEADER_STALE_WINDOWS + 1}`).join("; ")
  if (dir.leader !== undefined) return `window ${window}: following the leader ${who(dir.leader)}, the highest-ranked fresh publisher; stale: ${staleText}`
  const next = leaderCandidates(dir.participants.values()).filter((p) => !publishers.some((q) => q.participant.uid === p.uid))
  return `window ${window}: no fresh leader: ${staleText}; waiting for the next candidate validator to take over (${
    next.length === 0 ? "no other candidate (declared validator + permit + committed bucket) is registered" : next.slice(0, 3).map(who).join("; ")
  }); peer lists and records are read from the stale leader meanwhile`
}

/**
 * What a node logs about the lead in `window`, given the leader it followed in the window before
 * (`-1` at first): while no publisher is fresh, the wait every window; once a leader replaced a
 * stale one, that once (when the node first sees it), not every window after.
 */
export const leadershipNotice = (dir: Directory, window: number, followed: number | undefined): string | undefined => {
  const text = describeLeadership(dir, window)
  return text !== undefined && (dir.leader === undefined || dir.leader.uid !== followed) ? text : undefined
}

/** How often a node that waits says so: every window, at most every 15 s, at least every poll. */
export const waitReportMs = (blocksPerWindow: number, blockTimeMs: number, pollMs: number): number =>
  Math.max(pollMs, Math.min(15_000, blocksPerWindow * blockTimeMs))
