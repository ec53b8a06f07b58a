import { describe, expect, test } from "bun:test"
import { FastCheck } from "effect"
import {
  chooseFreshLeader, chooseLeader, describeLeadership, leadershipNotice, describeRejections, describeStartWait, eligibleCandidates, isFresh, LEADER_STALE_WINDOWS, leaderCandidates,
  leadsVacantRun, readSources, rejectionsOf, takesOverRun, waitReportMs,
} from "../src/index.ts"
import type { Admission } from "@covenant/dsl"
import type { Directory, Participant } from "../src/index.ts"

// The roles/leader logic as pure functions over random metagraphs: any neuron may hold a permit
// (miners earn stake on a live subnet), any may or may not have committed a bucket, each declares
// a role in its commitment (peer or validator), and any may store a start window in its bucket
// (`runsValidator`: a declared validator's node, or a peer that stores one all the same).

const participant = (uid: number) =>
  FastCheck.record({
    stake: FastCheck.oneof(FastCheck.constant(0), FastCheck.double({ min: 0, max: 1e6, noNaN: true })),
    validatorPermit: FastCheck.boolean(),
    committed: FastCheck.boolean(),
    role: FastCheck.constantFrom("peer" as const, "validator" as const),
    runsValidator: FastCheck.boolean(),
  }).map((r) => ({
    p: { uid, hotkey: `5Hotkey${uid}`, stake: r.stake, validatorPermit: r.validatorPermit, location: r.committed ? { bucket: `covenant-${uid}` } : undefined, role: r.role } satisfies Participant,
    runsValidator: r.runsValidator,
  }))

// Random uids (not 0..n-1): a live subnet's registered uids have gaps.
const metagraph = FastCheck.uniqueArray(FastCheck.integer({ min: 0, max: 255 }), { maxLength: 12 }).chain((uids) => FastCheck.tuple(...uids.map(participant)))

const directory = (ps: ReadonlyArray<Participant>, leader: Participant | undefined): Directory => ({ participants: new Map(ps.map((p) => [p.uid, p])), leader })

/** What may lead: a declared validator with a permit and a bucket. */
const mayLead = (p: Participant) => p.role === "validator" && p.validatorPermit && p.location !== undefined

describe("roles (property tests over random metagraphs)", () => {
  // Any admission: everyone, or an allow-list of some of the hotkeys (and one not registered: a list is never empty).
  const admission = (nodes: ReadonlyArray<{ p: Participant }>): FastCheck.Arbitrary<Admission | undefined> =>
    FastCheck.oneof(
      FastCheck.constant(undefined),
      FastCheck.constant({ kind: "permissionless" as const }),
      FastCheck.subarray(nodes.map((n) => n.p.hotkey)).map((some) => {
        const hotkeys: readonly [string, ...string[]] = ["5NotRegistered", ...some]
        return { kind: "allowList" as const, hotkeys }
      }),
    )

  test("the candidate peers are exactly the admitted declared peers with a bucket: never a declared validator, permit or not, leading or not", () => {
    FastCheck.assert(
      FastCheck.property(metagraph.chain((nodes) => FastCheck.tuple(FastCheck.constant(nodes), admission(nodes))), ([nodes, rule]) => {
        const ps = nodes.map((n) => n.p)
        const publishing = new Set(nodes.filter((n) => n.runsValidator).map((n) => n.p.uid))
        const { leader, publishers } = chooseFreshLeader(leaderCandidates(ps), (p) => (publishing.has(p.uid) ? 0 : undefined), 0)
        const listed = eligibleCandidates({ ...directory(ps, leader), publishers }, rule).map((c) => c.uid)
        const admitted = (p: Participant) => rule === undefined || rule.kind === "permissionless" || rule.hotkeys.includes(p.hotkey)
        const expected = ps.filter((p) => p.role === "peer" && p.location !== undefined && admitted(p)).map((p) => p.uid).sort((a, b) => a - b)
        // So the list is never empty while an admitted declared peer has a bucket.
        return JSON.stringify(listed) === JSON.stringify(expected) && listed.every((uid) => ps.find((p) => p.uid === uid)!.role === "peer")
      }),
      { numRuns: 500 },
    )
  })

  test("the leader is always a declared validator with a permit and a bucket that publishes, and outranks every other such one", () => {
    FastCheck.assert(
      FastCheck.property(metagraph, (nodes) => {
        const ps = nodes.map((n) => n.p)
        // Any node may store a start window; only a declared validator with a permit can lead by it.
        const publishing = new Set(nodes.filter((n) => n.runsValidator).map((n) => n.p.uid))
        const leader = chooseLeader(leaderCandidates(ps), (p) => publishing.has(p.uid))
        const eligible = ps.filter((p) => publishing.has(p.uid) && mayLead(p))
        if (eligible.length === 0) return leader === undefined
        if (leader === undefined || !publishing.has(leader.uid) || !mayLead(leader)) return false
        return eligible.every((p) => p.stake < leader.stake || (p.stake === leader.stake && p.uid >= leader.uid))
      }),
      { numRuns: 500 },
    )
  })

  test("no stake or permit makes a miner (a declared peer, or a node that does not publish) the leader", () => {
    FastCheck.assert(
      FastCheck.property(metagraph, FastCheck.double({ min: 1, max: 1e9, noNaN: true }), (nodes, extra) => {
        const ps = nodes.map((n) => n.p)
        const publishing = new Set(nodes.filter((n) => n.runsValidator).map((n) => n.p.uid))
        // Every miner earns a permit and more stake than anyone.
        const isMiner = (p: Participant) => !publishing.has(p.uid) || p.role === "peer"
        const rich = ps.map((p) => (isMiner(p) ? { ...p, validatorPermit: true, stake: p.stake + extra * 1e6 } : p))
        const leader = chooseLeader(leaderCandidates(rich), (p) => publishing.has(p.uid))
        return leader === undefined || (publishing.has(leader.uid) && leader.role === "validator")
      }),
      { numRuns: 300 },
    )
  })

  test("while no one leads, exactly the candidates may claim the run; once one leads, none may", () => {
    FastCheck.assert(
      FastCheck.property(metagraph, (nodes) => {
        const ps = nodes.map((n) => n.p)
        const candidates = new Set(leaderCandidates(ps).map((p) => p.uid))
        const vacant = directory(ps, undefined)
        if (!ps.every((p) => leadsVacantRun(vacant, p.uid) === candidates.has(p.uid))) return false
        const first = leaderCandidates(ps)[0]
        return first === undefined || ps.every((p) => !leadsVacantRun(directory(ps, first), p.uid))
      }),
      { numRuns: 300 },
    )
  })

  test("the subnet owner's hotkey (highest stake, a permit, no node, no bucket) is not the leader", () => {
    const owner: Participant = { uid: 0, hotkey: "5Owner", stake: 1e6, validatorPermit: true, location: undefined, role: "peer" }
    const validator: Participant = { uid: 1, hotkey: "5Validator", stake: 10, validatorPermit: true, location: { bucket: "covenant-v0" }, role: "validator" }
    const miner: Participant = { uid: 2, hotkey: "5Miner", stake: 50, validatorPermit: true, location: { bucket: "covenant-p0" }, role: "peer" }
    // The staked miner declared the peer role: listed as a peer, never a leader candidate.
    expect(leaderCandidates([owner, validator, miner]).map((p) => p.uid)).toEqual([1])
    expect(chooseLeader(leaderCandidates([owner, validator, miner]), () => true)?.uid).toBe(1)
    expect(eligibleCandidates(directory([owner, validator, miner], validator), undefined).map((c) => c.uid)).toEqual([2])
    // A declared validator without a permit is no candidate either.
    expect(leaderCandidates([{ ...validator, validatorPermit: false }, miner])).toEqual([])
  })
})

// Freshness: each node may have published a start window (heartbeat = the window it last stored
// it in) or not; the live window is anywhere around those heartbeats.
const publishingGraph = FastCheck.integer({ min: 0, max: 10 }).chain((n) =>
  FastCheck.tuple(
    FastCheck.tuple(...Array.from({ length: n }, (_, uid) => FastCheck.tuple(participant(uid), FastCheck.option(FastCheck.integer({ min: 0, max: 30 }), { nil: undefined })))),
    FastCheck.integer({ min: 0, max: 40 }),
  ))

const heartbeatsOf = (nodes: ReadonlyArray<readonly [{ p: Participant }, number | undefined]>) => {
  const ps = nodes.map(([n]) => n.p)
  const beats = new Map(nodes.map(([n, h]) => [n.p.uid, h]))
  return { ps, heartbeat: (p: Participant) => beats.get(p.uid) }
}

describe("a leader that exists: the highest-ranked fresh publisher (property tests)", () => {
  test("the leader is always a fresh publisher that may lead (declared validator, permit, bucket), and no fresh candidate outranks it", () => {
    FastCheck.assert(
      FastCheck.property(publishingGraph, ([nodes, window]) => {
        const { ps, heartbeat } = heartbeatsOf(nodes)
        const ranked = leaderCandidates(ps)
        const { leader } = chooseFreshLeader(ranked, heartbeat, window)
        const fresh = ranked.filter((p) => heartbeat(p) !== undefined && isFresh(heartbeat(p)!, window))
        if (fresh.length === 0) return leader === undefined
        return leader !== undefined && leader.uid === fresh[0]!.uid && heartbeat(leader)! >= window - LEADER_STALE_WINDOWS && mayLead(leader)
      }),
      { numRuns: 500 },
    )
  })

  test("when the leader goes stale the next fresh candidate leads; a node that does not publish never does", () => {
    FastCheck.assert(
      FastCheck.property(publishingGraph, ([nodes, window]) => {
        const { ps, heartbeat } = heartbeatsOf(nodes)
        const ranked = leaderCandidates(ps)
        const before = chooseFreshLeader(ranked, heartbeat, window).leader
        if (before === undefined) return true
        // The leader stops: its last heartbeat stays; K + 1 windows after it, it is stale.
        const later = Math.max(window, heartbeat(before)!) + LEADER_STALE_WINDOWS + 1
        const stopped = (p: Participant) => (p.uid === before.uid ? heartbeat(p) : heartbeat(p) === undefined ? undefined : later)
        const after = chooseFreshLeader(ranked, stopped, later)
        const next = ranked.find((p) => p.uid !== before.uid && heartbeat(p) !== undefined)
        return after.leader?.uid === next?.uid && after.leader?.uid !== before.uid && (after.leader === undefined || heartbeat(after.leader) !== undefined)
      }),
      { numRuns: 500 },
    )
  })

  test("the same store view gives every node the same leader; readSources puts the leader first and only publishers", () => {
    FastCheck.assert(
      FastCheck.property(publishingGraph, ([nodes, window]) => {
        const { ps, heartbeat } = heartbeatsOf(nodes)
        const shuffled = [...ps].reverse()
        const a = chooseFreshLeader(leaderCandidates(ps), heartbeat, window)
        const b = chooseFreshLeader(leaderCandidates(shuffled), heartbeat, window)
        const dir: Directory = { ...directory(ps, a.leader), publishers: a.publishers }
        const sources = readSources(dir)
        return a.leader?.uid === b.leader?.uid &&
          (a.leader === undefined || sources[0]?.uid === a.leader.uid) &&
          sources.every((p) => heartbeat(p) !== undefined) &&
          a.publishers.every((p, i) => i === a.publishers.length - 1 || !isFresh(p.heartbeatWindow, window))
      }),
      { numRuns: 300 },
    )
  })

  test("a running candidate takes over only a started run with no fresh leader; the first start window only a vacant one", () => {
    FastCheck.assert(
      FastCheck.property(publishingGraph, ([nodes, window]) => {
        const { ps, heartbeat } = heartbeatsOf(nodes)
        const candidates = new Set(leaderCandidates(ps).map((p) => p.uid))
        const { leader, publishers } = chooseFreshLeader(leaderCandidates(ps), heartbeat, window)
        const dir: Directory = { ...directory(ps, leader), publishers }
        return ps.every((p) =>
          takesOverRun(dir, p.uid) === (leader === undefined && publishers.length > 0 && candidates.has(p.uid)) &&
          leadsVacantRun(dir, p.uid) === (publishers.length === 0 && candidates.has(p.uid)) &&
          !(takesOverRun(dir, p.uid) && leadsVacantRun(dir, p.uid)))
      }),
      { numRuns: 300 },
    )
  })

  test("a node says, each window, which leader went stale since which window, and whom it follows or waits for", () => {
    const a: Participant = { uid: 1, hotkey: "5A", stake: 20, validatorPermit: true, location: { bucket: "covenant-v0" }, role: "validator" }
    const b: Participant = { uid: 2, hotkey: "5B", stake: 10, validatorPermit: true, location: { bucket: "covenant-v1" }, role: "validator" }
    const ranked = leaderCandidates([a, b])
    // a stopped after window 10; b has not taken over yet.
    const waiting = chooseFreshLeader(ranked, (p) => (p.uid === 1 ? 10 : undefined), 14)
    expect(waiting.leader).toBeUndefined()
    const waitText = describeLeadership({ ...directory([a, b], undefined), publishers: waiting.publishers }, 14)!
    expect(waitText).toContain("uid 1")
    expect(waitText).toContain("stale since window 14")
    expect(waitText).toMatch(/waiting for the next candidate validator to take over \(uid 2/)
    expect(takesOverRun({ ...directory([a, b], undefined), publishers: waiting.publishers }, 2)).toBe(true)
    // b took over: everyone follows b and says why.
    const after = chooseFreshLeader(ranked, (p) => (p.uid === 1 ? 10 : 15), 14)
    expect(after.leader?.uid).toBe(2)
    expect(describeLeadership({ ...directory([a, b], after.leader), publishers: after.publishers }, 14)).toMatch(/leader uid 2 .*uid 1 .*stale since window 14/)
    // Said every window while waiting, once when the followed leader changes, then not again.
    const waitingDir: Directory = { ...directory([a, b], undefined), publishers: waiting.publishers }
    const afterDir: Directory = { ...directory([a, b], after.leader), publishers: after.publishers }
    expect(leadershipNotice(waitingDir, 14, undefined)).toBe(waitText)
    expect(leadershipNotice(afterDir, 15, undefined)).toContain("leader uid 2")
    expect(leadershipNotice(afterDir, 16, 2)).toBeUndefined()
    // While a leads fresh, nothing to say.
    const fresh = chooseFreshLeader(ranked, () => 13, 14)
    expect(describeLeadership({ ...directory([a, b], fresh.leader), publishers: fresh.publishers }, 14)).toBeUndefined()
  })
})

describe("a node waiting for the start window says whom it waits for", () => {
  const address = { runId: "debug-subnet", version: "1" }
  test("no declared validator, or none with a permit: says so and names the declared validators", () => {
    const owner: Participant = { uid: 0, hotkey: "5OwnerHotkeyLongEnough", stake: 1000, validatorPermit: true, location: undefined, role: "peer" }
    const miner: Participant = { uid: 2, hotkey: "5M", stake: 2000, validatorPermit: true, location: { bucket: "b2" }, role: "peer" }
    const none = describeStartWait(directory([owner, miner], undefined), address)
    expect(none).toContain("start_window_v1.json")
    expect(none).toContain("none of the 2 registered uid(s) has committed the validator role")
    const unstaked = describeStartWait(directory([owner, miner, { uid: 4, hotkey: "5V", stake: 0, validatorPermit: false, location: { bucket: "b4" }, role: "validator" }], undefined), address)
    expect(unstaked).toContain("no declared validator holds a validator permit")
    expect(unstaked).toContain("uid 4")
    expect(unstaked).not.toContain("uid 2")
  })
  test("candidates that have not published: names them by stake, with their buckets", () => {
    const ps: Participant[] = [
      { uid: 1, hotkey: "5V", stake: 10, validatorPermit: true, location: { bucket: "covenant-v0" }, role: "validator" },
      { uid: 3, hotkey: "5P", stake: 20, validatorPermit: true, location: { bucket: "covenant-p0" }, role: "validator" },
    ]
    const text = describeStartWait(directory(ps, undefined), address)
    expect(text).toMatch(/uid 3 .*covenant-p0.*uid 1 .*covenant-v0/)
  })
  test("reports at least every window and at most every 15 s", () => {
    expect(waitReportMs(5, 200, 50)).toBe(1000)
    expect(waitReportMs(115, 12_000, 3000)).toBe(15_000)
  })
})

describe("gather rejections are named", () => {
  test("late, early, invalid and missing peers each appear with the reason; a clean gather says nothing", () => {
    const interval = { start: 10_000, end: 10_500 }
    const result = {
      delivered: new Map(),
      missing: [7],
      tooEarly: new Map([[4, 9_000]]),
      tooLate: new Map([[2, 10_800], [3, 10_900]]),
      unavailable: new Map(),
      badSignature: new Map([[5, "signed by another key"]]),
      tooLarge: new Map([[6, 99_999]]),
      unknownPeer: [],
      elapsedMs: 0,
    }
    const text = describeRejections(12, rejectionsOf(result, interval), 500)
    expect(text).toContain("late uid 2 (+300 ms), uid 3 (+400 ms)")
    expect(text).toContain("early uid 4 (-1000 ms)")
    expect(text).toContain("invalid uid 5 (signed by another key), uid 6 (TooLarge: 99999 bytes")
    expect(text).toContain("missing uid 7")
    expect(text).toContain("does not fit this chain's block time")
    // Nothing refused (some peers merely absent): nothing to say beyond the round's gathered list.
    const clean = { ...result, tooEarly: new Map(), tooLate: new Map(), badSignature: new Map(), tooLarge: new Map() }
    expect(describeRejections(12, rejectionsOf(clean, interval), 500)).toBeUndefined()
    const onlyEarly = describeRejections(12, rejectionsOf({ ...clean, tooEarly: new Map([[4, 9_999]]) }, interval), 500)
    expect(onlyEarly).toBe("window 12: not gathered: early uid 4 (-1 ms); missing uid 7")
  })
})
