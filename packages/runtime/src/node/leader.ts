/**
 * Who leads a run, as pure functions over what the chain and the store say.
 *
 * A validator permit is the chain's rule for who may set weights, not a role: on a live subtensor
 * miners earn stake and get permits too, and a subnet owner holds one while running no node. So
 * the leader is the highest-stake permit holder that runs this protocol's validator, which it
 * shows by publishing: a committed bucket holding the run's start window. While no candidate has
 * published one, any candidate validator may (the first to start does); from then on the
 * highest-ranked publisher leads, and the next one takes over if it stops being a candidate.
 */
import type { Directory, Participant, RunAddress } from "./network.ts"
import { startWindowKey } from "@covenant/transport"

/** Eligible to lead: a validator permit and a committed bucket; highest stake first, lowest uid on ties. */
export const leaderCandidates = (ps: Iterable<Participant>): Array<Participant> =>
  [...ps]
    .filter((p) => p.validatorPermit && p.location !== undefined)
    .sort((a, b) => b.stake - a.stake || a.uid - b.uid)

/** The leader: the highest-ranked candidate that publishes the run; `undefined` while none does. */
export const chooseLeader = (candidates: ReadonlyArray<Participant>, publishes: (p: Participant) => boolean): Participant | undefined =>
  candidates.find(publishes)

/** Whether validator `uid` should publish the run's start window: no candidate leads yet and it is one. */
export const leadsVacantRun = (dir: Directory, uid: number): boolean =>
  dir.leader === undefined && leaderCandidates(dir.participants.values()).some((p) => p.uid === uid)

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
    return `run ${address.runId}: waiting for a validator to publish ${key}: none of the ${candidates.length} candidate(s) (permit + committed bucket, by stake) has: ${candidates.slice(0, 5).map(who).join("; ")}${candidates.length > 5 ? "; …" : ""}. The first validator node to start publishes it.`
  }
  const permitted = [...dir.participants.values()].filter((p) => p.validatorPermit)
  return `run ${address.runId}: waiting for ${key}, but no validator can lead: ${
    permitted.length === 0
      ? `none of the ${dir.participants.size} registered uid(s) has a validator permit`
      : `no permit holder has committed a bucket (permit holders: ${permitted.slice(0, 5).map(who).join("; ")}${permitted.length > 5 ? "; …" : ""})`
  }. A validator needs a permit (stake) and a running node.`
}

/** How often a node that waits says so: every window, at most every 15 s, at least every poll. */
export const waitReportMs = (blocksPerWindow: number, blockTimeMs: number, pollMs: number): number =>
  Math.max(pollMs, Math.min(15_000, blocksPerWindow * blockTimeMs))
