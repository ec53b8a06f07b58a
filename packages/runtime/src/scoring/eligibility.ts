/**
 * Who may be listed and judged: every registered uid whose commitment declares the peer role,
 * admitted by the run's admission rule. Declared, not "no validator permit": on subtensor any
 * neuron with enough stake holds a permit, miners included (#14), so a peer with a permit is still
 * a peer, and a validator (leading or not, permit or not) is never listed. A registered uid that
 * never publishes an update is tracked as missing and leaves the list once inactive.
 */
import type { Admission } from "@covenant/dsl"
import type { Directory } from "../node/network.ts"
import type { Candidate } from "./peer-list.ts"
import { admits } from "./peer-list.ts"

export const eligibleCandidates = (dir: Directory, admission: Admission | undefined): Candidate[] =>
  [...dir.participants.values()]
    .filter((p) => p.role === "peer" && p.location !== undefined && (admission === undefined || admits(admission, p.hotkey)))
    .map((p) => ({ uid: p.uid, hotkey: p.hotkey }))
    .sort((a, b) => a.uid - b.uid)
