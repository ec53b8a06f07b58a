import { describe, expect, test } from "bun:test"
import { FastCheck } from "effect"
import {
  chooseFreshLeader, chooseLeader, describeLeadership, leadershipNotice, describeRejections, describeStartWait, isFresh, LEADER_STALE_WINDOWS, leaderCandidates, leadsVacantRun,
  readSources, rejectionsOf, takesOverRun, waitReportMs,
} from "../src/index.ts"
import type { Directory, Participant } from "../src/index.ts"

// The roles/leader logic as pure functions over random metagraphs: any neuron may hold a permit
// (miners earn stake on a live subnet), any may or may not have committed a bucket, and only
// nodes that run the validator publish a start window.

const participant = (uid: number) =>
  FastCheck.record({
    stake: FastCheck.oneof(FastCheck.constant(0), FastCheck.double({ min: 0, max: 1e6, noNaN: true })),
    validatorPermit: FastCheck.boolean(),
    committed: FastCheck.boolean(),
    runsValidator: FastCheck.boolean(),
  }).map((r) => ({
    p: { uid, hotkey: `5Hotkey${uid}`, stake: r.stake, validatorPermit: r.validatorPermit, location: r.committed ? { bucket: `covenant-${uid}` } : undefined } satisfies Participant,
    runsValidator: r.runsValidator,
  }))

const metagraph = FastCheck.integer({ min: 0, max: 12 }).chain((n) => FastCheck.tuple(...Array.from({ length: n }, (_, uid) => participant(uid))))

const directory = (ps: ReadonlyArray<Participant>, leader: Participant | undefined): Directory => ({ participants: new Map(ps.map((p) => [p.uid, p])), leader })

describe("leader (property tests over random metagraphs)", () => {
  test("the leader is always a node that publishes, with a permit and a bucket, and outranks every other publisher", () => {
    FastCheck.assert(
      FastCheck.property(metagraph, (nodes) => {
        const ps = nodes.map((n) => n.p)
        // Only candidates running the validator can have published a start window.
        const publishing = new Set(nodes.filter((n) => n.runsValidator && n.p.validatorPermit && n.p.location !== undefined).map((n) => n.p.uid))
        const leader = chooseLeader(leaderCandidates(ps), (p) => publishing.has(p.uid))
        if (publishing.size === 0) return leader === undefined
        if (leader === undefined || !publishing.has(leader.uid) || !leader.validatorPermit || leader.location === undefined) return false
        return ps.every((p) => !publishing.has(p.uid) || p.stake < leader.stake || (p.stake === leader.stake && p.uid >= leader.uid))
      }),
      { numRuns: 500 },
    )
  })

  test("no stake makes a miner (a node that does not publish) the leader", () => {
    FastCheck.assert(
      FastCheck.property(metagraph, FastCheck.double({ min: 1, max: 1e9, noNaN: true }), (nodes, extra) => {
        const ps = nodes.map((n) => n.p)
        const publishing = new Set(nodes.filter((n) => n.runsValidator).map((n) => n.p.uid))
        // Every miner earns a permit and more stake than anyone.
        const rich = ps.map((p) => (publishing.has(p.uid) ? p : { ...p, validatorPermit: true, stake: p.stake + extra * 1e6 }))
        const leader = chooseLeader(leaderCandidates(rich), (p) => publishing.has(p.uid))
        return leader === undefined || publishing.has(leader.uid)
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
    const owner: Participant = { uid: 0, hotkey: "5Owner", stake: 1e6, validatorPermit: true, location: undefined }
    const validator: Participant = { uid: 1, hotkey: "5Validator", stake: 10, validatorPermit: true, location: { bucket: "covenant-v0" } }
    const miner: Participant = { uid: 2, hotkey: "5Miner", stake: 50, validatorPermit: true, location: { bucket: "covenant-p0" } }
    expect(leaderCandidates([owner, validator, miner]).map((p) => p.uid)).toEqual([2, 1])
    expect(chooseLeader(leaderCandidates([owner, validator, miner]), (p) => p.uid === 1)?.uid).toBe(1)
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
  test("the leader is always a fresh publisher with a permit and a bucket, and no fresh publisher outranks it", () => {
    FastCheck.assert(
      FastCheck.property(publishingGraph, ([nodes, window]) => {
        const { ps, heartbeat } = heartbeatsOf(nodes)
        const ranked = leaderCandidates(ps)
        const { leader } = chooseFreshLeader(ranked, heartbeat, window)
        const fresh = ranked.filter((p) => heartbeat(p) !== undefined && isFresh(heartbeat(p)!, window))
        if (fresh.length === 0) return leader === undefined
        return leader !== undefined && leader.uid === fresh[0]!.uid && heartbeat(leader)! >= window - LEADER_STALE_WINDOWS && leader.validatorPermit && leader.location !== undefined
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
    const a: Participant = { uid: 1, hotkey: "5A", stake: 20, validatorPermit: true, location: { bucket: "covenant-v0" } }
    const b: Participant = { uid: 2, hotkey: "5B", stake: 10, validatorPermit: true, location: { bucket: "covenant-v1" } }
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
  test("no permit holder with a bucket: says so and names the permit holders", () => {
    const owner: Participant = { uid: 0, hotkey: "5OwnerHotkeyLongEnough", stake: 1000, validatorPermit: true, location: undefined }
    const text = describeStartWait(directory([owner, { uid: 2, hotkey: "5M", stake: 0, validatorPermit: false, location: { bucket: "b2" } }], undefined), address)
    expect(text).toContain("start_window_v1.json")
    expect(text).toContain("no permit holder has committed a bucket")
    expect(text).toContain("uid 0")
  })
  test("candidates that have not published: names them by stake, with their buckets", () => {
    const ps: Participant[] = [
      { uid: 1, hotkey: "5V", stake: 10, validatorPermit: true, location: { bucket: "covenant-v0" } },
      { uid: 3, hotkey: "5P", stake: 20, validatorPermit: true, location: { bucket: "covenant-p0" } },
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
