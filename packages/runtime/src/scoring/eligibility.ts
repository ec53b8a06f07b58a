/**
 * Who may be listed and judged: every registered uid with a committed bucket except the leader
 * (and the stale leaders it replaced: validators, not peers),
 * admitted by the run's admission rule. Not "no validator permit": on subtensor any neuron with
 * enough stake holds a permit, miners included (#14). A registered uid that never publishes an
 * update is tracked as missing and leaves the list once inactive.
 */
import type { Admission } from "@covenant/dsl"
import type { Directory } from "../node/network.ts"
import type { Candidate } from "./peer-list.ts"
import { admits } from "./peer-list.ts"

export const eligibleCandidates = (dir: Directory, admission: Admission | undefined): Candidate[] =>
  [...dir.participants.values()]
    .filter((p) => p.location !== undefined && p.uid !== dir.leader?.uid && !(dir.publishers ?? []).some((q) => q.participant.uid === p.uid) && (admission === undefined || admits(admission, p.hotkey)))
    .map((p) => ({ uid: p.uid, hotkey: p.hotkey }))
    .sort((a, b) => a.uid - b.uid)
